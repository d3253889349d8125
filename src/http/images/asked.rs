//! What an image request asks for, checked, and spelled one way (the
//! cache's and coalescing's key).

use super::{MAX_ANIMATED_SECS, MAX_ANIMATED_WIDTH, MAX_FPS, MAX_SIDE};
use crate::media::still::{Fit, FitMode, Format};
use crate::Error;

/// What an image route asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Thumbnail(Format),
    Animated(Format),
}

/// The image API's file names (`thumbnail.webp`, `animated.gif`, …).
pub(crate) fn kind_of(file: &str) -> Option<Kind> {
    Some(match file {
        "thumbnail.jpg" => Kind::Thumbnail(Format::Jpeg),
        "thumbnail.png" => Kind::Thumbnail(Format::Png),
        "thumbnail.webp" => Kind::Thumbnail(Format::Webp),
        "animated.gif" => Kind::Animated(Format::Gif),
        "animated.webp" => Kind::Animated(Format::AnimatedWebp),
        _ => return None,
    })
}

/// The request, checked.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Asked {
    Still {
        time: Option<f64>,
        fit: Fit,
        format: Format,
    },
    Animated {
        range: (f64, f64),
        width: u32,
        fps: u32,
        format: Format,
    },
}

fn number<T: std::str::FromStr>(q: &str, name: &str) -> Result<Option<T>, Error> {
    match crate::http::urls::query_value(q, name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("{name} must be a number, not {v:?}"))),
    }
}

fn within<T: PartialOrd + std::fmt::Display>(v: T, lo: T, hi: T, name: &str) -> Result<T, Error> {
    match v >= lo && v <= hi {
        true => Ok(v),
        false => Err(Error::BadRequest(format!("{name} must be {lo} to {hi}"))),
    }
}

pub(super) fn parse(kind: Kind, query: Option<&str>) -> Result<Asked, Error> {
    let q = query.unwrap_or("");
    let side = |name| -> Result<Option<u32>, Error> {
        number::<u32>(q, name)?
            .map(|v| within(v, 1, MAX_SIDE, name))
            .transpose()
    };
    match kind {
        Kind::Thumbnail(format) => {
            let time = number::<f64>(q, "time")?
                .map(|t| within(t, 0.0, 1e7, "time"))
                .transpose()?;
            let mode = match crate::http::urls::query_value(q, "fit_mode").as_deref() {
                None | Some("preserve") => FitMode::Preserve,
                Some("crop") => FitMode::Crop,
                Some("pad") => FitMode::Pad,
                Some("stretch") => FitMode::Stretch,
                Some(m) => {
                    return Err(Error::BadRequest(format!(
                        "fit_mode is preserve, crop, pad or stretch, not {m:?}"
                    )))
                }
            };
            let (width, height) = (side("width")?, side("height")?);
            Ok(Asked::Still {
                time,
                fit: Fit {
                    width,
                    height,
                    mode,
                },
                format,
            })
        }
        Kind::Animated(format) => animated(q, format),
    }
}

fn animated(q: &str, format: Format) -> Result<Asked, Error> {
    let start = within(number::<f64>(q, "start")?.unwrap_or(0.0), 0.0, 1e7, "start")?;
    let end = number::<f64>(q, "end")?.unwrap_or(start + 5.0);
    if end <= start || end - start > MAX_ANIMATED_SECS + 1e-9 {
        return Err(Error::BadRequest(
            "end must come after start, at most 10 s later".into(),
        ));
    }
    let width = number::<u32>(q, "width")?.unwrap_or(320);
    Ok(Asked::Animated {
        range: (start, end),
        width: within(width, 1, MAX_ANIMATED_WIDTH, "width")?,
        fps: within(number::<u32>(q, "fps")?.unwrap_or(15), 1, MAX_FPS, "fps")?,
        format,
    })
}

impl Asked {
    /// One spelling per distinct image (the cache's and coalescing's key).
    pub(super) fn key(&self) -> String {
        format!("{self:?}")
    }

    pub(super) fn format(&self) -> Format {
        match self {
            Asked::Still { format, .. } | Asked::Animated { format, .. } => *format,
        }
    }

    /// The time it shows, for a clip's token (`None`: the poster).
    pub(super) fn span(&self) -> Option<(f64, f64)> {
        match self {
            Asked::Still { time, .. } => time.map(|t| (t, t)),
            Asked::Animated { range, .. } => Some(*range),
        }
    }

    /// The smallest box a rendition must fill.
    pub(super) fn needs(&self) -> (u32, u32) {
        match self {
            Asked::Still { fit, .. } => (fit.width.unwrap_or(0), fit.height.unwrap_or(0)),
            Asked::Animated { width, .. } => (*width, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_and_spelled_one_way() {
        let t = Kind::Thumbnail(Format::Jpeg);
        let a = parse(t, Some("time=2&width=320&fit_mode=crop&height=180")).unwrap();
        let b = parse(t, Some("height=180&fit_mode=crop&width=320&time=2.0")).unwrap();
        assert_eq!(a.key(), b.key());
        for bad in [
            "time=-1",
            "width=0",
            "width=5000",
            "fit_mode=zoom",
            "time=x",
        ] {
            assert!(parse(t, Some(bad)).is_err(), "{bad}");
        }
        let g = Kind::Animated(Format::Gif);
        assert!(parse(g, Some("start=1&end=12")).is_err());
        assert!(parse(g, Some("width=641")).is_err());
        assert!(parse(g, Some("fps=31")).is_err());
        assert_eq!(
            parse(g, Some("start=2")).unwrap(),
            Asked::Animated {
                range: (2.0, 7.0),
                width: 320,
                fps: 15,
                format: Format::Gif
            }
        );
        assert_eq!(kind_of("thumbnail.gif"), None);
    }
}
