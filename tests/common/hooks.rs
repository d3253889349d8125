//! A webhook receiver on loopback for the tests: records every request,
//! answers 200 while told to accept.

use super::{wait_for, DEADLINE};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status it was answered.
    pub answered: u16,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
    /// The body as JSON, when it is (a sender killed mid-request sends
    /// less).
    pub fn json_opt(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A webhook receiver on 127.0.0.1: answers 200 while `accept` is set;
/// otherwise a redirect to the first request, then 503.
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    pub accept: Arc<AtomicBool>,
}

impl Receiver {
    pub fn start(accept: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/hlsd", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let accept = Arc::new(AtomicBool::new(accept));
        let (h, a) = (hits.clone(), accept.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = serve_one(conn, &h, &a);
            }
        });
        Receiver { url, hits, accept }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits for a 200-answered event of `kind`; returns it.
    pub fn delivered(&self, kind: &str) -> Hit {
        wait_for(&format!("a delivered {kind}"), || {
            self.hits()
                .into_iter()
                .find(|h| h.answered == 200 && h.json()["type"] == kind)
        })
    }
}

fn serve_one(
    conn: std::net::TcpStream,
    hits: &Mutex<Vec<Hit>>,
    accept: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(DEADLINE))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        reader.read_line(&mut l)?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let mut hits = hits.lock().unwrap();
    let answered = if accept.load(Ordering::SeqCst) {
        200
    } else if hits.is_empty() {
        302
    } else {
        503
    };
    hits.push(Hit {
        path,
        headers,
        body: String::from_utf8(body).unwrap(),
        answered,
    });
    drop(hits);
    let mut w = conn;
    let extra = if answered == 302 {
        "Location: /elsewhere\r\n"
    } else {
        ""
    };
    write!(
        w,
        "HTTP/1.1 {answered} X\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nok"
    )
}
