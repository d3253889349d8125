//! A TCP proxy on 127.0.0.1:0 in front of a server (the S3 server), to make
//! it slow or stop it answering for a while: what a busy or distant bucket
//! does to hlsd. Bytes from the client are forwarded at most `rate` bytes a
//! second (0: as fast as they come), and not at all while it is held.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A running proxy; it stops with the test process.
pub struct Throttle {
    pub addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    /// Bytes a second from all clients together, 0 for no limit.
    rate: AtomicU64,
    /// When the bytes let through so far have had their time.
    paced_until: Mutex<Instant>,
    held: Mutex<bool>,
    released: Condvar,
    /// Bytes forwarded from clients so far.
    forwarded: AtomicU64,
    /// Reads from a client that wait for a release now.
    waiting: AtomicU64,
    stop: AtomicBool,
}

impl Throttle {
    /// A proxy to `to`, forwarding client bytes at `rate` a second.
    pub fn start(to: SocketAddr, rate: u64) -> Throttle {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            rate: AtomicU64::new(rate),
            paced_until: Mutex::new(Instant::now()),
            held: Mutex::new(false),
            released: Condvar::new(),
            forwarded: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(server) = TcpStream::connect(to) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let st = s.clone();
                std::thread::spawn(move || pump(client, server, Some(&st)));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        Throttle { addr, state }
    }

    /// `http://` and its address: an endpoint for `--s3-endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops forwarding client bytes until [`Throttle::release`].
    pub fn hold(&self) {
        *self.state.held.lock().unwrap() = true;
    }

    /// Forwards again.
    pub fn release(&self) {
        *self.state.held.lock().unwrap() = false;
        self.state.released.notify_all();
    }

    /// Reads from clients that are waiting for a release now: a request
    /// hlsd is making, stopped here.
    pub fn waiting(&self) -> u64 {
        self.state.waiting.load(Ordering::SeqCst)
    }

    /// Client bytes forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        self.release();
    }
}

/// Copies `from` to `to`; with `limit`, at its rate and never while held.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<&State>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(st) = limit {
            st.waiting.fetch_add(1, Ordering::SeqCst);
            let mut held = st.held.lock().unwrap();
            while *held && !st.stop.load(Ordering::Relaxed) {
                held = st.released.wait(held).unwrap();
            }
            drop(held);
            st.waiting.fetch_sub(1, Ordering::SeqCst);
            // Paced: all connections' bytes together never get ahead of
            // the rate.
            let rate = st.rate.load(Ordering::Relaxed);
            if rate > 0 {
                let due = {
                    let mut until = st.paced_until.lock().unwrap();
                    *until = (*until).max(Instant::now())
                        + Duration::from_secs_f64(n as f64 / rate as f64);
                    *until
                };
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            st.forwarded.fetch_add(n as u64, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
