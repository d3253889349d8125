//! hlsd's in-process transcode vs the `ffmpeg` CLI making the same HLS
//! output (same input, libx264 preset/CRF/VBV, keyframe grid, AAC, muxer
//! options), timed over a few runs each; prints the ratio of wall times.
//! Three comparisons: one rendition; the 720/480/360 ladder against the
//! best single CLI invocation (one process, `split` filter, one libx264 per
//! rung, `var_stream_map`; the CLI must encode the audio once per variant,
//! hlsd once in all); and the copy fast path against `ffmpeg -c copy -f hls`.
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
    ladder(secs, runs);
    copy(secs.max(60), runs);
    let input = support::clip_720p(secs);
    let s = support::default_settings();
    let keyint = (30.0 * s.keyframe_seconds).round() as u32 * 2;
    let x264_params = format!(
        "keyint={keyint}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={}:vbv-bufsize={}{}",
        s.max_video_kbps,
        s.max_video_kbps * 2,
        memory_params(&s, false)
    );
    let force = format!("expr:gte(t,n_forced*{})", s.keyframe_seconds);

    let out = tempfile::tempdir().unwrap();
    let mut args = strings(&["-v", "error", "-y", "-i"]);
    args.push(input.to_str().unwrap().into());
    args.extend(strings(&[
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
    ]));
    args.push(out.path().join("seg_%05d.ts").to_str().unwrap().into());
    args.push(out.path().join("video.m3u8").to_str().unwrap().into());
    let (mut ours, mut cli) = (Vec::new(), Vec::new());
    let (mut ours_cpu, mut cli_cpu) = (0.0, 0.0);
    for _ in 0..runs {
        ours.push(time_ours(&input, &s, &mut ours_cpu));
        cli.push(time_cli(&args, &mut cli_cpu));
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

/// Times `ffmpeg <args>` (a child process): wall, and adds its CPU to `cpu`.
fn time_cli(args: &[String], cpu: &mut f64) -> Duration {
    let c0 = cpu_seconds(libc::RUSAGE_CHILDREN);
    let t = Instant::now();
    let status = Command::new("ffmpeg").args(args).status().unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
    let d = t.elapsed();
    *cpu += cpu_seconds(libc::RUSAGE_CHILDREN) - c0;
    d
}

/// Times hlsd's in-process transcode of `input` with `s`.
fn time_ours(input: &std::path::Path, s: &hlsd::media::Settings, cpu: &mut f64) -> Duration {
    let out = tempfile::tempdir().unwrap();
    let c0 = cpu_seconds(libc::RUSAGE_SELF);
    let t = Instant::now();
    hlsd::media::transcode_path(input, out.path(), s).unwrap();
    let d = t.elapsed();
    *cpu += cpu_seconds(libc::RUSAGE_SELF) - c0;
    d
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The caps hlsd's ladder uses for the 720/480/360 rungs (hls/ladder.rs
/// table): width, height, maxrate kbit/s.
const CAPS: [(u32, u32, u32); 3] = [(1280, 720, 3000), (854, 480, 1500), (640, 360, 800)];

/// The x264 options hlsd sets to bound its memory, for the CLI's
/// `-x264-params`: `rc-lookahead` (`--x264-lookahead`, below the preset's
/// own), `b-pyramid` (`--x264-b-pyramid`) and `force-cfr` (a constant rate
/// source: the same pictures); "" with `own`, the preset's own (hlsd
/// before issue 17).
fn memory_params(s: &hlsd::media::Settings, own: bool) -> String {
    if own {
        String::new()
    } else {
        format!(
            ":rc-lookahead={}:b-pyramid={}:force-cfr=1",
            s.x264_lookahead, s.x264_b_pyramid
        )
    }
}

/// The CLI's ladder command (audio encoded per variant) from `input` into
/// `out`, with hlsd's per-rung settings; `own_lookahead`: the preset's own
/// lookahead and b-pyramid.
fn ladder_args(
    input: &std::path::Path,
    s: &hlsd::media::Settings,
    out: &std::path::Path,
    own_lookahead: bool,
) -> Vec<String> {
    let grid = (30.0 * s.keyframe_seconds).round() as u32 * 2;
    let mut args = strings(&["-v", "error", "-y", "-i"]);
    args.push(input.to_str().unwrap().into());
    args.extend(strings(&[
        "-filter_complex",
        "[0:v]split=3[a][b][c];[a]scale=1280:720:flags=bicubic[v0];\
         [b]scale=854:480:flags=bicubic[v1];[c]scale=640:360:flags=bicubic[v2]",
        "-map",
        "[v0]",
        "-map",
        "[v1]",
        "-map",
        "[v2]",
        "-map",
        "0:a",
        "-map",
        "0:a",
        "-map",
        "0:a",
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
    ]));
    for (i, (_, _, kbps)) in CAPS.iter().enumerate() {
        args.push(format!("-x264-params:v:{i}"));
        args.push(format!(
            "keyint={grid}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={kbps}:vbv-bufsize={}{}",
            kbps * 2,
            memory_params(s, own_lookahead)
        ));
    }
    args.extend(strings(&[
        "-force_key_frames",
        &format!("expr:gte(t,n_forced*{})", s.keyframe_seconds),
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
        "-var_stream_map",
        "v:0,a:0 v:1,a:1 v:2,a:2",
        "-master_pl_name",
        "master.m3u8",
        "-hls_segment_filename",
    ]));
    args.push(out.join("%v/seg_%05d.ts").to_str().unwrap().into());
    args.push(out.join("%v/video.m3u8").to_str().unwrap().into());
    args
}

/// The 720/480/360 ladder: hlsd (one decode, three encoders, audio once)
/// vs one ffmpeg process with `split` and the same per-rung x264 settings.
fn ladder(secs: u32, runs: usize) {
    let input = support::clip_720p(secs);
    let s = support::ladder_settings();
    let out = tempfile::tempdir().unwrap();
    let args = ladder_args(&input, &s, out.path(), false);
    // The best one-process CLI: the audio encoded once, in an audio group
    // every variant names.
    let grouped = audio_group_form(&args, out.path());
    let limit = encoder_only(&args);
    let (mut ours, mut cli, mut best, mut enc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ours_cpu, mut cli_cpu, mut best_cpu, mut enc_cpu) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..runs {
        ours.push(time_ours(&input, &s, &mut ours_cpu));
        best.push(time_cli(&grouped, &mut best_cpu));
        cli.push(time_cli(&args, &mut cli_cpu));
        enc.push(time_cli(&limit, &mut enc_cpu));
    }
    let (o, b, e) = (
        median(ours.clone()),
        median(best.clone()),
        median(enc.clone()),
    );
    println!("== ladder 720/480/360 from {secs} s of 720p30, {runs} runs each, alternated");
    println!(
        "ffmpeg CLI, audio once (agroup): median {:.2} s  runs {best:?}",
        b.as_secs_f64()
    );
    println!(
        "ratio hlsd/CLI (audio once): {:.3} wall (target <= 0.95), {:.3} CPU ({ours_cpu:.1} s vs {best_cpu:.1} s)",
        o.as_secs_f64() / b.as_secs_f64(),
        ours_cpu / best_cpu
    );
    println!(
        "encoder-only limit (split, scale, 3x libx264 to -f null, no audio, no mux): median {:.2} s  runs {enc:?}",
        e.as_secs_f64()
    );
    println!(
        "ratio hlsd/limit: {:.3} wall, {:.3} CPU ({ours_cpu:.1} s vs {enc_cpu:.1} s)",
        o.as_secs_f64() / e.as_secs_f64(),
        ours_cpu / enc_cpu
    );
    quality(&input, &s);
    quality(&support::clip_hard_720p(secs), &s);
    let c = median(cli.clone());
    println!("-- against the CLI that encodes the audio once per variant:");
    println!(
        "hlsd in-process: median {:.2} s  runs {ours:?}",
        o.as_secs_f64()
    );
    println!(
        "ffmpeg CLI:      median {:.2} s  runs {cli:?}",
        c.as_secs_f64()
    );
    println!(
        "ratio hlsd/CLI: {:.3} wall (target <= 0.95), {:.3} CPU ({ours_cpu:.1} s vs {cli_cpu:.1} s)",
        o.as_secs_f64() / c.as_secs_f64(),
        ours_cpu / cli_cpu
    );
}

/// SSIM of each rung of `input` against the source scaled to its size,
/// and its size: hlsd's, the audio-group CLI's with the same settings, and
/// the CLI's with the preset's own lookahead and b-pyramid (hlsd before
/// issue 17).
fn quality(input: &std::path::Path, s: &hlsd::media::Settings) {
    let ours = tempfile::tempdir().unwrap();
    hlsd::media::transcode_path(input, ours.path(), s).unwrap();
    let (same, own) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, own_lookahead) in [(&same, false), (&own, true)] {
        let args = audio_group_form(
            &ladder_args(input, s, dir.path(), own_lookahead),
            dir.path(),
        );
        time_cli(&args, &mut 0.0);
    }
    println!(
        "-- {}: SSIM x100 against the scaled source (issue 17: within 0.5), MB of video",
        input.display()
    );
    for (i, &(w, h, _)) in CAPS.iter().enumerate() {
        let name = format!("{h}p");
        let mine = support::quality::find(ours.path(), &name, "video.m3u8").unwrap();
        let theirs = |d: &tempfile::TempDir| d.path().join("grouped").join(i.to_string());
        let (a, b, c) = (
            support::quality::ssim(&mine, input, w, h) * 100.0,
            support::quality::ssim(&theirs(&same).join("video.m3u8"), input, w, h) * 100.0,
            support::quality::ssim(&theirs(&own).join("video.m3u8"), input, w, h) * 100.0,
        );
        let mb = |p: &std::path::Path| support::quality::video_bytes(p) as f64 / 1e6;
        println!(
            "{name}: hlsd {a:.3} ({:.2} MB)  CLI same settings {b:.3} ({:.2} MB, {:+.3})  \
             CLI {}'s own lookahead and pyramid {c:.3} ({:.2} MB, {:+.3})",
            mb(&mine),
            mb(&theirs(&same).join("video.m3u8")),
            a - b,
            s.x264_preset,
            mb(&theirs(&own).join("video.m3u8")),
            a - c
        );
    }
}

/// The ladder command with the audio mapped once and grouped
/// (`-var_stream_map "v:0,agroup:aud v:1,agroup:aud v:2,agroup:aud a:0,agroup:aud"`).
fn audio_group_form(args: &[String], out: &std::path::Path) -> Vec<String> {
    let mut a: Vec<String> = Vec::with_capacity(args.len());
    let mut i = 0;
    let mut audio_maps = 0;
    while i < args.len() {
        if args[i] == "-map" && args.get(i + 1).is_some_and(|m| m == "0:a") {
            audio_maps += 1;
            if audio_maps > 1 {
                i += 2;
                continue;
            }
        }
        if args[i] == "-var_stream_map" {
            a.push(args[i].clone());
            a.push("v:0,agroup:aud v:1,agroup:aud v:2,agroup:aud a:0,agroup:aud".into());
            i += 2;
            continue;
        }
        a.push(args[i].clone());
        i += 1;
    }
    // Its own folder, so the runs never share files.
    let dir = out.join("grouped");
    let n = a.len();
    a[n - 2] = dir.join("%v/seg_%05d.ts").to_str().unwrap().into();
    a[n - 1] = dir.join("%v/video.m3u8").to_str().unwrap().into();
    a
}

/// What the ladder costs libx264 alone: the same decode, split, scalers
/// and encoders, written nowhere (`-f null`), no audio.
fn encoder_only(args: &[String]) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-map" if args[i + 1] == "0:a" => i += 2,
            "-c:a" | "-b:a" | "-ar" | "-ac" => i += 2,
            "-f" => break,
            _ => {
                a.push(args[i].clone());
                i += 1;
            }
        }
    }
    a.extend(strings(&["-f", "null", "-"]));
    a
}

