//! Entry points for the fuzz targets in `tests/fuzz/` (`cargo fuzz`): the
//! places untrusted bytes are parsed. Not an API; each function must
//! simply never panic, hang or grow without bound, whatever its input.

/// The request path parser: `/play/{id}/{file}` and `/keys/{id}/{name}`
/// pieces, the Range header, the playback-token query.
pub fn request_path(input: &str) {
    let route = crate::http::Route::parse(input);
    let _ = (route.allowed(), route.video(), route.class(Some(input)));
    let segments: Vec<&str> = input.trim_start_matches('/').split('/').collect();
    if let [_, id, file] = segments.as_slice() {
        let _ = crate::storage::VideoId::parse(id);
        let _ = crate::storage::names::playable_file(file);
        let _ = crate::storage::names::is_key_name(file);
        let _ = crate::storage::names::generation_of(file);
    }
    let _ = crate::http::parse_range_for_fuzzing(Some(input), 1 << 20);
    let _ = crate::auth::token_from_query(Some(input));
    let _ = crate::auth::verify(b"key", "V1StGXR8_Z5jdHi6B-myT", input, 0);
}

/// Playlist rewriting for signed URLs, and the playlist parsers.
pub fn playlist_rewrite(input: &str) {
    use crate::playlist;
    let out = playlist::rewrite_uris(input, |u| playlist::with_query(u, "token", "123.abc"));
    // Every non-empty, non-tag line must carry the token afterwards.
    for line in out.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        assert!(line.contains("token=123.abc"), "{line:?}");
    }
    let _ = playlist::MediaPlaylist::parse(input).to_string();
    let _ = playlist::MasterPlaylist::parse(input).to_string();
}

/// Multipart ingestion with probing: `input` is split into a multipart body
/// (parsed by multer) whose file part is written to a spool and probed by
/// libav exactly as an upload is.
pub fn multipart_probe(input: &[u8]) {
    let boundary = "fuzzboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"f\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(input);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    let data = rt.block_on(async {
        let stream =
            futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
        let mut mp = multer::Multipart::new(stream, boundary);
        let mut out = Vec::new();
        while let Ok(Some(mut field)) = mp.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                out.extend_from_slice(&chunk);
            }
        }
        out
    });
    let dir = std::env::temp_dir().join(format!("hlsd-fuzz-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let path = dir.join("source");
    if std::fs::write(&path, &data).is_err() {
        return;
    }
    let _ = crate::media::init();
    let settings = crate::media::Settings::from_config(&crate::Config::with_storage(dir.clone()));
    let _ = crate::media::open_file(&path, &settings).map(|s| s.info);
    let _ = std::fs::remove_file(&path);
}

/// The upload form up to its file: fields, part headers, boundaries and
/// preamble of any shape, through the body guard and multer, must end in
/// the file part or an error, within the form's byte budget.
pub fn form_fields(input: &[u8]) {
    use crate::ingest::form;
    use crate::ingest::guard::{BodyGuard, GuardState, Limits};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let guard = std::sync::Arc::new(GuardState::default());
        let limits = Limits {
            idle: std::time::Duration::from_secs(60),
            min_rate: 0,
            before_file: form::FORM_LIMIT,
        };
        // The input in small pieces, as a network delivers it.
        let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = input
            .chunks(97)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let body = BodyGuard::new(futures_util::stream::iter(pieces), limits, guard.clone());
        let mut mp = multer::Multipart::new(body, "fuzzboundary");
        if let Ok((fields, _part)) = form::read_until_file(&mut mp, &guard).await {
            if let Some(t) = fields.title {
                assert!(t.chars().count() <= form::MAX_TITLE);
            }
        }
    });
}

/// `Forwarded` / `X-Forwarded-For` parsing and the client it names.
pub fn forwarded(input: &str) {
    let mut headers = http::HeaderMap::new();
    for (i, line) in input.split('\n').enumerate() {
        let Ok(v) = http::HeaderValue::from_str(line) else {
            continue;
        };
        let name = if i % 2 == 0 {
            "forwarded"
        } else {
            "x-forwarded-for"
        };
        headers.append(name, v);
    }
    let trusted: Vec<crate::config::Cidr> = ["10.0.0.0/8", "::1/128"]
        .into_iter()
        .filter_map(crate::config::Cidr::parse)
        .collect();
    let peer = std::net::IpAddr::from([10, 0, 0, 1]);
    let _ = crate::http::client_for_fuzzing(peer, &headers, &trusted);
    let _ = crate::config::Cidr::parse(input);
}

/// An SRT publisher's MPEG-TS read for its configuration (`tsconf`): a
/// first publisher, then one back, each in chunks whose sizes come from
/// the input; what is held never exceeds what came, and a verdict always
/// comes within the hold's bound.
pub fn srt_config(input: &[u8]) {
    use crate::ingest::live::tsconf::{Verdict, Watch};
    let (Some(&step), Some(rest)) = (input.first(), input.get(1..)) else {
        return;
    };
    let step = usize::from(step) * 7 + 1;
    let mut watch = Watch::default();
    let half = rest.len() / 2;
    for (i, part) in [&rest[..half], &rest[half..]].into_iter().enumerate() {
        if i == 1 {
            watch.back();
        }
        let (mut held, mut passed) = (0usize, 0usize);
        for chunk in part.chunks(step) {
            held += chunk.len();
            match watch.take(bytes::Bytes::copy_from_slice(chunk)) {
                Verdict::Pass(all) => passed += all.iter().map(|b| b.len()).sum::<usize>(),
                Verdict::Hold | Verdict::Refuse => {}
            }
            assert!(passed <= held);
        }
    }
}

/// The parsers of copied H.264/HEVC packets (a copy's parameter-set
/// rule, a clip's `avcC` and Annex B rewriting): the first byte says how
/// much of the rest is extradata, the remainder is one packet.
pub fn video_packets(input: &[u8]) {
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let (extra, packet) = rest.split_at(usize::from(n).min(rest.len()));
    crate::media::fuzz_video_packets(extra, packet);
}

#[cfg(test)]
mod tests {
    /// A quick pass over random and near-valid inputs (the fuzz target
    /// goes much further; this runs with the unit tests).
    #[test]
    fn video_packet_parsers_take_any_bytes() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let avcc = [
            1u8, 100, 0, 40, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 9,
        ];
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut input: Vec<u8> = (0..len).map(|_| (next() % 7) as u8).collect();
            if next() % 2 == 0 {
                input.splice(0..0, [avcc.len() as u8].into_iter().chain(avcc));
            }
            super::video_packets(&input);
        }
    }
}
