//! Segmenting throughput: frames per second through demux → decode →
//! filter → libx264 → hls mux, in-process, for a 720p30 clip: one rendition,
//! and the 720/480/360 ladder from one decode (frames of source per second).
//! Run: `cargo bench --bench segmenting`.

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn segmenting(c: &mut Criterion) {
    hlsd::media::init().unwrap();
    let input = support::clip_720p(4);
    let settings = support::default_settings();
    let mut group = c.benchmark_group("segmenting");
    group.sample_size(10);
    group.throughput(Throughput::Elements(4 * 30));
    group.bench_function("720p30_veryfast_frames", |b| {
        b.iter(|| {
            let out = tempfile::tempdir().unwrap();
            let info = hlsd::media::transcode_path(&input, out.path(), &settings).unwrap();
            assert!(info.segments >= 1);
        })
    });
    let ladder = support::ladder_settings();
    group.bench_function("720p30_veryfast_3rungs_frames", |b| {
        b.iter(|| {
            let out = tempfile::tempdir().unwrap();
            let info = hlsd::media::transcode_path(&input, out.path(), &ladder).unwrap();
            assert!(info.segments >= 1);
        })
    });
    group.finish();
}

criterion_group!(benches, segmenting);
criterion_main!(benches);
