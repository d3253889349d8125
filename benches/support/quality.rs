//! Picture quality of a rendition: SSIM against the source scaled to the
//! rendition's size (bicubic, as both hlsd and the CLI scale), measured by
//! the `ffmpeg` CLI's `ssim` filter (this machine's FFmpeg has no libvmaf).

use std::path::Path;
use std::process::Command;

/// SSIM (All, 0..1) of `rendition` (a playlist or file) against `source`
/// scaled to `w`×`h`; both start at 0 so frames pair up by time.
pub fn ssim(rendition: &Path, source: &Path, w: u32, h: u32) -> f64 {
    let graph = format!(
        "[0:v]setpts=PTS-STARTPTS,format=yuv420p[d];\
         [1:v]setpts=PTS-STARTPTS,scale={w}:{h}:flags=bicubic,format=yuv420p[r];\
         [d][r]ssim"
    );
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(rendition)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .rev()
        .find_map(|l| {
            let all = l.split("All:").nth(1)?;
            all.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no SSIM for {}: {text}", rendition.display()))
}

/// The first file named `name` under `root`, depth first.
pub fn find(root: &Path, dir: &str, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(root).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == dir) && p.join(name).is_file() {
                return Some(p.join(name));
            }
            if let Some(f) = find(&p, dir, name) {
                return Some(f);
            }
        }
    }
    None
}

/// Bytes of the video packets of `playlist` (the ffprobe CLI).
pub fn video_bytes(playlist: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=size", "-of", "csv=p=0"])
        .arg(playlist)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<u64>().ok())
        .sum()
}
