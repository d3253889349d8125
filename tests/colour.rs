//! HDR and wide-gamut sources (issue 31): every H.264 rendition, poster and
//! storyboard tile of a PQ or HLG phone-style source is tone-mapped to
//! BT.709 SDR (compared with the ffmpeg CLI's zscale + tonemap reference of
//! the same frame), absurd metadata falls back instead of a white picture,
//! BT.601 and full-range sources are converted, a BT.709 control is left
//! as it was, every output says what it is (VUI tags), and the record says
//! what came in.

use crate::common::*;
use std::path::{Path, PathBuf};

/// A linear-light master like a phone's HDR grade: testsrc2 with SDR white
/// at 203 nits (BT.2408) over a grey ramp to 1,000 nits; tags set after
/// `vstack`, which drops them.
const MASTER: &str = "testsrc2=s=320x150:r=25:d=2,format=yuv420p,\
setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709,\
zscale=t=linear:p=bt709:npl=100,format=gbrpf32le,\
geq=r='2.03*r(X\\,Y)':g='2.03*g(X\\,Y)':b='2.03*b(X\\,Y)'[pic];\
color=c=black:s=320x60:r=25:d=2,format=gbrpf32le,\
geq=r='10*pow(X/(W-1)\\,3)':g='10*pow(X/(W-1)\\,3)':b='10*pow(X/(W-1)\\,3)',\
setparams=range=pc:color_primaries=bt709:color_trc=linear:colorspace=gbr[ramp];\
[pic][ramp]vstack,setparams=range=pc:color_primaries=bt709:color_trc=linear:colorspace=gbr";

/// An HEVC Main 10 BT.2020 source with transfer `trc` and x265 `extra`.
fn hdr(name: &str, trc: &str, extra: &str) -> PathBuf {
    let graph = format!(
        "{MASTER},zscale=p=bt2020:t={trc}:m=bt2020nc:r=tv:npl=100:agamma=0,format=yuv420p10le"
    );
    let params = format!("log-level=error:colorprim=bt2020:colormatrix=bt2020nc:range=limited:transfer={trc}:repeat-headers=1{extra}");
    fixture_path(
        name,
        &[
            "-filter_complex",
            &graph,
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-crf",
            "18",
            "-tag:v",
            "hvc1",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            trc,
            "-colorspace",
            "bt2020nc",
            "-color_range",
            "tv",
            "-x265-params",
            &params,
        ],
    )
}

const MD_1000: &str = ":hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,210";
const MD_ABSURD: &str = ":hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(50,1):max-cll=0,0";

/// An SDR H.264 or MJPEG source: testsrc2 through `vf`, encoded with `codec`.
fn sdr(name: &str, size: &str, vf: &str, codec: &[&str]) -> PathBuf {
    let src = format!("testsrc2=s={size}:r=25:d=2");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-vf", vf];
    args.extend_from_slice(codec);
    fixture_path(name, &args)
}

/// The CLI's reference conversion of frame 0 of a PQ or HLG source.
fn tone_mapped(tin: &str) -> String {
    let agamma = if tin == "arib-std-b67" {
        ":agamma=0"
    } else {
        ""
    };
    format!(
        "zscale=tin={tin}:min=bt2020nc:pin=bt2020:rin=tv:t=linear:npl=100{agamma}:p=bt709,\
         format=gbrpf32le,tonemap=tonemap=mobius:desat=0:peak=10,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
    )
}

/// Mean luma and saturation (`signalstats`) of the first frame of `input`
/// after `vf`.
fn stats(input: &str, vf: &str) -> (f64, f64) {
    let filter = format!(
        "{vf}{}signalstats,metadata=print:file=-",
        if vf.is_empty() { "" } else { "," }
    );
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-i",
            input,
            "-frames:v",
            "1",
            "-vf",
            &filter,
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| -> f64 {
        text.lines()
            .find_map(|l| l.split_once(&format!("lavfi.signalstats.{k}=")))
            .map(|(_, v)| v.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("no {k} in {text}"))
    };
    (get("YAVG"), get("SATAVG"))
}

/// The colour tags of the first video stream of `input`.
fn tags(input: &str) -> String {
    let v = ffprobe(
        Path::new(input),
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=color_range,color_space,color_transfer,color_primaries",
        ],
    );
    let s = &v["streams"][0];
    format!(
        "{}/{}/{}/{}",
        s["color_range"], s["color_space"], s["color_transfer"], s["color_primaries"]
    )
    .replace('"', "")
}

