//! The serving edge: HTTP caching (ETag, Last-Modified, 304, If-Range),
//! compression, HTTP/2 (cleartext by prior knowledge, and by ALPN under
//! TLS), the built-in TLS with its SIGHUP reload, and the limits every
//! connection keeps whatever its protocol.
//!
//! Players: the ffmpeg CLI speaks only HTTP/1.1 (over TLS too), so over
//! h2c a whole playback is fetched by curl on one HTTP/2 connection and
//! decoded by ffmpeg; Chromium + hls.js over HTTPS/h2 is in browser.rs.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn clip(secs: u32) -> Vec<u8> {
    h264_mp4(secs, "320x240", true)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, "GET", path, headers, &[])
}

/// Checks a segment's validators and ranges; returns its ETag.
fn check_segment_validators(addr: SocketAddr, path: &str) -> String {
    let full = get_with(addr, path, &[]);
    assert_eq!(full.status, 200);
    let cc = full.header("cache-control").unwrap();
    assert!(cc.contains("immutable") && cc.contains("max-age"), "{cc}");
    let etag = full.header("etag").unwrap().to_owned();
    let lm = full.header("last-modified").unwrap().to_owned();
    let len = full.body.len();
    let r = get_with(addr, path, &[("If-None-Match", &etag)]);
    assert_eq!((r.status, r.body.len()), (304, 0));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        get_with(addr, path, &[("If-Modified-Since", &lm)]).status,
        304
    );
    // Right ETag: the range; a stale one: the whole (current) file.
    let r = get_with(addr, path, &[("Range", "bytes=0-187"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-187/{len}").as_str())
    );
    assert_eq!(r.body, full.body[..188]);
    let r = get_with(
        addr,
        path,
        &[("Range", "bytes=0-187"), ("If-Range", "\"stale\"")],
    );
    assert_eq!((r.status, r.body.len()), (200, len));
    // If-Range with the date works only for exactly that date.
    let r = get_with(addr, path, &[("Range", "bytes=188-"), ("If-Range", &lm)]);
    assert_eq!((r.status, &r.body[..]), (206, &full.body[188..]));
    let earlier = httpdate::fmt_http_date(
        httpdate::parse_http_date(&lm).unwrap() - Duration::from_secs(86_400),
    );
    let r = get_with(
        addr,
        path,
        &[("Range", "bytes=188-"), ("If-Range", &earlier)],
    );
    assert_eq!((r.status, r.body.len()), (200, len));
    assert_eq!(
        get_with(addr, path, &[("If-Modified-Since", &earlier)]).status,
        200
    );
    etag
}

#[test]
fn conditional_requests_follow_growing_and_finished_playlists_and_segments() {
    let mut s = Server::start(&["--segment-seconds", "2"]);
    let data = clip(12);
    let upload = PartialUpload::start(s.addr, &data, data.len() / 2);
    let id = s.wait_video_folder();
    let path = format!("/play/{id}/video.m3u8");
    let first = wait_for("a growing playlist with a segment", || {
        let r = s.get(&path);
        let t = r.text();
        (r.status == 200 && t.contains("#EXTINF") && !t.contains("#EXT-X-ENDLIST")).then_some(r)
    });
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    let etag1 = first.header("etag").unwrap().to_owned();
    // Unchanged text, same ETag; the client's copy is current.
    let again = get_with(s.addr, &path, &[("If-None-Match", &etag1)]);
    assert!(
        again.status == 304 || again.text() != first.text(),
        "{}",
        again.status
    );
    assert_eq!(upload.finish().status, 201);
    let grown = wait_for("the playlist to grow", || {
        let r = s.get(&path);
        (r.text() != first.text()).then_some(r)
    });
    assert_ne!(grown.header("etag"), Some(etag1.as_str()));
    // A player polling with the old ETag gets the new playlist.
    let r = get_with(s.addr, &path, &[("If-None-Match", &etag1)]);
    assert_eq!(r.status, 200);
    assert_eq!(s.wait_done(&id)["status"], "ready");

    let done = s.get(&path);
    assert!(done.text().contains("#EXT-X-ENDLIST"));
    let cc = done.header("cache-control").unwrap();
    assert!(cc.contains("max-age") && !cc.contains("no-cache"), "{cc}");
    let etag = done.header("etag").unwrap().to_owned();
    let lm = done.header("last-modified").unwrap().to_owned();
    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        "*".into(),
        format!("\"x\", {etag}"),
    ] {
        let r = get_with(s.addr, &path, &[("If-None-Match", &inm)]);
        assert_eq!((r.status, r.body.len()), (304, 0), "{inm}");
    }
    assert_eq!(
        get_with(s.addr, &path, &[("If-Modified-Since", &lm)]).status,
        304
    );
    // If-None-Match decides when both are sent.
    let r = get_with(
        s.addr,
        &path,
        &[("If-None-Match", "\"x\""), ("If-Modified-Since", &lm)],
    );
    assert_eq!(r.status, 200);

    let (_, seg) = extinfs(&done.text()).into_iter().next().unwrap();
    let seg = format!("/play/{id}/{seg}");
    let cached = check_segment_validators(s.addr, &seg);
    // From disk (no cache) the same validators, and they survive a restart.
    s.stop();
    s.restart(&["--cache-bytes", "0"]);
    assert_eq!(check_segment_validators(s.addr, &seg), cached);
    assert_eq!(
        get_with(s.addr, &path, &[("If-None-Match", &etag)]).status,
        304
    );
}

