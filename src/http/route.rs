//! The route table: every path the server answers, parsed once into a
//! [`Route`] that carries the video id and file names it names, and knows
//! everything the server must decide about a request before a handler
//! runs: its metrics label, its CORS and caching class, the credential it
//! needs, the methods it answers, and whether it is a tus route.
//!
//! Adding a route is one variant here, one arm in [`Route::parse`], one
//! in each `match` below (the compiler lists what is missing), and one in
//! `http::dispatch`. Nothing else in the server matches paths.

use super::cors::Class;
use crate::catalog::Reading;
use crate::storage::VideoId;
use http::Method;

/// A path segment that should be a video id: `None` when it is not one
/// (the request is answered 404 by the handler, 405 by the table).
pub(crate) type Id = Option<VideoId>;

/// One of the server's routes, parsed from a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `/`: the web UI.
    Ui,
    /// `/assets/{name}`: the UI's embedded files.
    Asset(&'a str),
    /// `/healthz`.
    Healthz,
    /// `/readyz`.
    Readyz,
    /// `/metrics`.
    Metrics,
    /// `/upload`: the tutorial's multipart upload.
    Upload,
    /// `/files` (or `/files/`): tus creation.
    TusCreate,
    /// `/files/{id}`: one tus upload.
    TusFile(Id),
    /// `/videos/direct-upload`: a tus URL for one new video.
    DirectUpload,
    /// `/videos`: the library, and imports (`POST`).
    Videos,
    /// `/videos/{id}`.
    Video(Id),
    /// `/videos/{id}/events`: Server-Sent Events.
    Events(Id),
    /// `/videos/{id}/playback-token`.
    PlaybackToken(Id),
    /// `/videos/{id}/clips`: exact clips.
    Clips(Id),
    /// `/videos/{id}/captions/{lang}`.
    Captions(Id, &'a str),
    /// `/play/{id}/{file}` and `/play/{id}/{rung}/{file}`.
    Play {
        id: Id,
        rung: Option<&'a str>,
        file: &'a str,
    },
    /// `/keys/{id}/{name}`: AES-128 keys.
    Key(Id, &'a str),
    /// `/lives`: live broadcasts (`POST` makes one).
    Lives,
    /// `/lives/{id}`.
    Live(Id),
    /// `/lives/{id}/reset-key`.
    LiveResetKey(Id),
    /// `/embed/{id}`: the player page for an `<iframe>`.
    Embed(Id),
    /// `/oembed`: oEmbed for a shared URL.
    Oembed,
    /// Anything else: 404.
    Unknown,
}

/// What a request must present to be let through (when the server is
/// configured to ask for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// Nothing: public (the UI, health checks, preflights).
    None,
    /// The API token (`--api-token`).
    Api,
    /// The API token, or the upload's own direct-upload grant.
    ApiOrGrant,
    /// A playback token when `--signing-key` is set (the API token also
    /// opens it).
    Playback,
}

impl<'a> Route<'a> {
    /// The route of `path` (without its query).
    pub(crate) fn parse(path: &'a str) -> Route<'a> {
        let mut it = path.trim_start_matches('/').split('/');
        let mut seg = [""; 5];
        let mut n = 0;
        for s in it.by_ref() {
            if n == seg.len() {
                return Route::Unknown;
            }
            seg[n] = s;
            n += 1;
        }
        let id = VideoId::parse;
        match &seg[..n] {
            [""] => Route::Ui,
            ["assets", name] => Route::Asset(name),
            ["healthz"] => Route::Healthz,
            ["readyz"] => Route::Readyz,
            ["metrics"] => Route::Metrics,
            ["upload"] => Route::Upload,
            // tus clients name the creation endpoint `/files/`.
            ["files"] | ["files", ""] => Route::TusCreate,
            ["files", i] => Route::TusFile(id(i)),
            ["videos"] => Route::Videos,
            ["videos", "direct-upload"] => Route::DirectUpload,
            ["videos", i] => Route::Video(id(i)),
            ["videos", i, "events"] => Route::Events(id(i)),
            ["videos", i, "playback-token"] => Route::PlaybackToken(id(i)),
            ["videos", i, "clips"] => Route::Clips(id(i)),
            ["videos", i, "captions", lang] => Route::Captions(id(i), lang),
            ["play", i, file] => Route::Play {
                id: id(i),
                rung: None,
                file,
            },
            ["play", i, rung, file] => Route::Play {
                id: id(i),
                rung: Some(rung),
                file,
            },
            ["keys", i, name] => Route::Key(id(i), name),
            ["embed", i] => Route::Embed(id(i)),
            ["lives"] => Route::Lives,
            ["lives", i] => Route::Live(id(i)),
            ["lives", i, "reset-key"] => Route::LiveResetKey(id(i)),
            ["oembed"] => Route::Oembed,
            _ => Route::Unknown,
        }
    }

    /// The video the route names, if it names one (and the id is valid).
    /// What a request on this route reads of the catalog, brought up to
    /// date first when other nodes share the store (`None`: nothing).
    pub(crate) fn reading(&self, method: &Method) -> Option<Reading> {
        match *self {
            Route::Videos | Route::Lives if *method == Method::GET => Some(Reading::All),
            Route::TusFile(Some(id)) => Some(Reading::HeldWork(id)),
            Route::Captions(Some(id), _) if *method != Method::GET => Some(Reading::HeldWork(id)),
            r => r.video().map(Reading::Video),
        }
    }

    pub(crate) fn video(&self) -> Option<VideoId> {
        match *self {
            Route::TusFile(id)
            | Route::Video(id)
            | Route::Events(id)
            | Route::PlaybackToken(id)
            | Route::Clips(id)
            | Route::Captions(id, _)
            | Route::Play { id, .. }
            | Route::Key(id, _)
            | Route::Embed(id)
            | Route::Live(id)
            | Route::LiveResetKey(id) => id,
            _ => None,
        }
    }

    /// The methods the route answers (the `Allow` header of a 405, RFC
    /// 9110 §15.5.6); `None` for an unknown path.
    pub(crate) fn allowed(&self) -> Option<&'static str> {
        Some(match self {
            Route::Upload
            | Route::TusCreate
            | Route::DirectUpload
            | Route::PlaybackToken(_)
            | Route::Clips(_)
            | Route::LiveResetKey(_) => "POST, OPTIONS",
            Route::Captions(..) => "PUT, DELETE, OPTIONS",
            Route::TusFile(_) => "HEAD, PATCH, DELETE, OPTIONS",
            Route::Video(_) => "GET, HEAD, PATCH, DELETE, OPTIONS",
            Route::Videos | Route::Lives => "GET, HEAD, POST, OPTIONS",
            Route::Live(_) => "GET, HEAD, DELETE, OPTIONS",
            Route::Ui
            | Route::Asset(_)
            | Route::Healthz
            | Route::Readyz
            | Route::Metrics
            | Route::Events(_)
            | Route::Play { .. }
            | Route::Key(..)
            | Route::Embed(_)
            | Route::Oembed => "GET, HEAD, OPTIONS",
            Route::Unknown => return None,
        })
    }

    /// A low-cardinality name for metrics.
    pub(crate) fn label(&self, method: &Method) -> &'static str {
        match self {
            Route::Upload => "upload",
            Route::TusCreate => "tus_create",
            Route::TusFile(_) => "tus",
            Route::DirectUpload => "direct_upload",
            Route::Play { file, .. } if file.ends_with(".m3u8") => "playlist",
            Route::Play { file, .. } if file.ends_with(".ts") || file.ends_with(".m4s") => {
                "segment"
            }
            Route::Play { .. } => "play_other",
            Route::Key(..) => "key",
            Route::Embed(_) => "embed",
            Route::Oembed => "oembed",
            Route::Videos if method == Method::POST => "import",
            Route::Videos => "videos",
            Route::Events(_) => "events",
            Route::Captions(..) => "captions",
            Route::Video(_) if method == Method::DELETE => "video_delete",
            Route::Video(_) | Route::PlaybackToken(_) => "video",
            Route::Clips(_) => "clips",
            Route::Lives | Route::Live(_) | Route::LiveResetKey(_) => "lives",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Ui => "ui",
            Route::Asset(_) => "assets",
            Route::Unknown => "other",
        }
    }

    /// Which CORS rules the route follows; a tus upload URL that carries
    /// its own token is usable from any page (see [`Class::Upload`]).
    pub(crate) fn class(&self, query: Option<&str>) -> Class {
        match self {
            Route::Play { .. } | Route::Key(..) | Route::Embed(_) | Route::Oembed => {
                Class::Playback
            }
            Route::TusFile(_) if crate::auth::token_from_query(query).is_some() => Class::Upload,
            Route::Upload
            | Route::TusCreate
            | Route::TusFile(_)
            | Route::DirectUpload
            | Route::Videos
            | Route::Video(_)
            | Route::Events(_)
            | Route::PlaybackToken(_)
            | Route::Clips(_)
            | Route::Captions(..)
            | Route::Lives
            | Route::Live(_)
            | Route::LiveResetKey(_)
            | Route::Metrics => Class::Api,
            Route::Ui | Route::Asset(_) | Route::Healthz | Route::Readyz | Route::Unknown => {
                Class::Local
            }
        }
    }

    /// The credential the route needs for `method` (a preflight needs
    /// none).
    pub(crate) fn credential(&self, method: &Method) -> Credential {
        if method == Method::OPTIONS {
            return Credential::None;
        }
        match self {
            Route::Upload
            | Route::TusCreate
            | Route::DirectUpload
            | Route::Videos
            | Route::Video(_)
            | Route::Events(_)
            | Route::PlaybackToken(_)
            | Route::Clips(_)
            | Route::Captions(..)
            | Route::Lives
            | Route::Live(_)
            | Route::LiveResetKey(_)
            | Route::Metrics => Credential::Api,
            Route::TusFile(_) => Credential::ApiOrGrant,
            Route::Play { .. } | Route::Key(..) | Route::Embed(_) => Credential::Playback,
            // Checks the token of the URL it is asked about itself.
            Route::Oembed => Credential::None,
            Route::Ui | Route::Asset(_) | Route::Healthz | Route::Readyz | Route::Unknown => {
                Credential::None
            }
        }
    }

    /// True for the tus protocol's routes (their own headers, `OPTIONS`
    /// discovery and method override).
    pub(crate) fn is_tus(&self) -> bool {
        matches!(self, Route::TusCreate | Route::TusFile(_))
    }

    /// A path of every kind of route (for tests that walk the table).
    #[cfg(test)]
    pub(crate) fn examples(id: VideoId) -> Vec<String> {
        [
            "/",
            "/assets/app.js",
            "/healthz",
            "/readyz",
            "/metrics",
            "/upload",
            "/files",
            "/files/{id}",
            "/videos/direct-upload",
            "/videos",
            "/videos/{id}",
            "/videos/{id}/events",
            "/videos/{id}/playback-token",
            "/videos/{id}/clips",
            "/videos/{id}/captions/en",
            "/play/{id}/video.m3u8",
            "/play/{id}/720p/seg_00000.ts",
            "/keys/{id}/key_00000.key",
            "/embed/{id}",
            "/oembed",
            "/lives",
            "/lives/{id}",
            "/lives/{id}/reset-key",
        ]
        .iter()
        .map(|p| p.replace("{id}", id.as_str()))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_to_their_routes() {
        let id = VideoId::random();
        let i = Some(id);
        let s = id.to_string();
        assert_eq!(Route::parse("/"), Route::Ui);
        assert_eq!(Route::parse("/files/"), Route::TusCreate);
        assert_eq!(Route::parse(&format!("/files/{s}")), Route::TusFile(i));
        assert_eq!(Route::parse("/files/nope"), Route::TusFile(None));
        assert_eq!(Route::parse("/videos/direct-upload"), Route::DirectUpload);
        assert_eq!(
            Route::parse(&format!("/play/{s}/720p/v.m3u8")),
            Route::Play {
                id: i,
                rung: Some("720p"),
                file: "v.m3u8"
            }
        );
        assert_eq!(Route::parse("/play/a/b/c/d"), Route::Unknown);
        assert_eq!(Route::parse("/play/a/b/c/d/e/f"), Route::Unknown);
        assert_eq!(Route::parse("/nothing/here"), Route::Unknown);
        // Leading slashes are one (as before the table).
        assert_eq!(Route::parse("//"), Route::Ui);
    }

    /// Every route of the table: each knows its methods, its label, its
    /// class and its credential, and only the public ones need none.
    #[test]
    fn the_table_is_complete() {
        let id = VideoId::random();
        let mut labels = std::collections::HashSet::new();
        for path in Route::examples(id) {
            let route = &Route::parse(&path);
            assert_ne!(*route, Route::Unknown, "{path}");
            let allowed = route.allowed().unwrap_or_else(|| panic!("{path}"));
            assert!(allowed.ends_with("OPTIONS"), "{path}");
            labels.insert(route.label(&Method::GET));
            let public = matches!(
                route,
                Route::Ui | Route::Asset(_) | Route::Healthz | Route::Readyz
            );
            let cred = route.credential(&Method::GET);
            let checks_its_own = *route == Route::Oembed;
            assert_eq!(cred == Credential::None, public || checks_its_own, "{path}");
            assert_eq!(route.class(None) == Class::Local, public, "{path}");
            assert_eq!(route.credential(&Method::OPTIONS), Credential::None);
            let no_video = [
                Route::Videos,
                Route::Metrics,
                Route::Upload,
                Route::Oembed,
                Route::Lives,
            ];
            if !public && !no_video.contains(route) {
                let names_video = !matches!(route, Route::TusCreate | Route::DirectUpload);
                assert_eq!(route.video().is_some(), names_video, "{path}");
            }
        }
        assert_eq!(Route::Unknown.allowed(), None);
        assert!(labels.len() >= 15, "{labels:?}");
    }
}