/// A JPEG's full range back to limited, to compare its values with a
/// video's.
const JPEG_TO_TV: &str = "scale=in_range=pc:out_range=tv,format=yuv420p";

fn close(what: &str, got: (f64, f64), want: (f64, f64)) {
    eprintln!("{what}: luma/saturation {got:?}, the CLI's {want:?}");
    assert!(
        (got.0 - want.0).abs() <= 1.5 && (got.1 - want.1).abs() <= 2.5,
        "{what}: luma/saturation {got:?}, the CLI's {want:?}"
    );
}

/// Uploads `file` and waits for it; the record and the top rung's URL.
fn processed(s: &Server, file: &Path) -> (serde_json::Value, String) {
    let id = upload_ok(s, &std::fs::read(file).unwrap(), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let top = rec["renditions"][0]["playlist"].as_str().unwrap();
    (rec.clone(), format!("http://{}/play/{id}/{top}", s.addr))
}

#[test]
fn hdr_sources_are_tone_mapped_to_bt709_sdr_everywhere() {
    let s = Server::start(&["--ladder", "source"]);
    let pq = hdr("colour-pq.mp4", "smpte2084", MD_1000);
    let hlg = hdr("colour-hlg.mp4", "arib-std-b67", "");
    let absurd = hdr("colour-pq-absurd.mp4", "smpte2084", MD_ABSURD);
    let bare = hdr("colour-pq-bare.mp4", "smpte2084", "");
    for (file, tin) in [
        (&pq, "smpte2084"),
        (&hlg, "arib-std-b67"),
        (&absurd, "smpte2084"),
        (&bare, "smpte2084"),
    ] {
        let want = stats(file.to_str().unwrap(), &tone_mapped(tin));
        let (rec, url) = processed(&s, file);
        let name = file.file_name().unwrap().to_string_lossy();
        close(&name, stats(&url, ""), want);
        assert_eq!(tags(&url), "tv/bt709/bt709/bt709", "{name}");
        let id = rec["id"].as_str().unwrap();
        let poster = format!("http://{}/play/{id}/poster.jpg", s.addr);
        close(&format!("{name} poster"), stats(&poster, JPEG_TO_TV), want);
        // The MP4 download (the H.264 top rung) and the image API's frames
        // (decoded from an H.264 rendition) too.
        let download = format!("http://{}/play/{id}/download.mp4", s.addr);
        close(&format!("{name} download"), stats(&download, ""), want);
        let frame = format!("http://{}/play/{id}/thumbnail.jpg?time=0", s.addr);
        close(
            &format!("{name} image API"),
            stats(&frame, JPEG_TO_TV),
            want,
        );
        let png = format!("http://{}/play/{id}/thumbnail.png?time=0", s.addr);
        let rgb_to_tv = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p";
        close(
            &format!("{name} image API, PNG"),
            stats(&png, rgb_to_tv),
            want,
        );
        let colour = &rec["source"]["video"]["colour"];
        let transfer = if tin == "smpte2084" { "pq" } else { "hlg" };
        assert_eq!(colour["transfer"], transfer, "{rec}");
        assert_eq!(colour["primaries"], "bt2020", "{rec}");
        assert_eq!(colour["bit_depth"], 10, "{rec}");
        assert_eq!(rec["copied"], false, "{rec}");
    }
    // What came in, HDR metadata included (it was in the stream's SEI).
    let (rec, _) = processed(&s, &pq);
    let colour = &rec["source"]["video"]["colour"];
    assert_eq!(
        colour["mastering_display"]["max_luminance"], 1000.0,
        "{rec}"
    );
    assert_eq!(colour["content_light"]["max_cll"], 1000, "{rec}");
}

#[test]
fn storyboard_tiles_of_an_hdr_source_are_sdr_too() {
    let s = Server::start(&["--ladder", "source"]);
    let pq = hdr("colour-pq.mp4", "smpte2084", MD_1000);
    let want = stats(pq.to_str().unwrap(), &tone_mapped("smpte2084"));
    let (rec, _) = processed(&s, &pq);
    let id = rec["id"].as_str().unwrap();
    let vtt = s.get(&format!("/play/{id}/storyboard.vtt")).text();
    let tile = vtt.lines().find(|l| l.contains("#xywh=")).unwrap();
    let (sheet, frag) = tile.split_once("#xywh=").unwrap();
    let xywh: Vec<&str> = frag.split(',').collect();
    let crop = format!("crop={}:{}:{}:{}", xywh[2], xywh[3], xywh[0], xywh[1]);
    let url = format!("http://{}/play/{id}/{sheet}", s.addr);
    close(
        "storyboard tile",
        stats(&url, &format!("{crop},{JPEG_TO_TV}")),
        want,
    );
}

#[test]
fn sdr_sources_keep_their_colours_and_come_out_bt709_limited() {
    let s = Server::start(&["--ladder", "source", "--copy", "never"]);
    let bt601 = sdr(
        "colour-bt601.mp4",
        "640x480",
        "format=rgb24,scale=out_color_matrix=bt601:out_range=tv,format=yuv420p",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "18",
            "-color_primaries",
            "smpte170m",
            "-color_trc",
            "smpte170m",
            "-colorspace",
            "smpte170m",
            "-color_range",
            "tv",
        ],
    );
    let mjpeg = sdr(
        "colour-mjpeg-full.mov",
        "640x360",
        "format=rgb24,scale=out_color_matrix=bt601:out_range=pc,format=yuvj420p",
        &[
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "-color_range",
            "pc",
            "-colorspace",
            "bt470bg",
        ],
    );
    for (file, from) in [(&bt601, "in_range=tv"), (&mjpeg, "in_range=pc")] {
        let reference = format!(
            "scale=in_color_matrix=bt601:{from}:out_color_matrix=bt709:out_range=tv,format=yuv420p"
        );
        let want = stats(file.to_str().unwrap(), &reference);
        let (rec, url) = processed(&s, file);
        let name = file.file_name().unwrap().to_string_lossy();
        close(&name, stats(&url, ""), want);
        assert_eq!(tags(&url), "tv/bt709/bt709/bt709", "{name}");
        let range = if from == "in_range=pc" { "pc" } else { "tv" };
        assert_eq!(rec["source"]["video"]["colour"]["range"], range, "{rec}");
    }
}