#[test]
fn playlists_and_json_are_gzipped_and_media_never() {
    for format in ["ts", "fmp4"] {
        let s = Server::start(&["--segment-seconds", "1", "--segment-format", format]);
        let id = upload_ok(&s, &clip(20), FAST);
        assert_eq!(s.wait_done(&id)["status"], "ready");
        let path = format!("/play/{id}/video.m3u8");
        let plain = s.get(&path);
        assert!(plain.header("vary").unwrap().contains("Accept-Encoding"));
        assert!(plain.body.len() > 600, "{}", plain.text());
        let z = get_with(s.addr, &path, &[("Accept-Encoding", "br;q=1, gzip;q=0.5")]);
        assert_eq!(z.header("content-encoding"), Some("gzip"));
        assert!(z.header("vary").unwrap().contains("Accept-Encoding"));
        assert_eq!(
            z.header("content-length"),
            Some(z.body.len().to_string().as_str())
        );
        assert!(z.body.len() < plain.body.len() / 2);
        assert_eq!(gunzip(&z.body), plain.body);
        lint_playlist(&path, &String::from_utf8(gunzip(&z.body)).unwrap());
        // The two codings are two representations: two ETags, each
        // revalidates.
        let ze = z.header("etag").unwrap().to_owned();
        assert_ne!(Some(ze.as_str()), plain.header("etag"));
        let r = get_with(
            s.addr,
            &path,
            &[("Accept-Encoding", "gzip"), ("If-None-Match", &ze)],
        );
        assert_eq!(r.status, 304);
        let r = get_with(s.addr, &path, &[("Accept-Encoding", "gzip;q=0, identity")]);
        assert_eq!((r.header("content-encoding"), &r.body), (None, &plain.body));
        // JSON answers too.
        // (The record settles once after `ready`, its storage measured
        // when the upload is gone: compare two codings of one state.)
        let (json, zj) = wait_for("one state of the list in both codings", || {
            let json = s.get("/videos?limit=100");
            let zj = get_with(s.addr, "/videos?limit=100", &[("Accept-Encoding", "gzip")]);
            (s.get("/videos?limit=100").body == json.body).then_some((json, zj))
        });
        if json.body.len() >= 512 {
            assert_eq!(zj.header("content-encoding"), Some("gzip"));
            assert_eq!(gunzip(&zj.body), json.body);
        }
        let rec = get_with(
            s.addr,
            &format!("/videos/{id}"),
            &[("Accept-Encoding", "gzip")],
        );
        let rec_plain = s.get(&format!("/videos/{id}"));
        assert!(rec_plain.body.len() >= 512, "{}", rec_plain.text());
        assert_eq!(rec.header("content-encoding"), Some("gzip"));
        let back: serde_json::Value = serde_json::from_slice(&gunzip(&rec.body)).unwrap();
        assert_eq!(back["id"], id.as_str());
        // Media never: segments, init segments, posters.
        let mut media: Vec<String> = extinfs(&plain.text()).into_iter().map(|(_, n)| n).collect();
        if format == "fmp4" {
            media.push("init.mp4".into());
            assert!(plain.text().contains("init.mp4"));
        }
        media.push("poster.jpg".into());
        for name in media.iter().take(3).chain(media.iter().rev().take(2)) {
            let r = get_with(
                s.addr,
                &format!("/play/{id}/{name}"),
                &[("Accept-Encoding", "gzip")],
            );
            assert_eq!(r.status, 200, "{name}");
            assert_eq!(r.header("content-encoding"), None, "{name}");
            assert_eq!(r.header("vary"), None, "{name}");
        }
    }
}

