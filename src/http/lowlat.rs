//! Low-Latency HLS on the play route (RFC 8216bis §6.2.5.2): a playlist
//! request with `_HLS_msn` (and `_HLS_part`) is held until the playlist
//! holds that part, and the part the preload hint names is held until it
//! exists; fresh parts come from the rung's [edge](crate::hls::edge), in
//! memory. Every wait is bounded ([`Edge::wait`]): past it, or with too
//! many requests waiting already, `503` (the player asks again).

use super::files::Loaded;
use crate::hls::edge::{Busy, Edge};
use crate::Error;
use bytes::Bytes;
use http::request::Parts;

/// The low-latency edge a request for `kind` in video `id`'s `rung` may
/// wait on: playlists and segments of a rung a low-latency live is making.
pub(crate) fn edge(
    id: crate::storage::VideoId,
    rung: Option<&str>,
    kind: crate::storage::names::FileKind,
) -> Option<std::sync::Arc<Edge>> {
    use crate::storage::names::FileKind as K;
    matches!(kind, K::Playlist | K::Segment | K::Fmp4Segment)
        .then(|| crate::hls::edge::find(id, rung.unwrap_or("")))
        .flatten()
}

/// `_HLS_msn` and `_HLS_part` of a query; `400` for a part without a
/// segment, or a value that is not a number.
pub(super) fn asked(query: Option<&str>) -> Result<Option<(u64, Option<u64>)>, Error> {
    let (mut msn, mut part) = (None, None);
    for pair in query.unwrap_or("").split('&') {
        let number = |v: &str| {
            v.parse::<u64>().map_err(|_| {
                Error::BadRequest(format!("_HLS_msn and _HLS_part are numbers, not {v:?}"))
            })
        };
        match pair.split_once('=') {
            Some(("_HLS_msn", v)) => msn = Some(number(v)?),
            Some(("_HLS_part", v)) => part = Some(number(v)?),
            _ => {}
        }
    }
    match (msn, part) {
        (None, Some(_)) => Err(Error::BadRequest("_HLS_part needs _HLS_msn".into())),
        (None, None) => Ok(None),
        (Some(m), p) => Ok(Some((m, p))),
    }
}

fn unavailable(_: Busy) -> Error {
    Error::NotReady
}

/// Before a low-latency rung's playlist is served: a blocking reload
/// waits until the playlist holds what it asks for.
pub(crate) async fn before_playlist(edge: &Edge, query: Option<&str>) -> Result<(), Error> {
    let Some((msn, part)) = asked(query)? else {
        return Ok(());
    };
    let at = edge.position();
    if !at.ended && msn > at.open_msn + 2 {
        return Err(Error::BadRequest(format!(
            "_HLS_msn={msn} is too far ahead of the live edge ({})",
            at.open_msn
        )));
    }
    match edge
        .wait(|p| p.reached(msn, part))
        .await
        .map_err(unavailable)?
    {
        true => Ok(()),
        false => Err(Error::NotReady),
    }
}

/// A part of a low-latency rung from memory: a fresh one, or the hinted
/// next one once it is cut; `None` for everything else (served from the
/// store).
pub(crate) async fn part(edge: &Edge, name: &str) -> Result<Option<Bytes>, Error> {
    if let Some(b) = edge.part(name) {
        return Ok(Some(b));
    }
    if edge.position().hint != name {
        return Ok(None);
    }
    match edge.wait(|p| p.hint != name).await.map_err(unavailable)? {
        true => Ok(edge.part(name)),
        false => Err(Error::NotReady),
    }
}

/// A low-latency playlist asked for with `_HLS_skip=YES` (or `v2`: we
/// have no date ranges to skip): its delta update.
pub(crate) fn delta(loaded: Loaded, req: &Parts) -> Loaded {
    let asked = req
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|p| p == "_HLS_skip=YES" || p == "_HLS_skip=v2");
    let text = asked.then(|| super::files::text_of(&loaded)).flatten();
    match text.as_deref().and_then(crate::playlist::skip_older) {
        Some(t) => super::files::made(t, super::files::modified(&loaded)),
        None => loaded,
    }
}

#[cfg(test)]
mod tests {
    use super::asked;

    #[test]
    fn blocking_reload_parameters_are_read_strictly() {
        assert_eq!(asked(None).unwrap(), None);
        assert_eq!(asked(Some("token=x&start=1")).unwrap(), None);
        assert_eq!(asked(Some("_HLS_msn=4")).unwrap(), Some((4, None)));
        assert_eq!(
            asked(Some("_HLS_msn=4&_HLS_part=2")).unwrap(),
            Some((4, Some(2)))
        );
        for bad in [
            "_HLS_part=2",
            "_HLS_msn=-1",
            "_HLS_msn=x",
            "_HLS_msn=1&_HLS_part=1e3",
        ] {
            assert!(asked(Some(bad)).is_err(), "{bad}");
        }
    }
}