/// The copy fast path on a 720p H.264/AAC file with 2 s GOPs: multiple of
/// real time, and vs `ffmpeg -c copy -f hls`.
fn copy(secs: u32, runs: usize) {
    let input = support::clip_720p_gop2(secs);
    let mut s = support::default_settings();
    s.copy = hlsd::config::CopyMode::Auto;
    let out = tempfile::tempdir().unwrap();
    let mut args = strings(&["-v", "error", "-y", "-i"]);
    args.push(input.to_str().unwrap().into());
    args.extend(strings(&[
        "-c",
        "copy",
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
    ]));
    args.push(out.path().join("seg_%05d.ts").to_str().unwrap().into());
    args.push(out.path().join("video.m3u8").to_str().unwrap().into());
    let (mut ours, mut cli) = (Vec::new(), Vec::new());
    let (mut ours_cpu, mut cli_cpu) = (0.0, 0.0);
    for _ in 0..runs.max(5) {
        ours.push(time_ours(&input, &s, &mut ours_cpu));
        cli.push(time_cli(&args, &mut cli_cpu));
    }
    let (o, c) = (median(ours.clone()), median(cli.clone()));
    println!("== copy fast path, {secs} s of 720p30 H.264/AAC (2 s GOP), one rendition");
    println!(
        "hlsd in-process: median {:.3} s = {:.0}x real time (target >= 100x)  runs {ours:?}",
        o.as_secs_f64(),
        f64::from(secs) / o.as_secs_f64()
    );
    println!(
        "ffmpeg -c copy:  median {:.3} s  runs {cli:?}",
        c.as_secs_f64()
    );
    println!(
        "ratio hlsd/CLI: {:.3} wall (target <= 1.5; hlsd also writes a poster), {:.3} CPU",
        o.as_secs_f64() / c.as_secs_f64(),
        ours_cpu / cli_cpu
    );
}