/// Polls a video's record through curl until it is ready.
fn curl_wait_ready(opts: &[&str], base: &str, id: &str) {
    let url = format!("{base}/videos/{id}");
    wait_until("the video to be ready", || {
        let mut args = opts.to_vec();
        args.push(&url);
        let v: serde_json::Value = serde_json::from_str(&curl(&args)).unwrap();
        assert_ne!(v["status"], "failed", "{v}");
        v["status"] == "ready"
    });
}

/// Uploads with curl -F; returns (HTTP version, the answer).
fn curl_upload(opts: &[&str], base: &str, file: &Path) -> (String, serde_json::Value) {
    let form = format!("video=@{}", file.display());
    let url = format!("{base}/upload");
    let mut args = opts.to_vec();
    args.extend([
        "-F",
        &form,
        "-w",
        "\n%{http_version} %{response_code}",
        &url,
    ]);
    let out = curl(&args);
    let (json, tail) = out.rsplit_once('\n').unwrap();
    let (version, code) = tail.split_once(' ').unwrap();
    assert_eq!(code, "201", "{out}");
    (version.to_owned(), serde_json::from_str(json).unwrap())
}

/// The media playlist behind `/play/{id}/video.m3u8` (the first variant's
/// when it is a master), fetched and linted with `fetch`; returns the
/// paths of its segments.
fn segment_paths(id: &str, fetch: &mut dyn FnMut(&str) -> String) -> Vec<String> {
    let master_path = format!("/play/{id}/video.m3u8");
    let master = fetch(&master_path);
    lint_playlist(&master_path, &master);
    let first = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty());
    let (prefix, media) = match first {
        Some(v) if master.contains("#EXT-X-STREAM-INF") => {
            let path = format!("/play/{id}/{v}");
            let media = fetch(&path);
            lint_playlist(&path, &media);
            let dir = v
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| format!("{d}/"));
            (dir, media)
        }
        _ => (String::new(), master),
    };
    let names: Vec<String> = extinfs(&media).into_iter().map(|(_, n)| n).collect();
    assert!(names.len() >= 3, "{media}");
    names
        .iter()
        .map(|n| format!("/play/{id}/{prefix}{n}"))
        .collect()
}

/// Decodes the concatenated segments with the ffmpeg CLI.
fn assert_segments_decode(segments: &[Vec<u8>]) {
    let dir = tempfile::tempdir().unwrap();
    let joined = dir.path().join("all.ts");
    std::fs::write(&joined, segments.concat()).unwrap();
    assert_eq!(decode_errors(&joined), "");
}

/// Plays over TLS with curl: the playlists, then every segment in one curl
/// run (one connection, reused), each answer over HTTP/2.
fn play_over_one_https_connection(base: &str, id: &str) {
    let opts = ["-k", "--http2"];
    let mut fetch = |path: &str| curl(&["-k", "--http2", &format!("{base}{path}")]);
    let paths = segment_paths(id, &mut fetch);
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..paths.len())
        .map(|i| dir.path().join(format!("{i}.ts")))
        .collect();
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-w".into(),
        "%{http_version} %{num_connects} %{response_code}\n".into(),
    ]);
    for (path, file) in paths.iter().zip(&files) {
        args.extend([
            format!("{base}{path}"),
            "-o".into(),
            file.display().to_string(),
        ]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = curl(&refs);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), paths.len(), "{report}");
    let mut connects = 0;
    for l in &lines {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!((f[0], f[2]), ("2", "200"), "{report}");
        connects += f[1].parse::<u32>().unwrap();
    }
    assert_eq!(connects, 1, "every segment over one connection: {report}");
    let bodies: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_segments_decode(&bodies);
}

