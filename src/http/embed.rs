//! Embeds (issue 29): `GET /embed/{id}`, a minimal player page for an
//! `<iframe>` (hls.js, the UI's player, and no library UI), with Open
//! Graph / Twitter player tags and oEmbed discovery; and `GET /oembed`.
//!
//! The page is allowed in other sites' frames (`frame-ancestors` from
//! `--embed-origins`, `*` by default) because it can only play: it carries
//! the playback token it was opened with (a signed video's page needs one,
//! like its playlists) and never an API token. The management UI stays
//! unframeable. Query options: `start`, `end` (seconds; a clip's token
//! trims the playlists itself), `autoplay`, `muted`, `loop`, `controls`
//! (`1`/`0`, `true`/`false`), `captions=<lang>`, `poster=none` or
//! `poster=<seconds>` (the frame there, from the image API).

use super::urls::{percent_encode, query_value};
use super::{full, AppState, Body};
use crate::auth::ClipClaim;
use crate::catalog::Record;
use crate::storage::{names, VideoId};
use crate::Error;
use http::{header, HeaderValue, Response};

/// The player's options, from the page's query.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Options {
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub autoplay: bool,
    pub muted: bool,
    pub looping: bool,
    pub controls: bool,
    pub captions: Option<String>,
    /// `None`: no poster; `Some(None)`: the video's; `Some(Some(t))`: the
    /// frame at `t` seconds.
    pub poster: Option<Option<f64>>,
}

/// The query keys an embed URL may carry on (oEmbed passes them through).
pub(crate) const KEYS: [&str; 9] = [
    "start", "end", "autoplay", "muted", "loop", "controls", "captions", "poster", "token",
];

fn flag(query: &str, name: &str, default: bool) -> Result<bool, Error> {
    match query_value(query, name).as_deref() {
        None => Ok(default),
        Some("" | "1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        Some(v) => Err(Error::BadRequest(format!(
            "{name} is 1 or 0 (true or false), not {v:?}"
        ))),
    }
}

impl Options {
    /// The options `query` asks for; `400` for a malformed one.
    pub(crate) fn parse(query: Option<&str>) -> Result<Options, Error> {
        let q = query.unwrap_or("");
        let clip = crate::playlist::Clip::from_query(query).map_err(Error::BadRequest)?;
        let captions = match query_value(q, "captions") {
            None => None,
            Some(l) => Some(names::language_tag(&l).ok_or_else(|| {
                Error::BadRequest(format!("captions is a language tag (en, pt-br), not {l:?}"))
            })?),
        };
        let poster = match query_value(q, "poster").as_deref() {
            None | Some("" | "true") => Some(None),
            Some("none" | "false") => None,
            Some(v) => match v.parse::<f64>() {
                Ok(t) if (0.0..=1e7).contains(&t) => Some(Some(t)),
                _ => {
                    return Err(Error::BadRequest(format!(
                        "poster is none or a number of seconds, not {v:?}"
                    )))
                }
            },
        };
        Ok(Options {
            start: clip.as_ref().map(|c| c.start).filter(|s| *s > 0.0),
            end: clip.as_ref().map(|c| c.end).filter(|e| *e < f64::MAX),
            autoplay: flag(q, "autoplay", false)?,
            muted: flag(q, "muted", false)?,
            looping: flag(q, "loop", false)?,
            controls: flag(q, "controls", true)?,
            captions,
            poster,
        })
    }
}

/// Text for HTML (element content or a quoted attribute).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The display size of a video: its top rendition's, else its source's
/// (turned as it is shown), else 640×360.
pub(crate) fn size_of(rec: &Record) -> (u32, u32) {
    let top = rec.renditions.iter().max_by_key(|r| r.height);
    let source = rec
        .source
        .as_ref()
        .map(|s| &s.video)
        .map(|v| match v.rotation % 180 == 90 {
            true => (v.height, v.width),
            false => (v.width, v.height),
        });
    top.map(|r| (r.width, r.height))
        .filter(|(w, h)| *w > 0 && *h > 0)
        .or(source.filter(|(w, h)| *w > 0 && *h > 0))
        .unwrap_or((640, 360))
}

/// What a page for one viewer is made of.
struct Page<'a> {
    base: &'a str,
    rec: &'a Record,
    token: Option<&'a str>,
    clip: Option<ClipClaim>,
    options: Options,
}

