//! A real S3 server for the object-store tests: `s3s-fs` (SigV4 checked,
//! presigned URLs checked, conditional PUTs, multipart), started on a free
//! port over a temporary folder, with random credentials. `make test`
//! installs it (`cargo install s3s-fs@0.14.1`). With `HLSD_TEST_S3=garage`
//! (`make test-garage`), a one-node Garage cluster instead.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running S3 server with one bucket.
pub struct S3Server {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// The region its requests are signed for.
    pub region: String,
    /// It refuses a conditional write that lost (s3s-fs does, Garage not).
    pub exclusive: bool,
    child: Child,
    /// Starts the server again on the same port and data.
    relaunch: Box<dyn Fn(u16) -> Child + Send>,
}

/// A binary on `PATH`, else where `cargo install` puts it.
pub fn binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    });
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    on_path
        .or_else(|| cargo_home.map(|h| h.join("bin").join(name)))
        .filter(|f| f.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: `make test` installs it"))
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl S3Server {
    /// Starts the server with bucket `hlsd` and fresh credentials; returns
    /// once it answers.
    pub fn start() -> S3Server {
        match std::env::var("HLSD_TEST_S3").as_deref() {
            Ok("garage") => super::garage::start(),
            _ => Self::start_s3s(),
        }
    }

    fn start_s3s() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        let bucket = "hlsd".to_owned();
        std::fs::create_dir(root.path().join(&bucket)).unwrap();
        let (access_key, secret_key) = (format!("AK{}", random_hex(8)), random_hex(20));
        let (ak, sk, dir) = (
            access_key.clone(),
            secret_key.clone(),
            root.path().to_owned(),
        );
        let relaunch = move |port: u16| {
            Command::new(binary("s3s-fs"))
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &ak, "--secret-key", &sk])
                .arg(&dir)
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                // Its log says where it listens; once the port is known,
                // nobody needs to read it.
                .stdout(if port == 0 {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut child = relaunch(0);
        let addr = listening_address(&mut child);
        S3Server {
            addr,
            root,
            bucket,
            access_key,
            secret_key,
            region: "us-east-1".to_owned(),
            exclusive: true,
            child,
            relaunch: Box::new(relaunch),
        }
    }

    /// Assembles a server started elsewhere (Garage).
    pub fn from_parts(
        addr: SocketAddr,
        root: tempfile::TempDir,
        (access_key, secret_key): (String, String),
        child: Child,
        relaunch: Box<dyn Fn(u16) -> Child + Send>,
    ) -> S3Server {
        S3Server {
            addr,
            root,
            bucket: "hlsd".to_owned(),
            access_key,
            secret_key,
            region: "garage".to_owned(),
            exclusive: false,
            child,
            relaunch,
        }
    }

    /// A client of the bucket (hlsd's own), for what tests look at in it.
    pub fn client(&self) -> hlsd::storage::s3::S3Objects {
        hlsd::storage::s3::S3Objects::open(&hlsd::storage::s3::S3Settings {
            bucket: self.bucket.clone(),
            prefix: String::new(),
            endpoint: Some(self.endpoint()),
            region: self.region.clone(),
            path_style: true,
            access_key_id: self.access_key.clone(),
            secret_access_key: self.secret_key.clone(),
            session_token: None,
        })
        .unwrap()
    }

    /// The server's URL (path-style requests).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The keys stored in the bucket, sorted (listed through S3).
    pub fn keys(&self) -> Vec<String> {
        use hlsd::storage::objects::Objects;
        self.client()
            .list("")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }
}

/// Reads the server's log until it says where it listens.
fn listening_address(child: &mut Child) -> SocketAddr {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut told = false;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if !told {
                if let Some(rest) = line.split("server is running at http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                    told = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(super::DEADLINE)
        .expect("s3s-fs did not say where it listens");
    addr.trim_end_matches('/').parse().unwrap()
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// The flags and variables of an hlsd node storing under `prefix` of
    /// this server's bucket as node `node`.
    pub fn node_args(&self, prefix: &str, node: &str) -> (Vec<String>, Vec<(String, String)>) {
        let args = [
            "--store",
            &format!("s3://{}/{prefix}", self.bucket),
            "--s3-endpoint",
            &self.endpoint(),
            "--s3-path-style",
            "--s3-region",
            &self.region,
            "--node-name",
            node,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let env = vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), self.secret_key.clone()),
        ];
        (args, env)
    }

    /// Starts an hlsd node on `prefix` of the bucket, with `extra` flags.
    pub fn start_node(&self, prefix: &str, node: &str, extra: &[&str]) -> super::Server {
        let (mut args, env) = self.node_args(prefix, node);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::Server::process_with_env(tempfile::tempdir().unwrap(), &args, env)
    }

    /// [`S3Server::start_node`] speaking to the bucket through `endpoint`
    /// (a [`super::throttle::Throttle`] in front of it).
    pub fn start_node_via(
        &self,
        endpoint: &str,
        prefix: &str,
        node: &str,
        extra: &[&str],
    ) -> super::Server {
        let (mut args, env) = self.node_args(prefix, node);
        let at = args.iter().position(|a| a == "--s3-endpoint").unwrap();
        args[at + 1] = endpoint.to_owned();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::Server::process_with_env(tempfile::tempdir().unwrap(), &args, env)
    }

    /// The keys under `prefix/` of the bucket, relative to it.
    pub fn keys_under(&self, prefix: &str) -> Vec<String> {
        let p = format!("{prefix}/");
        self.keys()
            .into_iter()
            .filter_map(|k| k.strip_prefix(&p).map(str::to_owned))
            .collect()
    }
}

impl S3Server {
    /// Stops the server for good (a store that stays down).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again after [`S3Server::kill`], on the same port
    /// and data; returns once it answers.
    pub fn revive(&mut self) {
        self.child = (self.relaunch)(self.addr.port());
        super::wait_until("the S3 server to answer again", || {
            use hlsd::storage::objects::Objects;
            self.client().list("").is_ok()
        });
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: requests hang
    /// meanwhile, as with a store that stalls.
    pub fn freeze(&self, frozen: bool) {
        let sig = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}
