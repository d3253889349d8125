//! `tsconf`'s unit tests, on packets made here.
use super::*;

/// One TS packet of `pid` carrying `payload` (padded with an adaptation
/// field's stuffing when short).
fn packet(pid: u16, start: bool, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 184);
    let mut p = vec![0x47, (u8::from(start) << 6) | (pid >> 8) as u8, pid as u8];
    let stuffing = 184 - payload.len();
    if stuffing == 0 {
        p.push(0x10);
    } else {
        p.push(0x30);
        p.push((stuffing - 1) as u8);
        if stuffing > 1 {
            p.push(0);
            p.extend(std::iter::repeat_n(0xff, stuffing - 2));
        }
    }
    p.extend_from_slice(payload);
    assert_eq!(p.len(), PACKET);
    p
}

/// A PSI section (pointer field 0) with its table bytes and a dummy CRC.
fn psi(table: &[u8]) -> Vec<u8> {
    let mut s = vec![0];
    s.extend_from_slice(table);
    s.extend_from_slice(&[0, 0, 0, 0]);
    s
}

fn stream(sps: &[u8], adts: [u8; 4]) -> Vec<u8> {
    // PAT: program 1 at PID 0x1000; PMT: H.264 at 0x100, AAC at 0x101.
    let pat = psi(&[0, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0x00]);
    let pmt = psi(&[
        2, 0xb0, 23, 0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0, 0, 0x1b, 0xe1, 0x00, 0xf0, 0, 0x0f, 0xe1,
        0x01, 0xf0, 0,
    ]);
    let mut es = vec![0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1];
    es.extend_from_slice(sps);
    es.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x38, 0x80, 0, 0, 1, 0x65]);
    es.extend(std::iter::repeat_n(0x88, 300));
    let mut pes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
    pes.extend_from_slice(&es);
    let mut out = packet(0, true, &pat);
    out.extend(packet(0x1000, true, &pmt));
    // The SPS split across two packets.
    out.extend(packet(0x100, true, &pes[..20]));
    for (i, chunk) in pes[20..].chunks(184).enumerate() {
        out.extend(packet(0x100, false, chunk));
        if i == 0 {
            let mut a = vec![0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
            a.extend_from_slice(&adts);
            a.extend_from_slice(&[0x1f, 0xfc, 0x21]);
            out.extend(packet(0x101, true, &a));
        }
    }
    out
}

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5];
const ADTS: [u8; 4] = [0xff, 0xf1, 0x50, 0x80];

fn read(bytes: &[u8], step: usize) -> TsConf {
    let mut c = TsConf::default();
    for chunk in bytes.chunks(step) {
        c.feed(chunk);
    }
    c
}

#[test]
fn the_sps_and_adts_header_are_read_in_any_chunking() {
    let ts = stream(SPS, ADTS);
    for step in [1, 100, 188, 1316, ts.len()] {
        let c = read(&ts, step);
        assert!(c.known(), "{step}");
        assert_eq!(c.config(), (Some(SPS.to_vec()), Some(ADTS)), "{step}");
    }
    // Out of step at first: found again at the next sync byte.
    let mut late = vec![1, 2, 3];
    late.extend_from_slice(&ts);
    assert_eq!(read(&late, 1316).config(), (Some(SPS.to_vec()), Some(ADTS)));
}

#[test]
fn another_size_or_channel_layout_reads_differently() {
    let first = read(&stream(SPS, ADTS), 1316).config();
    let mut other = SPS.to_vec();
    other[5] = 0x05;
    assert_ne!(read(&stream(&other, ADTS), 1316).config(), first);
    let stereo_to_mono = [0xff, 0xf1, 0x50, 0x40];
    assert_ne!(read(&stream(SPS, stereo_to_mono), 1316).config(), first);
    // The frame's length is not configuration.
    let longer = [0xff, 0xf1, 0x50, 0x81];
    assert_eq!(read(&stream(SPS, longer), 1316).config(), first);
}

#[test]
fn a_half_stream_is_not_known_yet() {
    let ts = stream(SPS, ADTS);
    assert!(!read(&ts[..3 * PACKET], 188).known());
    assert!(!read(&[], 188).known());
}