impl Page<'_> {
    /// `path` with the viewer's token.
    fn signed(&self, path: &str) -> String {
        match self.token {
            Some(t) => format!("{path}?token={t}"),
            None => path.to_owned(),
        }
    }

    /// This page's own absolute URL (as shared: token and options).
    fn url(&self, query: Option<&str>) -> String {
        let kept: Vec<&str> = query
            .unwrap_or("")
            .split('&')
            .filter(|p| KEYS.contains(&p.split('=').next().unwrap_or("")))
            .collect();
        let url = format!("{}/embed/{}", self.base, self.rec.id);
        match kept.is_empty() {
            true => url,
            false => format!("{url}?{}", kept.join("&")),
        }
    }

    /// The `<video>` element and its data for `embed.js`.
    fn video(&self) -> String {
        let id = self.rec.id;
        let mut attrs = vec![
            format!(
                "data-src=\"{}\"",
                esc(&self.signed(&format!("/play/{id}/video.m3u8")))
            ),
            "playsinline".to_owned(),
            "preload=\"metadata\"".to_owned(),
        ];
        let o = &self.options;
        let (start, end) = match self.clip {
            // A clip's token: the playlists start and end with it.
            Some(c) => {
                attrs.push("data-clip=\"1\"".into());
                (
                    Some(c.start_ms as f64 / 1000.0),
                    c.end_ms.map(|e| e as f64 / 1000.0),
                )
            }
            None => (o.start, o.end),
        };
        if let Some(s) = start {
            attrs.push(format!("data-start=\"{s}\""));
        }
        if let Some(e) = end {
            attrs.push(format!("data-end=\"{e}\""));
        }
        if let Some(l) = &o.captions {
            attrs.push(format!("data-captions=\"{}\"", esc(l)));
        }
        let poster = match o.poster {
            None => None,
            // The video's poster is made when it is finished: none before.
            Some(None) if self.rec.status != crate::catalog::Status::Ready => None,
            Some(None) => Some(self.signed(&format!("/play/{id}/{}", names::POSTER))),
            Some(Some(t)) => {
                let url = self.signed(&format!("/play/{id}/thumbnail.jpg"));
                Some(crate::playlist::with_query(&url, "time", &t.to_string()))
            }
        };
        if let Some(p) = poster {
            attrs.push(format!("poster=\"{}\"", esc(&p)));
        }
        for (on, name) in [
            (o.controls, "controls"),
            (o.autoplay, "autoplay"),
            (o.muted || o.autoplay, "muted"),
            (o.looping, "loop"),
        ] {
            if on {
                attrs.push(name.to_owned());
            }
        }
        format!("<video id=\"player\" {}></video>", attrs.join(" "))
    }

    /// Open Graph, Twitter and oEmbed discovery tags.
    fn meta(&self, own: &str) -> String {
        let (w, h) = size_of(self.rec);
        let title = esc(&self.rec.title);
        let own_e = esc(own);
        let poster = esc(&format!(
            "{}{}",
            self.base,
            self.signed(&format!("/play/{}/{}", self.rec.id, names::POSTER))
        ));
        let oembed = esc(&format!("{}/oembed?url={}", self.base, percent_encode(own)));
        format!(
            "<meta property=\"og:type\" content=\"video.other\">\n\
             <meta property=\"og:title\" content=\"{title}\">\n\
             <meta property=\"og:url\" content=\"{own_e}\">\n\
             <meta property=\"og:image\" content=\"{poster}\">\n\
             <meta property=\"og:video\" content=\"{own_e}\">\n\
             <meta property=\"og:video:type\" content=\"text/html\">\n\
             <meta property=\"og:video:width\" content=\"{w}\">\n\
             <meta property=\"og:video:height\" content=\"{h}\">\n\
             <meta name=\"twitter:card\" content=\"player\">\n\
             <meta name=\"twitter:title\" content=\"{title}\">\n\
             <meta name=\"twitter:image\" content=\"{poster}\">\n\
             <meta name=\"twitter:player\" content=\"{own_e}\">\n\
             <meta name=\"twitter:player:width\" content=\"{w}\">\n\
             <meta name=\"twitter:player:height\" content=\"{h}\">\n\
             <link rel=\"alternate\" type=\"application/json+oembed\" href=\"{oembed}\" title=\"{title}\">\n"
        )
    }
}

/// `GET /embed/{id}` (the token, when signing is on, was checked by
/// `access`, like a playlist's).
pub(crate) fn page(
    state: &AppState,
    base: &str,
    id: VideoId,
    query: Option<&str>,
    (token, clip): (Option<&str>, Option<ClipClaim>),
) -> Result<Response<Body>, Error> {
    let rec = state.catalog.get(id).ok_or(Error::NotFound)?;
    if rec.status == crate::catalog::Status::Deleting {
        return Err(Error::NotFound);
    }
    let options = Options::parse(query)?;
    let page = Page {
        base,
        rec: &rec,
        token,
        clip,
        options,
    };
    let own = page.url(query);
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n{}<link rel=\"icon\" href=\"data:,\">\n\
         <link rel=\"stylesheet\" href=\"/assets/embed.css\">\n\
         <script src=\"/assets/hls.min.js\" defer></script>\n\
         <script src=\"/assets/embed.js\" defer></script>\n</head>\n<body>\n{}\n\
         <select id=\"captions\" aria-label=\"Captions\" hidden>\
         <option value=\"-1\">Captions off</option></select>\n</body>\n</html>\n",
        esc(&rec.title),
        page.meta(&own),
        page.video(),
    );
    Ok(respond(state, html))
}

/// The page with its frame policy: framed by `--embed-origins`, private
/// when it carries a token.
fn respond(state: &AppState, html: String) -> Response<Body> {
    let origins = state.config.embed_origins.iter().map(|o| o.trim());
    let ancestors = origins.collect::<Vec<_>>().join(" ");
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src * data: blob:; \
         media-src * blob:; worker-src 'self' blob:; connect-src *; object-src 'none'; \
         base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
    );
    let mut res = Response::new(full(html));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse_what_they_cannot_mean() {
        let o = Options::parse(Some("start=4&autoplay=1&controls=0&captions=EN&loop")).unwrap();
        assert_eq!(o.start, Some(4.0));
        assert_eq!(o.end, None);
        assert!(o.autoplay && !o.controls && o.looping && !o.muted);
        assert_eq!(o.poster, Some(None));
        assert_eq!(o.captions.as_deref(), Some("en"));
        let d = Options::parse(None).unwrap();
        assert!(d.controls && d.poster.is_some() && !d.autoplay && d.start.is_none());
        assert_eq!(Options::parse(Some("poster=none")).unwrap().poster, None);
        assert_eq!(
            Options::parse(Some("poster=2.5")).unwrap().poster,
            Some(Some(2.5))
        );
        for bad in [
            "autoplay=yes",
            "start=-1",
            "start=5&end=2",
            "captions=<script>",
            "poster=http://x",
        ] {
            assert!(Options::parse(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
