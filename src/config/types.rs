//! The types of some settings: address ranges (`--trusted-proxy`), the
//! ladder, the copy mode, the segment format, what happens to the source.

pub use crate::netpolicy::{canonical_ip, Cidr};

/// The rendition ladder (`--ladder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ladder {
    /// The standard rungs (2160/1440/1080/720/480/360) up to the source.
    Auto,
    /// One rendition at the source's size.
    Source,
    /// These heights (short side), largest first, never above the source.
    Heights(Vec<u32>),
}

/// Most rungs a ladder may have.
pub const MAX_RUNGS: usize = 8;

impl Ladder {
    /// Parses `auto`, `source`, or a comma list of heights (16..=4320).
    pub fn parse(s: &str) -> Result<Ladder, String> {
        match s.trim() {
            "auto" => return Ok(Ladder::Auto),
            "source" => return Ok(Ladder::Source),
            _ => {}
        }
        let mut heights = Vec::new();
        for part in s.split(',') {
            let part = part.trim().trim_end_matches('p');
            match part.parse::<u32>() {
                Ok(h) if (16..=4320).contains(&h) => heights.push(h),
                _ => {
                    return Err(format!(
                        "`{s}`: give `auto`, `source`, or heights between 16 and 4320 like `1080,720,480`"
                    ))
                }
            }
        }
        heights.sort_unstable_by(|a, b| b.cmp(a));
        heights.dedup();
        if heights.len() > MAX_RUNGS {
            return Err(format!("`{s}`: at most {MAX_RUNGS} rungs"));
        }
        Ok(Ladder::Heights(heights))
    }
}

/// `--copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CopyMode {
    Auto,
    Never,
}

/// `--hdr`: an HDR source's codec groups in SDR like its H.264 rungs, or
/// kept in 10-bit HDR (PQ or HLG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HdrMode {
    Sdr,
    Keep,
}

/// `--segment-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SegmentFormat {
    Ts,
    Fmp4,
}

/// The header a trusted proxy names the client in (`--client-ip-header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientIpHeader {
    XForwardedFor,
    Forwarded,
    XRealIp,
}

/// The source retention policy (`--keep-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeepSource {
    Always,
    UntilReady,
    Never,
}

/// Where videos live (`--store`): the `--storage` folder, or an
/// S3-compatible bucket (under a prefix) with `--storage` as scratch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    File,
    S3 { bucket: String, prefix: String },
}

impl StoreKind {
    /// For clap: `file` or `s3://BUCKET[/PREFIX]`.
    pub fn parse_arg(s: &str) -> Result<StoreKind, String> {
        if s == "file" {
            return Ok(StoreKind::File);
        }
        let bad = || format!("`{s}`: give `file` or `s3://BUCKET[/PREFIX]`");
        let rest = s.strip_prefix("s3://").ok_or_else(bad)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let prefix_ok = prefix.is_empty()
            || prefix.split('/').all(|p| {
                !p.is_empty()
                    && p != "."
                    && p != ".."
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !bucket_ok || !prefix_ok {
            return Err(bad());
        }
        Ok(StoreKind::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_are_a_folder_or_a_bucket() {
        assert_eq!(StoreKind::parse_arg("file"), Ok(StoreKind::File));
        let s3 = |b: &str, p: &str| StoreKind::S3 {
            bucket: b.into(),
            prefix: p.into(),
        };
        assert_eq!(StoreKind::parse_arg("s3://videos"), Ok(s3("videos", "")));
        assert_eq!(
            StoreKind::parse_arg("s3://my.videos/a/b-c/"),
            Ok(s3("my.videos", "a/b-c"))
        );
        for bad in [
            "",
            "s3://",
            "s3://ab",
            "s3://Videos",
            "s3://v_x",
            "http://v",
            "s3://vid/../x",
            "s3://vid/a//b",
            "s3://vid/a b",
        ] {
            assert!(StoreKind::parse_arg(bad).is_err(), "{bad}");
        }
    }
}

/// A video codec a rendition can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VideoCodec {
    H264,
    Av1,
    Hevc,
}

impl VideoCodec {
    /// Its name in flags, fields and records: `h264`, `av1`, `hevc`.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Av1 => "av1",
            VideoCodec::Hevc => "hevc",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "h264" | "avc" => VideoCodec::H264,
            "av1" => VideoCodec::Av1,
            "hevc" | "h265" => VideoCodec::Hevc,
            _ => return None,
        })
    }
}

/// The codec groups of a video (`--codecs`, an upload's `codecs`): H.264
/// always first (every player decodes it; the download is made from it),
/// then the others asked, each once, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codecs(pub Vec<VideoCodec>);

impl Default for Codecs {
    fn default() -> Self {
        Codecs(vec![VideoCodec::H264])
    }
}

impl Codecs {
    /// `h264,av1`: the names, comma-separated; H.264 is added when left
    /// out.
    pub fn parse(s: &str) -> Result<Codecs, String> {
        let mut out = vec![VideoCodec::H264];
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let c = VideoCodec::parse(part)
                .ok_or_else(|| format!("unknown codec {:?} (h264, av1, hevc)", part.trim()))?;
            out.push(c);
        }
        out.sort();
        out.dedup();
        Ok(Codecs(out))
    }

    /// The codecs besides H.264.
    pub fn extra(&self) -> impl Iterator<Item = VideoCodec> + '_ {
        self.0.iter().copied().filter(|c| *c != VideoCodec::H264)
    }

    pub fn has(&self, c: VideoCodec) -> bool {
        self.0.contains(&c)
    }

    /// The names, as the record keeps them.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|c| c.name().to_owned()).collect()
    }

    /// True when every codec of `self` is in `allowed`.
    pub fn within(&self, allowed: &Codecs) -> bool {
        self.0.iter().all(|c| allowed.has(*c))
    }
}

impl std::fmt::Display for Codecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names().join(","))
    }
}
