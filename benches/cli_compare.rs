//! hlsd's in-process transcode vs the `ffmpeg` CLI making the same HLS
//! output (same input, libx264 preset/CRF/VBV, keyframe grid, AAC, muxer
//! options), timed over a few runs each; prints the ratio of wall times.
//! Run: `cargo bench --bench cli_compare` (or `make bench`).
//! Env: HLSD_BENCH_SECS (clip length, default 20), HLSD_BENCH_RUNS (default 3).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

/// User + system CPU seconds of this process (`who` = RUSAGE_SELF) or of
/// its waited-for children (RUSAGE_CHILDREN).
fn cpu_seconds(who: i32) -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo test --all-targets` runs bench targets with --test (or --bench
    // absent); only measure when asked to.
    if !std::env::args().any(|a| a == "--bench") {
        println!("cli_compare: run with `cargo bench --bench cli_compare`");
        return;
    }
    let secs: u32 = std::env::var("HLSD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let runs: usize = std::env::var("HLSD_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    hlsd::media::init().unwrap();
    let input = support::clip_720p(secs);
    let s = support::default_settings();
    let keyint = (30.0 * s.keyframe_seconds).round() as u32 * 2;
    let x264_params = format!(
        "keyint={keyint}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={}:vbv-bufsize={}",
        s.max_video_kbps,
        s.max_video_kbps * 2
    );
    let force = format!("expr:gte(t,n_forced*{})", s.keyframe_seconds);

    let mut ours = Vec::new();
    let mut cli = Vec::new();
    let (mut ours_cpu, mut cli_cpu) = (0.0, 0.0);
    for _ in 0..runs {
        let out = tempfile::tempdir().unwrap();
        let c0 = cpu_seconds(libc::RUSAGE_SELF);
        let t = Instant::now();
        hlsd::media::transcode_path(&input, out.path(), &s).unwrap();
        ours.push(t.elapsed());
        ours_cpu += cpu_seconds(libc::RUSAGE_SELF) - c0;
        let c0 = cpu_seconds(libc::RUSAGE_CHILDREN);

        let out = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&input)
            .args([
                "-c:v",
                "libx264",
                "-preset",
                &s.x264_preset,
                "-crf",
                &s.crf.to_string(),
                "-profile:v",
                "high",
                "-pix_fmt",
                "yuv420p",
                "-x264-params",
                &x264_params,
                "-force_key_frames",
                &force,
                "-c:a",
                "aac",
                "-b:a",
                &s.audio_bps.to_string(),
                "-ar",
                "48000",
                "-ac",
                "2",
                "-f",
                "hls",
                "-hls_time",
                &s.segment_seconds.to_string(),
                "-hls_list_size",
                "0",
                "-hls_playlist_type",
                "event",
                "-hls_flags",
                "temp_file+independent_segments",
                "-hls_segment_filename",
            ])
            .arg(out.path().join("seg_%05d.ts"))
            .arg(out.path().join("video.m3u8"))
            .status()
            .unwrap();
        assert!(status.success());
        cli.push(t.elapsed());
        cli_cpu += cpu_seconds(libc::RUSAGE_CHILDREN) - c0;
    }
    let (o, c) = (median(ours.clone()), median(cli.clone()));
    println!(
        "input: {} ({secs} s of 1280x720 @ 30 fps, {runs} runs each)",
        input.display()
    );
    println!(
        "hlsd in-process: median {:.2} s  runs {:?}",
        o.as_secs_f64(),
        ours
    );
    println!(
        "ffmpeg CLI:      median {:.2} s  runs {:?}",
        c.as_secs_f64(),
        cli
    );
    println!(
        "ratio hlsd/CLI: {:.3} wall (target <= 1.05), {:.3} CPU ({:.1} s vs {:.1} s in all)",
        o.as_secs_f64() / c.as_secs_f64(),
        ours_cpu / cli_cpu,
        ours_cpu,
        cli_cpu
    );
    println!(
        "hlsd speed: {:.1} fps, {:.2}x real time",
        f64::from(secs * 30) / o.as_secs_f64(),
        f64::from(secs) / o.as_secs_f64()
    );
}
