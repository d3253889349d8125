//! A remote web server on loopback for import tests (a real HTTP/1.1
//! server on 127.0.0.1, one thread per connection):
//! - `/file/{name}` serves a registered file (`?rate=` bytes a second
//!   throttles it, `?cut=` stops after that many bytes although its
//!   `Content-Length` says more);
//! - `/status/{code}` answers that status;
//! - `/redirect?to={location}` answers `302` to it (taken as given);
//! - `/chain/{n}/{name}` redirects `n` times, then serves `/file/{name}`.
//!
//! Every request's path is recorded, so a test can say a server was never
//! reached.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Remote {
    pub addr: SocketAddr,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Remote {
    pub fn start() -> Remote {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (f, h) = (files.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (f, h) = (f.clone(), h.clone());
                std::thread::spawn(move || serve(conn, &f, &h));
            }
        });
        Remote { addr, files, hits }
    }

    /// Serves `bytes` at `/file/{name}`.
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_owned(), bytes);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The paths asked for so far.
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

fn query<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let q = target.split_once('?')?.1;
    q.split('&')
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
}

/// `%XX` escapes decoded (a query value).
fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = std::str::from_utf8(b.get(i + 1..i + 3).unwrap_or(b"zz")).unwrap_or("zz");
        match (b[i], u8::from_str_radix(hex, 16)) {
            (b'%', Ok(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn serve(conn: TcpStream, files: &Mutex<HashMap<String, Vec<u8>>>, hits: &Mutex<Vec<String>>) {
    let _ = conn.set_write_timeout(Some(Duration::from_secs(120)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    hits.lock().unwrap().push(target.clone());
    let path = target.split('?').next().unwrap_or("");
    let mut conn = conn;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["file", name] => {
            let body = files.lock().unwrap().get(*name).cloned();
            match body {
                Some(b) => send_file(&mut conn, &b, &target),
                None => head(&mut conn, 404, 0, &[]),
            }
        }
        ["status", code] => head(&mut conn, code.parse().unwrap_or(500), 0, &[]),
        ["redirect"] => {
            let to = decode(query(&target, "to").unwrap_or("/"));
            head(&mut conn, 302, 0, &[("Location", &to)]);
        }
        ["chain", "0", name] => {
            let body = files
                .lock()
                .unwrap()
                .get(*name)
                .cloned()
                .unwrap_or_default();
            send_file(&mut conn, &body, &target);
        }
        ["chain", n, name] => {
            let to = format!("/chain/{}/{name}", n.parse::<u32>().unwrap_or(1) - 1);
            head(&mut conn, 302, 0, &[("Location", &to)]);
        }
        _ => head(&mut conn, 404, 0, &[]),
    }
}

fn head(conn: &mut TcpStream, status: u16, len: usize, extra: &[(&str, &str)]) {
    let mut h = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n");
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    let _ = conn.write_all(h.as_bytes());
}

/// The file, throttled to `rate` bytes a second and cut after `cut`
/// bytes when the query asks.
fn send_file(conn: &mut TcpStream, body: &[u8], target: &str) {
    head(conn, 200, body.len(), &[("Content-Type", "video/mp4")]);
    let rate: Option<usize> = query(target, "rate").and_then(|r| r.parse().ok());
    let cut: usize = query(target, "cut")
        .and_then(|c| c.parse().ok())
        .unwrap_or(body.len());
    let body = &body[..cut.min(body.len())];
    let piece = rate.map_or(64 * 1024, |r| (r / 20).max(1));
    for chunk in body.chunks(piece) {
        if conn.write_all(chunk).is_err() {
            return;
        }
        if rate.is_some() {
            // The remote's pace (a slow server), not the test's timing.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = conn.flush();
}