/// Plays over one h2c (prior knowledge) connection with hyper's client:
/// the playlists and every segment, each answer over HTTP/2.
fn play_over_one_h2c_connection(addr: SocketAddr, id: &str) {
    use http_body_util::BodyExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(tcp);
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut get = |path: String| {
            let req = http::Request::get(format!("http://{addr}{path}"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            let res = send.send_request(req);
            async move {
                let res = tokio::time::timeout(DEADLINE, res).await.unwrap().unwrap();
                assert_eq!(
                    (res.version(), res.status()),
                    (http::Version::HTTP_2, http::StatusCode::OK),
                    "{path}"
                );
                res.into_body().collect().await.unwrap().to_bytes().to_vec()
            }
        };
        // The playlists first (segment_paths reads them from here).
        let mut texts = std::collections::HashMap::new();
        let master_path = format!("/play/{id}/video.m3u8");
        let master = String::from_utf8(get(master_path.clone()).await).unwrap();
        texts.insert(master_path, master.clone());
        let variant = master
            .lines()
            .find(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_owned);
        if let Some(v) = variant.filter(|_| master.contains("#EXT-X-STREAM-INF")) {
            let p = format!("/play/{id}/{v}");
            texts.insert(p.clone(), String::from_utf8(get(p).await).unwrap());
        }
        let paths = segment_paths(id, &mut |p| texts[p].clone());
        let mut bodies = Vec::new();
        for p in paths {
            bodies.push(get(p).await);
        }
        assert_segments_decode(&bodies);
    });
}

#[test]
fn http2_cleartext_uploads_and_plays_over_one_connection() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let base = format!("http://{}", s.addr);
    let h2c = ["--http2-prior-knowledge"];
    let (version, v) = curl_upload(&h2c, &base, &h264_mp4_path(12, "320x240", true));
    assert_eq!(version, "2");
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["playback_url"], format!("{base}/play/{id}/video.m3u8"));
    curl_wait_ready(&h2c, &base, &id);
    play_over_one_h2c_connection(s.addr, &id);
    // HTTP/1.1 on the same port still works.
    assert_eq!(s.get(&format!("/play/{id}/video.m3u8")).status, 200);
}

/// A self-signed pair for localhost and 127.0.0.1, written to `dir`.
fn make_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k, cert.der().to_vec())
}

#[test]
fn https_serves_http2_and_http1_and_plays_in_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = make_pair(dir.path(), "a");
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let s = Server::start(&["--segment-seconds", "2", "--tls-cert", c, "--tls-key", k]);
    let base = format!("https://{}", s.addr);
    let h2 = ["-k", "--http2"];
    let (version, v) = curl_upload(&h2, &base, &h264_mp4_path(12, "320x240", true));
    assert_eq!(version, "2");
    let id = v["id"].as_str().unwrap().to_owned();
    let playback = format!("{base}/play/{id}/video.m3u8");
    assert_eq!(v["playback_url"], playback.as_str());
    curl_wait_ready(&h2, &base, &id);
    play_over_one_https_connection(&base, &id);
    let h1 = curl(&[
        "-k",
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &playback,
    ]);
    assert_eq!(h1, "1.1");
    // The ffmpeg CLI (HTTP/1.1 over TLS) plays it.
    assert_cli_plays(&playback);
    // Plain HTTP to the TLS port is refused, not left hanging.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            &format!("http://{}/healthz", s.addr),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn tls_files_that_do_not_fit_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, _, _) = make_pair(dir.path(), "a");
    let (_, b_key, _) = make_pair(dir.path(), "b");
    let (c, k) = (a_cert.to_str().unwrap(), b_key.to_str().unwrap());
    let (code, err) = exit_of(&["--tls-cert", c, "--tls-key", k]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not match"), "{err}");
    let (code, err) = exit_of(&["--tls-cert", "/nonexistent.pem", "--tls-key", k]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read"), "{err}");
    let (code, err) = exit_of(&["--tls-cert", k, "--tls-key", k]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no certificate"), "{err}");
    let (code, _) = exit_of(&["--tls-cert", c]);
    assert_eq!(code, Some(2));
}

// ------------------------------------------------- a TLS client for reloads

/// Accepts any server certificate (the test compares it itself).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type TlsConn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A kept-alive HTTP/1.1 connection over TLS, and the certificate it got.
fn tls_connect(addr: SocketAddr) -> (TlsConn, Vec<u8>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    let cert = tls.conn.peer_certificates().unwrap()[0].to_vec();
    (tls, cert)
}

/// One GET on a kept-alive connection (the answer has a Content-Length).
fn get_on(conn: &mut TlsConn, path: &str) -> (u16, Vec<u8>) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).unwrap(), 1, "connection closed");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).unwrap();
    (status, body)
}