#[test]
fn a_bt709_control_is_left_as_it_was() {
    let s = Server::start(&[
        "--ladder",
        "source",
        "--copy",
        "never",
        "--x264-preset",
        "veryfast",
    ]);
    let control = sdr(
        "colour-bt709.mp4",
        "640x360",
        "format=rgb24,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "18",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-colorspace",
            "bt709",
            "-color_range",
            "tv",
        ],
    );
    let (_, url) = processed(&s, &control);
    assert_eq!(tags(&url), "tv/bt709/bt709/bt709");
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "info",
            "-nostats",
            "-i",
            &url,
            "-i",
            control.to_str().unwrap(),
            "-lavfi",
            "ssim",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let all: f64 = text
        .split("All:")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no SSIM in {text}"));
    assert!(all >= 0.97, "SSIM {all}");
}

/// An exact clip of an HDR video is SDR with the right colours too (cut
/// from the tone-mapped download, not the 10-bit upload).
#[test]
fn an_exact_clip_of_an_hdr_video_keeps_its_colours() {
    // Its 10-bit upload is kept, and yet the clip is cut from the download.
    let s = Server::start(&["--ladder", "source", "--keep-source", "always"]);
    let pq = hdr("colour-pq.mp4", "smpte2084", MD_1000);
    let want = stats(pq.to_str().unwrap(), &tone_mapped("smpte2084"));
    let (rec, _) = processed(&s, &pq);
    let id = rec["id"].as_str().unwrap();
    let body = br#"{"start": 0, "end": 0.5}"#;
    let r = request(s.addr, "POST", &format!("/videos/{id}/clips"), &[], body);
    assert_eq!(r.status, 201, "{}", r.text());
    let clip = r.json()["id"].as_str().unwrap().to_owned();
    let rec = s.wait_done(&clip);
    assert_eq!(rec["status"], "ready", "{rec}");
    let top = rec["renditions"][0]["playlist"].as_str().unwrap();
    let url = format!("http://{}/play/{clip}/{top}", s.addr);
    close("the clip", stats(&url, ""), want);
    assert_eq!(tags(&url), "tv/bt709/bt709/bt709");
}

/// `codec_name/profile/pix_fmt/transfer/primaries` of a stream.
fn stream_kind(input: &str) -> String {
    let v = ffprobe(
        Path::new(input),
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,profile,pix_fmt,color_transfer,color_primaries",
        ],
    );
    let s = &v["streams"][0];
    format!(
        "{}/{}/{}/{}/{}",
        s["codec_name"], s["profile"], s["pix_fmt"], s["color_transfer"], s["color_primaries"]
    )
    .replace('"', "")
}

