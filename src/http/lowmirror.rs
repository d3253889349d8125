//! Blocking reloads on a node that is not making the live (videos in a
//! shared bucket). The node making a low-latency live moves its rungs'
//! edges in memory ([`crate::hls::edge`]); another node knows where a
//! playlist ends only from the bucket. So for a rung whose blocking
//! reloads (`_HLS_msn`, `_HLS_part`) or preload-hinted part reach it,
//! such a node keeps a mirror of the edge: one task reads the rung's
//! playlist from the bucket every [`POLL`] and moves the mirror as it
//! grows, and the requests wait on the mirror as they would on the edge
//! (the same patience, the same server-wide bound on waiting requests).
//! A mirror nobody used for [`IDLE`], or whose playlist ended or went,
//! goes; at most [`MAX_MIRRORS`] at once (past that, requests are
//! answered at once, as before).

use crate::hls::edge::{Edge, Position};
use crate::storage::names::{self, FileKind};
use crate::storage::{Store, VideoId};
use crate::Error;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a mirror reads its playlist.
const POLL: Duration = Duration::from_millis(100);
/// How long a mirror lives unused.
const IDLE: Duration = Duration::from_secs(10);
/// Mirrors at once, at most.
const MAX_MIRRORS: usize = 256;

struct Mirror {
    edge: Arc<Edge>,
    used: Mutex<Instant>,
}

type Mirrors = HashMap<(VideoId, String), Arc<Mirror>>;
static MIRRORS: LazyLock<Mutex<Mirrors>> = LazyLock::new(Default::default);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a low-latency playlist's text says it ends, and its part target;
/// `None` for a playlist without parts.
fn position_of(text: &str) -> Option<(Position, f64)> {
    let mut at = Position::default();
    let mut target = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            at.open_msn = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:PART-TARGET=") {
            target = v.trim().parse().ok();
        } else if line.starts_with("#EXT-X-PART:") {
            at.parts += 1;
        } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            let uri = v.split("URI=\"").nth(1).and_then(|u| u.split('"').next());
            at.hint = uri.unwrap_or("").to_owned();
        } else if line == "#EXT-X-ENDLIST" {
            at.ended = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            // A whole segment: the parts listed so far were its own.
            at.open_msn += 1;
            at.prev_parts = at.parts;
            at.parts = 0;
        }
    }
    Some((at, target?))
}

/// The mirror of video `id`'s playlist `rel` (a rung's), made if need be;
/// `None` when the playlist is not a low-latency one, or too many are.
async fn mirror(store: &Store, id: VideoId, rel: &str) -> Option<Arc<Mirror>> {
    let key = (id, rel.to_owned());
    if let Some(m) = lock(&MIRRORS).get(&key) {
        *lock(&m.used) = Instant::now();
        return Some(m.clone());
    }
    let text = store.read_async(id, rel).await.ok()?;
    let (at, target) = position_of(&String::from_utf8_lossy(&text))?;
    if at.ended {
        return None;
    }
    let made = Arc::new(Mirror {
        edge: crate::hls::edge::detached(crate::hls::lowlat::patience(target), at),
        used: Mutex::new(Instant::now()),
    });
    {
        let mut all = lock(&MIRRORS);
        if let Some(m) = all.get(&key) {
            return Some(m.clone());
        }
        if all.len() >= MAX_MIRRORS {
            return None;
        }
        all.insert(key.clone(), made.clone());
    }
    tokio::spawn(follow(store.clone(), key, made.clone()));
    Some(made)
}

/// Reads the mirror's playlist every [`POLL`] and moves it, until it is
/// unused, ended or gone; then forgets it (its waiters wake).
async fn follow(store: Store, key: (VideoId, String), m: Arc<Mirror>) {
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        if lock(&m.used).elapsed() > IDLE {
            break;
        }
        let text = match store.read_async(key.0, &key.1).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(_) => continue,
        };
        let Some((at, _)) = position_of(&String::from_utf8_lossy(&text)) else {
            break;
        };
        let ended = at.ended;
        if at != m.edge.position() {
            m.edge.moved(at);
        }
        if ended {
            break;
        }
    }
    let mut all = lock(&MIRRORS);
    if all.get(&key).is_some_and(|e| Arc::ptr_eq(e, &m)) {
        all.remove(&key);
    }
    drop(all);
    let mut end = m.edge.position();
    end.ended = true;
    m.edge.moved(end);
}

/// Before file `file` of video `id`'s rung `rung` (a playlist or a part)
/// is served by a node that does not make it: a blocking reload waits on
/// the playlist's mirror, and so does the preload-hinted part.
pub(crate) async fn before(
    store: &Store,
    id: VideoId,
    rung: Option<&str>,
    (file, kind): (&str, FileKind),
    query: Option<&str>,
) -> Result<(), Error> {
    let playlist = match rung {
        Some(r) => format!("{r}/{}", names::PLAYLIST),
        None => names::PLAYLIST.to_owned(),
    };
    match kind {
        FileKind::Playlist if super::lowlat::asked(query)?.is_some() => {
            match mirror(store, id, &playlist).await {
                Some(m) => super::lowlat::before_playlist(&m.edge, query).await,
                None => Ok(()),
            }
        }
        FileKind::Segment | FileKind::Fmp4Segment => before_part(id, &playlist, file).await,
        _ => Ok(()),
    }
}

/// The preload-hinted part `name` of a mirrored playlist is held until
/// the playlist moves past it.
async fn before_part(id: VideoId, playlist: &str, name: &str) -> Result<(), Error> {
    let held = lock(&MIRRORS).get(&(id, playlist.to_owned())).cloned();
    let Some(m) = held.filter(|m| m.edge.position().hint == name) else {
        return Ok(());
    };
    *lock(&m.used) = Instant::now();
    match m.edge.wait(|p| p.hint != name).await {
        Ok(true) => Ok(()),
        _ => Err(Error::NotReady),
    }
}

#[cfg(test)]
mod tests {
    use super::position_of;

    #[test]
    fn a_playlists_edge_is_read_from_its_text() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.205\n\
            #EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-PART:DURATION=0.2,URI=\"p1.ts\"\n\
            #EXT-X-PART:DURATION=0.2,URI=\"p2.ts\"\n#EXTINF:2.0,\nseg_4.ts\n\
            #EXT-X-PART:DURATION=0.2,URI=\"p3.ts\"\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p4.ts\"\n";
        let (at, target) = position_of(text).unwrap();
        assert_eq!((at.open_msn, at.parts, at.prev_parts), (5, 1, 2));
        assert_eq!(
            (at.hint.as_str(), at.ended, target),
            ("p4.ts", false, 0.205)
        );
        assert!(position_of("#EXTM3U\n#EXTINF:2.0,\ns.ts\n#EXT-X-ENDLIST\n").is_none());
        let ended = format!("{text}#EXT-X-ENDLIST\n");
        assert!(position_of(&ended).unwrap().0.ended);
    }
}
