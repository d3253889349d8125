//! Fields after the file (issue 29, item 5): `curl -F video=@clip.mp4
//! -F title="Holiday"`, the order most people type, keeps its title (the
//! 201 says it, the video is ready with it); a field after the file that
//! would change the encoding (`encrypt`) is a clear 400 and leaves
//! nothing behind, as are a second file and too many or too large
//! fields after it.

use crate::common::*;

/// curl's status code and body for `POST /upload` with `form` (`-F`
/// arguments, in order).
fn post(s: &Server, form: &[&str]) -> (u16, serde_json::Value) {
    let url = format!("http://{}/upload", s.addr);
    let mut args = vec!["-w", "\n%{http_code}", url.as_str()];
    for f in form {
        args.extend(["-F", f]);
    }
    let text = curl(&args);
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), serde_json::from_str(body).unwrap())
}

/// No video, and no folder, is left.
fn nothing_left(s: &Server) {
    wait_until("the refused upload's files to go", || {
        s.storage_entries().iter().all(|e| e.starts_with('.'))
    });
    assert_eq!(s.get("/videos").json()["videos"], serde_json::json!([]));
}

#[test]
fn a_title_after_the_file_is_kept() {
    let s = Server::start(&[]);
    let clip = h264_mp4_path(2, "160x120", true);
    let file = format!("video=@{};filename=clip.mp4", clip.display());
    let (code, body) = post(&s, &[&file, "title=Holiday in Crete"]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["title"], "Holiday in Crete", "{body}");
    let id = body["id"].as_str().unwrap();
    let rec = s.wait_done(id);
    assert_eq!(
        (rec["status"].as_str(), rec["title"].as_str()),
        (Some("ready"), Some("Holiday in Crete"))
    );
    // Before and after: the later one wins; an empty one changes nothing.
    let (code, body) = post(&s, &["title=First", &file, "title=Second", "title= "]);
    assert_eq!(
        (code, body["title"].as_str()),
        (201, Some("Second")),
        "{body}"
    );
    // Other fields after the file are read and dropped.
    let (code, body) = post(&s, &[&file, "note=hello", "encrypt=0"]);
    assert_eq!(
        (code, body["title"].as_str()),
        (201, Some("clip")),
        "{body}"
    );
}

#[test]
fn what_would_change_the_encoding_after_the_file_is_refused() {
    let s = Server::start(&[]);
    let clip = h264_mp4_path(2, "160x120", true);
    let file = format!("video=@{};filename=clip.mp4", clip.display());
    let big = format!("title={}", "x".repeat(5000));
    let many: Vec<String> = (0..20).map(|i| format!("f{i}=v")).collect();
    let mut too_many = vec![file.as_str()];
    too_many.extend(many.iter().map(String::as_str));
    let second = format!("other=@{}", clip.display());
    let cases: [(&[&str], u16, &str); 4] = [
        (&[&file, "encrypt=1"], 400, "encrypt"),
        (&[&file, &second], 400, "one file"),
        (&too_many, 400, "fields may follow"),
        (&[&file, &big], 413, ""),
    ];
    for (form, want, says) in cases {
        let (code, body) = post(&s, form);
        assert_eq!(code, want, "{form:?}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{body}"
        );
        nothing_left(&s);
    }
}