/// The first frame's mastering display peak and floor and its content
/// light level (MaxCLL/MaxFALL), as ffprobe reads them.
fn hdr10(input: &str) -> String {
    let v = ffprobe(
        Path::new(input),
        &[
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame_side_data",
        ],
    );
    let list = v["frames"][0]["side_data_list"].as_array().cloned();
    let find = |kind: &str| {
        list.iter()
            .flatten()
            .find(|d| d["side_data_type"] == kind)
            .cloned()
            .unwrap_or_default()
    };
    let (md, cll) = (
        find("Mastering display metadata"),
        find("Content light level metadata"),
    );
    format!(
        "{} {} {}/{}",
        md["max_luminance"], md["min_luminance"], cll["max_content"], cll["max_average"]
    )
    .replace('"', "")
}

#[test]
fn hdr_keep_keeps_hevc_and_av1_groups_hdr_and_the_h264_rungs_sdr() {
    let s = Server::start(&[
        "--ladder",
        "source",
        "--codecs",
        "h264,hevc,av1",
        "--hdr",
        "keep",
    ]);
    let pq = hdr("colour-pq.mp4", "smpte2084", MD_1000);
    let hlg = hdr("colour-hlg.mp4", "arib-std-b67", "");
    for (file, trc, range) in [(&pq, "smpte2084", "PQ"), (&hlg, "arib-std-b67", "HLG")] {
        let (rec, h264) = processed(&s, file);
        let id = rec["id"].as_str().unwrap();
        // The master (read by the strict parser) says each variant's range.
        let master = s.get(&format!("/play/{id}/video.m3u8")).text();
        assert!(master.contains(&format!("VIDEO-RANGE={range}")), "{master}");
        assert!(master.contains("VIDEO-RANGE=SDR"), "{master}");
        let renditions = rec["renditions"].as_array().unwrap();
        let hevc = renditions.iter().find(|r| r["codec"] == "hevc").unwrap();
        assert_eq!(hevc["video_range"], range, "{rec}");
        let h = renditions.iter().find(|r| r["codec"] == "h264").unwrap();
        assert_eq!(h["video_range"], "SDR", "{rec}");
        // HEVC Main 10 in the source's transfer; H.264 tone-mapped SDR.
        let url = format!(
            "http://{}/play/{id}/{}",
            s.addr,
            hevc["playlist"].as_str().unwrap()
        );
        assert_eq!(
            stream_kind(&url),
            format!("hevc/Main 10/yuv420p10le/{trc}/bt2020")
        );
        // The source's HDR10 metadata (it came in SEI only) passed on.
        if range == "PQ" {
            assert_eq!(hdr10(&url), "10000000/10000 1/10000 1000/210");
        }
        let av1 = renditions.iter().find(|r| r["codec"] == "av1").unwrap();
        assert_eq!(av1["video_range"], range, "{rec}");
        let url = format!(
            "http://{}/play/{id}/{}",
            s.addr,
            av1["playlist"].as_str().unwrap()
        );
        assert_eq!(
            stream_kind(&url),
            format!("av1/Main/yuv420p10le/{trc}/bt2020")
        );
        if range == "PQ" {
            // AV1 says it in its own units (luminance in 1/256 and 1/16384 nit).
            assert_eq!(hdr10(&url), "256000/256 2/16384 1000/210");
        }
        assert_eq!(tags(&h264), "tv/bt709/bt709/bt709");
        let want = stats(file.to_str().unwrap(), &tone_mapped(trc));
        close(
            "the H.264 rung beside a kept HDR group",
            stats(&h264, ""),
            want,
        );
        assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    }
}

#[test]
fn without_hdr_keep_every_codec_group_of_an_hdr_source_is_tagged_sdr() {
    // `--hdr sdr` (the default): the HEVC and AV1 rungs are the same SDR
    // pictures as the H.264 ones, 8-bit, and their VUI says BT.709.
    let s = Server::start(&["--ladder", "source", "--codecs", "h264,hevc,av1"]);
    let pq = hdr("colour-pq.mp4", "smpte2084", MD_1000);
    let (rec, _) = processed(&s, &pq);
    let id = rec["id"].as_str().unwrap();
    let renditions = rec["renditions"].as_array().unwrap();
    let mut codecs = Vec::new();
    for r in renditions {
        let url = format!(
            "http://{}/play/{id}/{}",
            s.addr,
            r["playlist"].as_str().unwrap()
        );
        assert_eq!(tags(&url), "tv/bt709/bt709/bt709", "{}", r["codec"]);
        assert!(
            stream_kind(&url).contains("/yuv420p/"),
            "{}",
            stream_kind(&url)
        );
        codecs.push(r["codec"].as_str().unwrap().to_owned());
    }
    codecs.sort();
    assert_eq!(codecs, ["av1", "h264", "hevc"]);
}

