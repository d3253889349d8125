//! A one-node Garage cluster for the object-store tests (`make
//! test-garage`, `HLSD_TEST_S3=garage`): its own folder, free ports, a
//! bucket `hlsd` and a key that owns it, set up with Garage's own CLI.

use super::s3::{random_hex, S3Server};
use std::path::Path;
use std::process::{Command, Stdio};

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn garage(config: &Path) -> Command {
    let mut c = Command::new(super::s3::binary("garage"));
    c.arg("-c").arg(config).stdin(Stdio::null());
    c
}

/// Runs a Garage CLI command; returns its output, panicking on failure.
fn run(config: &Path, args: &[&str]) -> String {
    let out = garage(config).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "garage {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts Garage, lays its one node out, makes the bucket and key.
pub fn start() -> S3Server {
    let root = tempfile::tempdir().unwrap();
    let p = root.path();
    let (s3, rpc) = (free_port(), free_port());
    let config = p.join("garage.toml");
    std::fs::write(
        &config,
        format!(
            "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
             replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
             [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage\"\n",
            meta = p.join("meta").display(),
            data = p.join("data").display(),
            secret = random_hex(32),
        ),
    )
    .unwrap();
    let serve = {
        let (config, log) = (config.clone(), p.join("garage.log"));
        move |_port: u16| {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            garage(&config)
                .arg("server")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap()
        }
    };
    let child = serve(s3);
    super::wait_until("garage to boot", || {
        garage(&config)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let id = run(&config, &["node", "id", "-q"]);
    let short = &id.trim()[..64];
    run(
        &config,
        &["layout", "assign", short, "-c", "1G", "-z", "dc1"],
    );
    run(&config, &["layout", "apply", "--version", "1"]);
    run(&config, &["bucket", "create", "hlsd"]);
    let key: serde_json::Value = serde_json::from_str(&run(
        &config,
        &["json-api", "CreateKey", r#"{"name":"hlsd"}"#],
    ))
    .unwrap();
    let (ak, sk) = (
        key["accessKeyId"].as_str().unwrap().to_owned(),
        key["secretAccessKey"].as_str().unwrap().to_owned(),
    );
    run(
        &config,
        &[
            "bucket", "allow", "--read", "--write", "--owner", "hlsd", "--key", &ak,
        ],
    );
    let addr = format!("127.0.0.1:{s3}").parse().unwrap();
    let server = S3Server::from_parts(addr, root, (ak, sk), child, Box::new(serve));
    super::wait_until("garage's S3 API to answer", || {
        use hlsd::storage::objects::Objects;
        server.client().list("").is_ok()
    });
    server
}
