//! The spool's unit tests.
use super::*;
use std::io::Read;
use std::thread;

#[test]
fn reader_waits_for_growth_and_sees_eof_after_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source");
    let mut w = create(&path).unwrap();
    let mut r = w.reader(&path).unwrap();
    let t = thread::spawn(move || {
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        all
    });
    for chunk in [&b"abc"[..], b"de", b"f"] {
        thread::sleep(Duration::from_millis(20));
        w.append(chunk).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(t.join().unwrap(), b"abcdef");
}

#[test]
fn abort_wakes_a_blocked_reader_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source");
    let mut w = create(&path).unwrap();
    w.append(b"xy").unwrap();
    let mut r = w.reader(&path).unwrap();
    let ctl = w.control();
    let t = thread::spawn(move || {
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        r.read(&mut buf)
    });
    thread::sleep(Duration::from_millis(30));
    ctl.abort();
    let err = t.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

#[test]
fn hidden_bytes_wait_for_reveal_and_reopen_cuts_to_the_told_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source");
    let mut w = create(&path).unwrap();
    w.append(b"abc").unwrap();
    w.append_hidden(b"XYZ").unwrap();
    let mut r = w.reader(&path).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(r.read(&mut buf).unwrap(), 3);
    w.drop_hidden().unwrap();
    w.append_hidden(b"de").unwrap();
    w.reveal();
    assert_eq!(r.read(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"de");
    w.append(b"fgh").unwrap();
    drop((w, r));
    assert_eq!(std::fs::read(&path).unwrap(), b"abcdefgh");
    let mut w = reopen(&path, 5).unwrap();
    w.append(b"!").unwrap();
    w.finish().unwrap();
    let mut all = String::new();
    w.reader(&path).unwrap().read_to_string(&mut all).unwrap();
    assert_eq!(all, "abcde!");
}

#[test]
fn end_is_unknown_then_declared_then_final() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source");
    let mut w = create(&path).unwrap();
    let mut r = w.reader(&path).unwrap();
    w.append(b"0123").unwrap();
    assert_eq!(
        r.seek(SeekFrom::End(0)).unwrap_err().kind(),
        io::ErrorKind::Unsupported
    );
    w.set_expected(10, 0);
    assert_eq!(r.seek(SeekFrom::End(-2)).unwrap(), 8);
    w.append(b"456").unwrap();
    w.finish().unwrap();
    assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), 7);
    // A seek past the end reads EOF once finished.
    r.seek(SeekFrom::Start(2)).unwrap();
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "23456");
}

#[test]
fn an_mp4_with_its_index_at_the_end_gets_the_larger_size() {
    let dir = tempfile::tempdir().unwrap();
    let box_ = |kind: &[u8], len: u32| {
        let mut b = len.to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.resize(len as usize, 0);
        b
    };
    for (first, want) in [(&b"mdat"[..], 1002), (&b"moov"[..], 1000)] {
        let path = dir.path().join(std::str::from_utf8(first).unwrap());
        let mut w = create(&path).unwrap();
        let mut r = w.reader(&path).unwrap();
        w.set_expected(1000, 2);
        w.append(&box_(b"ftyp", 24)).unwrap();
        w.append(&box_(first, 100)).unwrap();
        assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), want);
    }
    // Not an MP4: the declared size.
    let path = dir.path().join("mkv");
    let mut w = create(&path).unwrap();
    let mut r = w.reader(&path).unwrap();
    w.set_expected(1000, 2);
    w.append(&[0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0]).unwrap();
    assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), 1000);
}
