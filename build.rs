//! Checks that the system FFmpeg is there (through pkg-config) and, when it
//! is not, fails with one message naming the packages to install. We never
//! build FFmpeg ourselves (ffmpeg-sys-next's `build` feature stays off).

const LIBS: &[&str] = &[
    "libavformat",
    "libavcodec",
    "libavfilter",
    "libavutil",
    "libswscale",
    "libswresample",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let missing: Vec<&str> = LIBS
        .iter()
        .copied()
        .filter(|lib| {
            pkg_config::Config::new()
                .cargo_metadata(false)
                .probe(lib)
                .is_err()
        })
        .collect();
    if !missing.is_empty() {
        panic!(
            "\n\nhlsd needs the system FFmpeg development files; pkg-config cannot find: {}.\n\
             On Debian/Ubuntu run `make deps`, or:\n  \
             sudo apt-get install -y libavformat-dev libavcodec-dev libavfilter-dev \
             libavdevice-dev libswscale-dev libswresample-dev libavutil-dev pkg-config clang\n\n",
            missing.join(", ")
        );
    }
}