#[test]
fn sighup_reloads_the_certificate_and_open_connections_keep_playing() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, a_der) = make_pair(dir.path(), "live");
    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let log = dir.path().join("hlsd.log");
    let s = Server::process_logged(
        &["--segment-seconds", "2", "--tls-cert", c, "--tls-key", k],
        &log,
    );
    let base = format!("https://{}", s.addr);
    let (_, v) = curl_upload(&["-k"], &base, &h264_mp4_path(12, "320x240", true));
    let id = v["id"].as_str().unwrap().to_owned();
    curl_wait_ready(&["-k"], &base, &id);

    let (mut open, got) = tls_connect(s.addr);
    assert_eq!(got, a_der);
    let (status, master) = get_on(&mut open, &format!("/play/{id}/video.m3u8"));
    assert_eq!(status, 200);
    let master = String::from_utf8(master).unwrap();

    // A new pair in place of the old, then SIGHUP.
    let (b_cert, b_key, b_der) = make_pair(dir.path(), "b");
    std::fs::rename(&b_key, &key).unwrap();
    std::fs::rename(&b_cert, &cert).unwrap();
    assert_eq!(unsafe { libc::kill(s.pid(), libc::SIGHUP) }, 0);
    wait_until("new connections to get the new certificate", || {
        tls_connect(s.addr).1 == b_der
    });

    // The connection opened before plays on: every segment, decoded.
    let segments = dir.path().join("open.ts");
    let mut all = Vec::new();
    for (_, name) in extinfs(&master) {
        let (status, body) = get_on(&mut open, &format!("/play/{id}/{name}"));
        assert_eq!(status, 200);
        all.extend(body);
    }
    assert!(!all.is_empty(), "{master}");
    std::fs::write(&segments, all).unwrap();
    assert_eq!(decode_errors(&segments), "");
    assert_eq!(open.conn.peer_certificates().unwrap()[0].to_vec(), a_der);

    // A pair that does not fit: the server says so and keeps the one it has.
    let (c_cert, _, _) = make_pair(dir.path(), "c");
    std::fs::rename(&c_cert, &cert).unwrap();
    assert_eq!(unsafe { libc::kill(s.pid(), libc::SIGHUP) }, 0);
    wait_until("the failed reload to be logged", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("previous certificate stays")
    });
    assert_eq!(tls_connect(s.addr).1, b_der);
    assert_eq!(get_on(&mut tls_connect(s.addr).0, "/healthz").0, 200);
}

// ------------------------------------------------ limits on every protocol

/// Reads until the server closes the connection (EOF or reset); panics if
/// it is still open at the deadline.
fn wait_closed(mut c: impl Read) {
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[test]
fn silent_and_idle_connections_are_closed_on_every_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = make_pair(dir.path(), "a");
    let limits = ["--header-timeout-secs", "1", "--keep-alive-secs", "1"];
    let plain = Server::start(&limits);
    let mut tls_args = limits.to_vec();
    tls_args.extend([
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let tls = Server::start(&tls_args);
    let open = |addr| {
        let c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        c
    };
    // Nothing at all, on either port.
    wait_closed(open(plain.addr));
    wait_closed(open(tls.addr));
    // Part of the HTTP/2 preface, the whole preface, a TLS hello cut short.
    for start in [
        &b"PRI * HTT"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0",
    ] {
        let mut c = open(plain.addr);
        c.write_all(start).unwrap();
        wait_closed(c);
    }
    let mut c = open(tls.addr);
    c.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    wait_closed(c);
    // After a request, an idle keep-alive connection (HTTP/1.1, and TLS).
    let mut c = open(plain.addr);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    wait_closed(c);
    let (mut t, _) = tls_connect(tls.addr);
    assert_eq!(get_on(&mut t, "/healthz").0, 200);
    wait_closed(t);
    // Both still serve.
    assert_eq!(plain.get("/healthz").status, 200);
    assert_eq!(get_on(&mut tls_connect(tls.addr).0, "/healthz").0, 200);
}

#[test]
fn a_response_still_being_sent_keeps_its_connection_open() {
    // Idle limits of a second, and an event stream that stays quiet for
    // its keep-alive interval (15 s): the stream is a request in progress
    // until its last byte, so the connection is not closed under it.
    let s = Server::start(&["--header-timeout-secs", "1", "--keep-alive-secs", "1"]);
    let created = request(
        s.addr,
        "POST",
        "/files",
        &[("Tus-Resumable", "1.0.0"), ("Upload-Length", "1000000")],
        b"",
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        c,
        "GET /videos/{id}/events HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(": keep-alive") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => panic!(
                "the event stream was cut: {}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(String::from_utf8_lossy(&got).contains("event: receiving"));
}
