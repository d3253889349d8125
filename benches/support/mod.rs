//! Shared by the benches: inputs made once with the `ffmpeg` CLI (allowed in
//! benchmarks, never in the server) under target/bench-inputs/.
#![allow(dead_code)]

pub mod quality;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A 720p30 H.264/AAC clip of `secs` seconds (the benchmark input).
pub fn clip_720p(secs: u32) -> PathBuf {
    make_clip(&format!("720p30-{secs}s.mp4"), secs, &[])
}

/// A harder 720p30 clip: a Mandelbrot zoom under moving grain, so every
/// rung's bit rate cap binds (rate control then decides the quality).
pub fn clip_hard_720p(secs: u32) -> PathBuf {
    make_clip_from(
        "mandelbrot=size=1280x720:rate=30,noise=alls=8:allf=t+u",
        &format!("720p30-hard-{secs}s.mp4"),
        secs,
        &["-crf", "14"],
    )
}

/// The same with a keyframe every 2 s (what the copy fast path can take).
pub fn clip_720p_gop2(secs: u32) -> PathBuf {
    make_clip(
        &format!("720p30-{secs}s-gop2.mp4"),
        secs,
        &["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"],
    )
}

fn make_clip(name: &str, secs: u32, extra: &[&str]) -> PathBuf {
    make_clip_from("testsrc2=size=1280x720:rate=30", name, secs, extra)
}

fn make_clip_from(video: &str, name: &str, secs: u32, extra: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-inputs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    if !path.exists() {
        let tmp = dir.join(format!("tmp-{}.mp4", std::process::id()));
        let ok = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                video,
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
            ])
            .arg(secs.to_string())
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "fast",
                "-crf",
                "20",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-movflags",
                "+faststart",
            ])
            .args(extra)
            .arg(&tmp)
            .status()
            .expect("the ffmpeg CLI makes the bench input (make bench installs it)");
        assert!(ok.success());
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// The settings hlsd runs with by default, for one rendition, encoded
/// (the single-rendition series kept since the first benchmark).
pub fn default_settings() -> hlsd::media::Settings {
    let mut s = hlsd::media::Settings::from_config(&hlsd::Config::with_storage("unused".into()));
    s.ladder = hlsd::config::Ladder::Source;
    s.copy = hlsd::config::CopyMode::Never;
    // The CLI makes HLS only: no MP4 download to remux after the job.
    s.downloads = false;
    s
}

/// The default settings with the 720/480/360 ladder, every rung encoded.
pub fn ladder_settings() -> hlsd::media::Settings {
    let mut s = default_settings();
    s.ladder = hlsd::config::Ladder::Heights(vec![720, 480, 360]);
    s
}