/// `mp4` (its `moov` last, as the CLI writes it without `faststart`) with a
/// Dolby Vision configuration box (`dvcC`, 24 bytes of ETSI TS 103 572's
/// record) appended to its first track's `hvc1` sample entry, as phones
/// write it: the ancestors' sizes grow by the box, no chunk offset moves.
fn with_dvcc(mp4: &[u8], profile: u8, level: u8, compatibility: u8) -> Vec<u8> {
    let size = |d: &[u8], at: usize| u32::from_be_bytes(d[at..at + 4].try_into().unwrap());
    let find = |d: &[u8], mut at: usize, end: usize, kind: &[u8; 4]| -> usize {
        while at + 8 <= end {
            if &d[at + 4..at + 8] == kind {
                return at;
            }
            at += size(d, at) as usize;
        }
        panic!("no {} box", String::from_utf8_lossy(kind));
    };
    // Each box on the way, and where its children begin (past its header,
    // stsd's version and count, hvc1's visual sample entry fields).
    let path: [(&[u8; 4], usize); 7] = [
        (b"moov", 8),
        (b"trak", 8),
        (b"mdia", 8),
        (b"minf", 8),
        (b"stbl", 8),
        (b"stsd", 16),
        (b"hvc1", 8 + 78),
    ];
    let (mut at, mut end, mut ancestors) = (0, mp4.len(), Vec::new());
    for (kind, skip) in path {
        let b = find(mp4, at, end, kind);
        ancestors.push(b);
        (at, end) = (b + skip, b + size(mp4, b) as usize);
    }
    let mut dvcc = vec![0, 0, 0, 32, b'd', b'v', b'c', b'C', 1, 0];
    let bits = (u16::from(profile) << 9) | (u16::from(level) << 3) | 0b101; // rpu, bl
    dvcc.extend(bits.to_be_bytes());
    dvcc.push(compatibility << 4);
    dvcc.resize(32, 0);
    let mut out = mp4[..end].to_vec();
    out.extend(&dvcc);
    out.extend_from_slice(&mp4[end..]);
    for b in ancestors {
        let grown = size(mp4, b) + 32;
        out[b..b + 4].copy_from_slice(&grown.to_be_bytes());
    }
    out
}

/// A Dolby Vision phone video (profile 8.4: an HLG base layer, as an
/// iPhone records) says so in its record and is tone-mapped from its HLG
/// base layer; a profile 5 one (no fallback) says `none`.
#[test]
fn a_dolby_vision_source_says_its_profile_and_its_fallback() {
    let s = Server::start(&["--ladder", "source"]);
    let hlg = hdr("colour-hlg.mp4", "arib-std-b67", "");
    let want = stats(hlg.to_str().unwrap(), &tone_mapped("arib-std-b67"));
    let hlg = std::fs::read(hlg).unwrap();
    let dv = std::env::temp_dir().join(format!("hlsd-dv84-{}.mp4", std::process::id()));
    std::fs::write(&dv, with_dvcc(&hlg, 8, 4, 4)).unwrap();
    let probed = ffprobe(&dv, &["-show_streams"]);
    assert!(probed.to_string().contains("DOVI"), "{probed}");
    let (rec, url) = processed(&s, &dv);
    let _ = std::fs::remove_file(&dv);
    let colour = &rec["source"]["video"]["colour"];
    let want_dv = serde_json::json!({"profile": 8, "level": 4, "compatibility": "hlg"});
    assert_eq!(colour["dolby_vision"], want_dv, "{rec}");
    assert_eq!(colour["transfer"], "hlg", "{rec}");
    close("Dolby Vision 8.4", stats(&url, ""), want);
    assert_eq!(tags(&url), "tv/bt709/bt709/bt709");

    let pq = std::fs::read(hdr("colour-pq.mp4", "smpte2084", MD_1000)).unwrap();
    let id = upload_ok(&s, &with_dvcc(&pq, 5, 6, 0), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let dv = &rec["source"]["video"]["colour"]["dolby_vision"];
    let want_dv = serde_json::json!({"profile": 5, "level": 6, "compatibility": "none"});
    assert_eq!(dv, &want_dv, "{rec}");
}
