//! Shared test support: start the real `hlsd` binary on 127.0.0.1:0 with an
//! empty `PATH` (so a server that tried to spawn `ffmpeg` would fail), speak
//! raw HTTP/1.1 to it, make fixtures with the `ffmpeg` CLI and check outputs
//! with `ffprobe` (both only here, as independent tools).
#![allow(dead_code)]

pub mod garage;
pub mod hooks;
pub mod remote;
pub mod s3;
pub mod throttle;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The deadline of every wait in the tests: long, because the machine may be
/// busy; a wait ends as soon as its condition holds.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Polls `cond` until it returns `Some`, for at most [`DEADLINE`]; panics
/// naming `what` if it never does.
pub fn wait_for<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(t.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_for`] a condition that is a `bool`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(what, || cond().then_some(()))
}

/// A running server and its private storage folder: in this process by
/// default ([`Server::start`]), or a child process ([`Server::process`]) for
/// the tests that need one (signals, a crash, its memory, its environment,
/// its log, an empty `PATH`).
pub struct Server {
    pub addr: SocketAddr,
    pub storage: tempfile::TempDir,
    run: Running,
    /// Environment variables a process server runs with (kept for restarts).
    pub env: Vec<(String, String)>,
}

enum Running {
    /// `hlsd` as a child process.
    Process(Child),
    /// `hlsd::server` on a thread of this process, with its own runtime.
    InProcess(InProcess),
    /// An in-process server after [`Server::stop`].
    Stopped,
}

/// A server on its own thread: dropping `stop` starts its graceful
/// shutdown, then the thread ends.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Shuts the server down and waits (bounded) for its thread.
    fn shut_down(&mut self) {
        drop(self.stop.take());
        let Some(thread) = self.thread.take() else {
            return;
        };
        let t = Instant::now();
        // The server's own bounds: 10 s for in-flight requests, 5 s for
        // jobs to stop, 10 s for its runtime's blocking tasks; a busy
        // machine gets the suite's whole deadline.
        while !thread.is_finished() && t.elapsed() < DEADLINE {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            eprintln!("an in-process hlsd did not stop within {DEADLINE:?}; left running");
        }
    }
}

/// The flags every test server gets: `--listen 127.0.0.1:0` unless the test
/// names an address, its storage, and `--x264-preset ultrafast` (fast
/// tests) unless the test picks a preset.
fn server_args(storage: &Path, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if !extra.contains(&"--listen") {
        args.extend(["--listen".into(), "127.0.0.1:0".into()]);
    }
    args.extend(["--storage".into(), storage.as_os_str().to_owned()]);
    if !extra.contains(&"--x264-preset") {
        args.extend(["--x264-preset".into(), "ultrafast".into()]);
    }
    args.extend(extra.iter().map(Into::into));
    args
}

/// Starts `hlsd::server` as `src/main.rs` does (flags, finalize, TLS check,
/// bind, prepare with crash recovery, serve) on a thread of its own with a
/// two-worker runtime; returns once it listens. A configuration the binary
/// would refuse panics here (test refusals with [`exit_of`]).
fn start_in_process(storage: &Path, extra: &[&str]) -> (InProcess, SocketAddr) {
    use clap::Parser;
    init_logging();
    let mut args: Vec<std::ffi::OsString> = vec!["hlsd".into()];
    args.extend(server_args(storage, extra));
    let mut config =
        hlsd::Config::try_parse_from(&args).unwrap_or_else(|e| panic!("hlsd {args:?}: {e}"));
    let warnings = config
        .finalize()
        .unwrap_or_else(|e| panic!("hlsd {args:?} refused: {e}"));
    for w in warnings {
        eprintln!("hlsd warns: {w}");
    }
    hlsd::server::check_tls(&config).unwrap_or_else(|e| panic!("hlsd {args:?}: {e}"));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("hlsd".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for hlsd");
            runtime.block_on(async move {
                let listen = config.listen;
                let listener = match tokio::net::TcpListener::bind(listen).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot listen on {listen}: {e}")));
                        return;
                    }
                };
                let addr = listener.local_addr().unwrap();
                let server = match hlsd::server::prepare(config).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(addr));
                // Dropping the sender (the Server dropped) stops it too.
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = server.serve(listener, shutdown).await {
                    eprintln!("hlsd on {addr}: {e}");
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(10));
        })
        .expect("a thread for hlsd");
    let addr = match ready_rx.recv_timeout(DEADLINE) {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) => panic!("hlsd {args:?}: {e}"),
        Err(e) => panic!("hlsd {args:?} did not start: {e}"),
    };
    let server = InProcess {
        stop: Some(stop),
        thread: Some(thread),
    };
    (server, addr)
}

/// The in-process servers' log: to this process's standard error (as a
/// child's goes to the inherited one), at `HLSD_LOG`'s level, `warn` unless
/// set.
fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("HLSD_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    });
}

/// Clients and servers share this process: its soft limit on open files is
/// raised to the hard one before `main` (an ELF constructor).
#[used]
#[link_section = ".init_array"]
static RAISE_NOFILE: extern "C" fn() = raise_nofile;

extern "C" fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

impl Server {
    /// Starts a server in this process with `extra` flags.
    pub fn start(extra: &[&str]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// Starts a server in this process on `storage` with `extra` flags.
    pub fn start_in(storage: tempfile::TempDir, extra: &[&str]) -> Server {
        let (server, addr) = start_in_process(storage.path(), extra);
        Server {
            addr,
            storage,
            run: Running::InProcess(server),
            env: Vec::new(),
        }
    }

    /// Starts the `hlsd` binary as a child process with `extra` flags.
    pub fn process(extra: &[&str]) -> Server {
        Self::process_in(tempfile::tempdir().unwrap(), extra)
    }

    pub fn process_in(storage: tempfile::TempDir, extra: &[&str]) -> Server {
        Self::process_with_env(storage, extra, Vec::new())
    }

    /// Starts the `hlsd` binary in `storage` with `extra` flags and
    /// variables `env`.
    pub fn process_with_env(
        storage: tempfile::TempDir,
        extra: &[&str],
        env: Vec<(String, String)>,
    ) -> Server {
        let (child, addr) = spawn_logged(storage.path(), extra, None, &env);
        Server {
            addr,
            storage,
            run: Running::Process(child),
            env,
        }
    }

    /// Starts the `hlsd` binary with its log (at debug level) written to
    /// `log`.
    pub fn process_logged(extra: &[&str], log: &Path) -> Server {
        let storage = tempfile::tempdir().unwrap();
        let (child, addr) = spawn_logged(storage.path(), extra, Some(log), &[]);
        Server {
            addr,
            storage,
            run: Running::Process(child),
            env: Vec::new(),
        }
    }

    /// Starts the `hlsd` binary in `storage` with `extra` flags, variables
    /// `env`, and its log (at debug level) written to `log`.
    pub fn process_full(
        storage: tempfile::TempDir,
        extra: &[&str],
        env: Vec<(String, String)>,
        log: &Path,
    ) -> Server {
        let (child, addr) = spawn_logged(storage.path(), extra, Some(log), &env);
        Server {
            addr,
            storage,
            run: Running::Process(child),
            env,
        }
    }

    /// Waits (bounded) for the process to end on its own; its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = self.child();
        wait_for("hlsd to exit", || child.try_wait().unwrap())
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.run {
            Running::Process(child) => child,
            _ => panic!(
                "this test needs the server as a process (signals, crash, memory, threads): \
                 start it with Server::process"
            ),
        }
    }

    fn is_process(&self) -> bool {
        matches!(self.run, Running::Process(_))
    }

    /// The server's process id (for signals).
    pub fn pid(&self) -> i32 {
        match &self.run {
            Running::Process(child) => child.id() as i32,
            _ => panic!("pid() needs the server as a process: start it with Server::process"),
        }
    }

    /// Kills the process with SIGKILL (a crash) and waits for it.
    pub fn crash(&mut self) {
        let child = self.child();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child();
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_for("hlsd to exit after SIGTERM", || child.try_wait().unwrap())
    }

    /// Stops an in-process server as SIGTERM stops the binary (graceful
    /// shutdown: requests finish, jobs are cancelled and resume on the
    /// next start) and waits for it.
    pub fn stop(&mut self) {
        match &mut self.run {
            Running::InProcess(s) => s.shut_down(),
            Running::Stopped => {}
            Running::Process(_) => panic!("stop() is for in-process servers: use terminate()"),
        }
        self.run = Running::Stopped;
    }

    /// Starts the server again on the same storage: a new process after
    /// `crash`/`terminate`, or a new in-process server (the running one
    /// stopped first).
    pub fn restart(&mut self, extra: &[&str]) {
        if self.is_process() {
            let (child, addr) = spawn_logged(self.storage.path(), extra, None, &self.env);
            self.run = Running::Process(child);
            self.addr = addr;
            return;
        }
        self.stop();
        let (server, addr) = start_in_process(self.storage.path(), extra);
        self.run = Running::InProcess(server);
        self.addr = addr;
    }

    /// Starts the process again on the same address (after a crash): what
    /// clients hold (upload URLs) stays valid.
    pub fn restart_same_port(&mut self, extra: &[&str]) {
        let listen = self.addr.to_string();
        let mut args = vec!["--listen", listen.as_str()];
        args.extend_from_slice(extra);
        let (child, addr) = spawn_logged(self.storage.path(), &args, None, &self.env);
        assert!(self.is_process(), "restart_same_port is for processes");
        self.run = Running::Process(child);
        self.addr = addr;
    }

    /// Names of the server process's threads that run jobs (`job-…`).
    pub fn job_threads(&self) -> Vec<String> {
        job_threads_in(&format!("/proc/{}/task", self.pid()), "job-")
    }

    /// Names of the threads running `id`'s job (`job-` and the id's first
    /// 8 characters; its libav workers inherit the name), in the server's
    /// process, or in this one for an in-process server.
    pub fn job_threads_of(&self, id: &str) -> Vec<String> {
        let dir = match &self.run {
            Running::Process(child) => format!("/proc/{}/task", child.id()),
            _ => "/proc/self/task".to_owned(),
        };
        job_threads_in(&dir, &format!("job-{}", &id[..8]))
    }

    /// Waits until no thread runs `id`'s job.
    pub fn wait_no_job_threads_of(&self, id: &str) {
        wait_until("the job's threads to end", || {
            self.job_threads_of(id).is_empty()
        });
    }

    /// Waits for the first video folder to appear (an upload's id is only
    /// in its response, which comes at the end) and returns its name.
    pub fn wait_video_folder(&self) -> String {
        wait_for("a video folder", || {
            self.storage_entries().into_iter().find(|e| e.len() == 21)
        })
    }

    /// Waits until the server process has no `job-…` thread left.
    pub fn wait_no_job_threads(&self) {
        wait_until("every job thread to end", || self.job_threads().is_empty());
    }

    /// Polls `/videos/{id}` until `cond` holds for the record; returns it.
    pub fn wait_record(
        &self,
        id: &str,
        what: &str,
        cond: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_for(what, || {
            let r = self.get(&format!("/videos/{id}"));
            (r.status == 200).then(|| r.json()).filter(|v| cond(v))
        })
    }

    /// Files in a video's folder.
    pub fn files_of(&self, id: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.storage.path().join(id))
            .map(|it| {
                it.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Names of the threads under `/proc/…/task` that start with `prefix`.
fn job_threads_in(dir: &str, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|c| c.trim().to_owned())
                .filter(|c| c.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts the `hlsd` binary with an empty `PATH` (so a server that tried to
/// spawn `ffmpeg` would fail); returns it once it says where it listens.
fn spawn_logged(
    storage: &Path,
    extra: &[&str],
    log: Option<&Path>,
    env: &[(String, String)],
) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hlsd"))
        .args(server_args(storage, extra))
        // The server must never spawn a process: with PATH empty, any
        // attempt to run `ffmpeg` by name would fail.
        .env("PATH", "")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("HLSD_LOG", if log.is_some() { "debug" } else { "warn" })
        .stdout(Stdio::piped())
        .stderr(match log {
            Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
            None => Stdio::inherit(),
        })
        .spawn()
        .expect("start hlsd");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

impl Server {
    /// Entries left in the storage folder.
    pub fn storage_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.storage.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Waits until storage is empty (cleanup is asynchronous for dropped clients).
    pub fn assert_storage_empty_soon(&self) {
        let t = Instant::now();
        while !self.storage_entries().is_empty() && t.elapsed() < DEADLINE {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            self.storage_entries(),
            Vec::<String>::new(),
            "storage not empty"
        );
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], &[])
    }

    /// Polls `/videos/{id}` until it is ready or failed.
    pub fn wait_done(&self, id: &str) -> serde_json::Value {
        let t = Instant::now();
        loop {
            let r = self.get(&format!("/videos/{id}"));
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            let s = v["status"].as_str().unwrap().to_owned();
            if s == "ready" || s == "failed" {
                return v;
            }
            assert!(t.elapsed() < DEADLINE * 2, "stuck in {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Peak resident memory of the server process so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub fn is_alive(&mut self) -> bool {
        let running = match &mut self.run {
            Running::Process(child) => child.try_wait().unwrap().is_none(),
            Running::InProcess(s) => s.thread.as_ref().is_some_and(|t| !t.is_finished()),
            Running::Stopped => false,
        };
        running && self.get("/healthz").status == 200
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match &mut self.run {
            Running::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::InProcess(s) => s.shut_down(),
            Running::Stopped => {}
        }
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn is_playlist(&self) -> bool {
        self.header("content-type") == Some("application/vnd.apple.mpegurl")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// Asserts a JSON error with `status` and `code` and a message.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 10, "{v}");
    }
}

/// How a body is sent.
#[derive(Clone, Copy, Debug)]
pub enum Send {
    /// `Content-Length`, written in pieces of `chunk` bytes, `pause` apart.
    Length { chunk: usize, pause: Duration },
    /// `Transfer-Encoding: chunked` with chunks of `chunk` bytes.
    Chunked { chunk: usize, pause: Duration },
}

pub const FAST: Send = Send::Length {
    chunk: 1 << 20,
    pause: Duration::ZERO,
};

/// One request on a fresh connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    send_request(addr, method, path, headers, body, FAST)
}

pub fn send_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    how: Send,
) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let is_body = !body.is_empty() || method == "POST";
    match how {
        Send::Length { .. } if is_body => {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()))
        }
        Send::Chunked { .. } if is_body => head.push_str("Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    head.push_str("\r\n");
    // Write errors are ignored: the server may answer (413) and close
    // before the whole body is sent; the response is what we check.
    let _ = s.write_all(head.as_bytes());
    if is_body {
        let _ = write_body(&mut s, body, how);
    }
    let r = read_response(&mut s, method == "HEAD");
    if method == "GET"
        && r.status == 200
        && r.is_playlist()
        && r.header("content-encoding").is_none()
    {
        lint_playlist(path, &r.text());
    }
    r
}

fn write_body(s: &mut TcpStream, body: &[u8], how: Send) -> std::io::Result<()> {
    match how {
        Send::Length { chunk, pause } => {
            for piece in body.chunks(chunk.max(1)) {
                s.write_all(piece)?;
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
        }
        Send::Chunked { chunk, pause } => {
            for piece in body.chunks(chunk.max(1)) {
                s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
                s.write_all(piece)?;
                s.write_all(b"\r\n")?;
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            s.write_all(b"0\r\n\r\n")?;
        }
    }
    Ok(())
}

fn read_response(s: &mut TcpStream, head_only: bool) -> Response {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked && !head_only {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
    out
}

pub const BOUNDARY: &str = "------------------------hlsdtestboundary";

/// A multipart body like `curl -F video=@file` builds.
pub fn multipart(field: &str, file_name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub fn multipart_header() -> (&'static str, String) {
    (
        "Content-Type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    )
}

/// Uploads `data` as field `video`.
pub fn upload(addr: SocketAddr, data: &[u8], how: Send) -> Response {
    let (k, v) = multipart_header();
    send_request(
        addr,
        "POST",
        "/upload",
        &[(k, &v)],
        &multipart("video", "clip.bin", data),
        how,
    )
}

/// An upload whose body is only partly sent: the test decides when the
/// rest goes (so "while the upload is still arriving" is a fact, not a race).
pub struct PartialUpload {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl PartialUpload {
    /// Sends the head and the first `sent` bytes of a `curl -F` body of `data`.
    pub fn start(addr: SocketAddr, data: &[u8], sent: usize) -> PartialUpload {
        let body = multipart("video", "clip.mp4", data);
        let (k, v) = multipart_header();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        let sent = sent.min(body.len());
        stream.write_all(&body[..sent]).unwrap();
        PartialUpload {
            stream,
            rest: body[sent..].to_vec(),
        }
    }

    /// Sends the rest and reads the answer.
    pub fn finish(mut self) -> Response {
        let _ = self.stream.write_all(&self.rest);
        read_response(&mut self.stream, false)
    }
}

/// Uploads and returns the new id, asserting 201.
pub fn upload_ok(server: &Server, data: &[u8], how: Send) -> String {
    let r = upload(server.addr, data, how);
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(
        v["playback_url"],
        format!("http://{}/play/{id}/video.m3u8", server.addr)
    );
    assert_eq!(r.header("location"), v["status_url"].as_str());
    id
}

// ---------------------------------------------------------------- fixtures

/// One lock per fixture file: tests running at once make different
/// fixtures side by side, and one fixture once.
static FIXTURE_LOCKS: Mutex<Vec<(PathBuf, std::sync::Arc<Mutex<()>>)>> = Mutex::new(Vec::new());

fn fixture_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Makes (once) a fixture with `ffmpeg <args> <out>`; returns its bytes.
pub fn fixture(name: &str, args: &[&str]) -> Vec<u8> {
    let path = fixture_path(name, args);
    std::fs::read(path).unwrap()
}

pub fn fixture_path(name: &str, args: &[&str]) -> PathBuf {
    // The name carries a hash of the arguments, so a changed recipe makes
    // a new file instead of reusing a stale one.
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        args.hash(&mut h);
        h.finish()
    };
    let path = fixture_dir().join(format!("{key:016x}-{name}"));
    let lock = {
        let mut locks = FIXTURE_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        match locks.iter().find(|(p, _)| *p == path) {
            Some((_, l)) => l.clone(),
            None => {
                let l = std::sync::Arc::new(Mutex::new(()));
                locks.push((path.clone(), l.clone()));
                l
            }
        }
    };
    let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
    if !path.exists() {
        let tmp = fixture_dir().join(format!("tmp-{}-{key:016x}-{name}", std::process::id()));
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(&tmp)
            .output()
            .expect("the ffmpeg CLI is needed to make test fixtures (make test installs it)");
        assert!(
            out.status.success(),
            "ffmpeg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// The tests' usual input: `secs` s of `testsrc2` at `size`, 30 fps, H.264
/// (ultrafast, yuv420p), with a 440 Hz tone in AAC when `audio`, as a
/// faststart MP4. Made once per recipe.
pub fn h264_mp4_path(secs: u32, size: &str, audio: bool) -> PathBuf {
    let name = format!("h264-{secs}s-{size}-{}.mp4", if audio { "av" } else { "v" });
    let (src, secs) = (format!("testsrc2=size={size}:rate=30"), secs.to_string());
    let mut args = vec!["-f", "lavfi", "-i", &src];
    if audio {
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]);
    }
    args.extend([
        "-t",
        &secs,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]);
    if audio {
        args.extend(["-c:a", "aac"]);
    }
    args.extend(["-movflags", "+faststart"]);
    fixture_path(&name, &args)
}

/// `secs` of testsrc2 (`size`, 30 fps) and a 48 kHz sine as H.264
/// (ultrafast, a keyframe every `gop` frames) and AAC, in the container
/// `name`'s extension says, with `extra` output options.
pub fn av_fixture_path(name: &str, secs: u32, size: &str, gop: u32, extra: &[&str]) -> PathBuf {
    let (src, secs, gop) = (
        format!("testsrc2=size={size}:rate=30"),
        secs.to_string(),
        gop.to_string(),
    );
    let mut args = vec!["-f", "lavfi", "-i", &src, "-f", "lavfi", "-i"];
    args.extend(["sine=frequency=440:sample_rate=48000", "-t", &secs]);
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-g", &gop]);
    args.extend(["-pix_fmt", "yuv420p", "-c:a", "aac"]);
    args.extend(extra);
    fixture_path(name, &args)
}

/// The bytes of [`h264_mp4_path`].
pub fn h264_mp4(secs: u32, size: &str, audio: bool) -> Vec<u8> {
    std::fs::read(h264_mp4_path(secs, size, audio)).unwrap()
}

/// `ffprobe -of json` with `args` on `path`.
pub fn ffprobe(path: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs curl with `args` (silent, errors shown, 120 s at most) and
/// asserts it succeeded; returns its standard output.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "120"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts the ffmpeg CLI, an independent player, decodes the HLS stream at
/// `url` without an error, fetching everything (segments, keys) itself.
pub fn assert_cli_plays(url: &str) {
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-allowed_extensions",
            "ALL",
            "-i",
            url,
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the ffmpeg CLI (quiet but for errors) with `args`; panics with
/// what it said when it fails; returns its stdout.
pub fn ffmpeg_ok<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Decodes a whole file with the ffmpeg CLI; returns its error output.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Decodes the first frame of `path` scaled to 4×4 RGB (48 bytes), with the
/// CLI's own autorotation: an independent view of "which way is up".
pub fn corner_colors(path: &Path) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-frames:v",
            "1",
            "-vf",
            "scale=4:4:flags=neighbor",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Playlist lines.
pub fn extinfs(playlist: &str) -> Vec<(f64, String)> {
    let lines: Vec<&str> = playlist.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let d = l
                .strip_prefix("#EXTINF:")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((d, lines.get(i + 1)?.to_string()))
        })
        .collect()
}

/// A small tmpfs mounted for a test (needs root); unmounted on drop.
pub struct Tmpfs(pub tempfile::TempDir);

impl Tmpfs {
    /// Mounts one of `bytes`; `None` if this process may not mount. In CI
    /// (which runs as root) not being able to is a failure, not a skip.
    pub fn mount(bytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs (runs as root)"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        }
        ok.then_some(Tmpfs(dir))
    }

    /// Remounts read-only (`true`) or read-write.
    pub fn set_read_only(&self, ro: bool) {
        let opt = if ro { "remount,ro" } else { "remount,rw" };
        let st = Command::new("mount")
            .args(["-o", opt])
            .arg(self.0.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

// ------------------------------------------------------------- HLS linting

/// One `hls-lint.mjs` process (npm `hls-parser` in strict mode) per test
/// binary, fed one playlist per line.
static LINTER: Mutex<Option<(Child, ChildStdin, BufReader<ChildStdout>)>> = Mutex::new(None);

/// Asserts that `text` (fetched from `uri`) is a valid playlist for a strict
/// HLS parser. Every playlist the tests fetch through [`request`] goes
/// through this.
pub fn lint_playlist(uri: &str, text: &str) {
    let mut guard = LINTER.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/hls-lint.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs the HLS linter (make test installs it)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        *guard = Some((child, stdin, stdout));
    }
    let (_, stdin, stdout) = guard.as_mut().unwrap();
    let line = serde_json::json!({"uri": uri, "text": text}).to_string();
    writeln!(stdin, "{line}").unwrap();
    let mut answer = String::new();
    stdout.read_line(&mut answer).unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("the HLS linter said {answer:?}: {e}"));
    assert_eq!(
        v["ok"], true,
        "strict HLS parser: {} in\n{text}",
        v["error"]
    );
}

// ------------------------------------------------------------ raw clients

/// A TCP connection to `to` from the local address `from` (any 127.x.y.z
/// works on Linux's loopback): several "clients" on one machine.
pub fn connect_from(from: std::net::Ipv4Addr, to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only")
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket(2)/bind(2)/connect(2) on a new descriptor with
    // valid sockaddr_in structures; the descriptor is owned by the returned
    // TcpStream (or closed on failure).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let local = sockaddr(from, 0);
        let remote = sockaddr(*to.ip(), to.port());
        let ok = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) == 0
            && libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) == 0;
        if !ok {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            panic!("connect from {from} to {to}: {e}");
        }
        TcpStream::from_raw_fd(fd)
    }
}

/// Runs `hlsd` with `args` on a fresh storage folder, expecting it to exit
/// (a refused configuration): its exit code and standard error.
pub fn exit_of(args: &[&str]) -> (Option<i32>, String) {
    let storage = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hlsd"))
        .args(["--listen", "127.0.0.1:0", "--storage"])
        .arg(storage.path())
        .args(args)
        .env("PATH", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for("hlsd to exit", || child.try_wait().unwrap());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

/// The server's metrics as name → value.
pub fn metrics_of(s: &Server) -> std::collections::HashMap<String, f64> {
    s.get("/metrics")
        .text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// A picture (after `filter`) as 16×9 gray bytes, by the ffmpeg CLI.
pub fn gray(input: &Path, filter: &str, at: Option<f64>) -> Vec<u8> {
    let mut c = Command::new("ffmpeg");
    c.args(["-v", "error"]);
    if let Some(t) = at {
        c.args(["-ss", &format!("{t:.3}")]);
    }
    let out = c
        .arg("-i")
        .arg(input)
        .args([
            "-frames:v",
            "1",
            "-vf",
            &format!("{filter},scale=16:9"),
            "-pix_fmt",
            "gray",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout.len(),
        144,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The mean absolute difference of two [`gray`] pictures (0–255).
pub fn gray_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

/// Waits until video `id` is `ready`, asking with `headers` (an API
/// token's `Authorization`).
pub fn wait_ready_with(s: &Server, id: &str, headers: &[(&str, &str)]) {
    wait_until(&format!("{id} to be ready"), || {
        let r = request(s.addr, "GET", &format!("/videos/{id}"), headers, b"");
        r.json()["status"] == "ready"
    });
}
