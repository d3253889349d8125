//! Playlist delta updates (RFC 8216bis §6.2.5.1): a client that asks with
//! `_HLS_skip=YES` gets the playlist with the whole segments older than
//! the skip boundary (`CAN-SKIP-UNTIL` seconds before its end) replaced
//! by one `#EXT-X-SKIP:SKIPPED-SEGMENTS=N`. A long low-latency live's
//! playlist is read several times a second by every viewer; this keeps
//! each read to its last few segments.

/// `text` with its segments older than its own `CAN-SKIP-UNTIL` skipped;
/// `None` when it offers no delta or there is nothing to skip.
pub fn skip_older(text: &str) -> Option<String> {
    let until: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-SERVER-CONTROL:"))?
        .split(',')
        .find_map(|a| a.strip_prefix("CAN-SKIP-UNTIL="))?
        .parse()
        .ok()?;
    let lines: Vec<&str> = text.lines().collect();
    // The header ends at the first line about a segment.
    let first = lines.iter().position(|l| {
        !l.starts_with('#')
            || [
                "#EXTINF",
                "#EXT-X-PROGRAM-DATE-TIME",
                "#EXT-X-PART:",
                "#EXT-X-DISCONTINUITY",
                "#EXT-X-KEY",
            ]
            .iter()
            .any(|t| l.starts_with(t))
    })?;
    // Whole segments: (first line, line after its URI, seconds).
    let mut units = Vec::new();
    let (mut start, mut secs) = (first, 0.0);
    for (i, l) in lines.iter().enumerate().skip(first) {
        if let Some(d) = l.strip_prefix("#EXTINF:") {
            secs = d.split(',').next()?.trim().parse::<f64>().ok()?;
        } else if !l.starts_with('#') {
            units.push((start, i + 1, secs));
            (start, secs) = (i + 1, 0.0);
        }
    }
    let total: f64 = units.iter().map(|u| u.2).sum();
    let mut skipped = 0;
    let mut end = 0.0;
    for u in &units {
        end += u.2;
        if end > total - until {
            break;
        }
        skipped += 1;
    }
    if skipped == 0 {
        return None;
    }
    let keep_from = units[skipped].0;
    let mut out = lines[..first].join("\n");
    out.push_str(&format!("\n#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n"));
    // The key the first kept segment is under, when a skipped one set it.
    let starts_key = lines[keep_from..units[skipped].1]
        .iter()
        .any(|l| l.starts_with("#EXT-X-KEY:"));
    let skipped_key = lines[first..keep_from]
        .iter()
        .rev()
        .find(|l| l.starts_with("#EXT-X-KEY:"));
    if let (false, Some(key)) = (starts_key, skipped_key) {
        out.push_str(key);
        out.push('\n');
    }
    out.push_str(&lines[keep_from..].join("\n"));
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::skip_older;

    fn playlist(segments: usize) -> String {
        let mut t = String::from(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.615\n\
             #EXT-X-PART-INF:PART-TARGET=0.205\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n",
        );
        for i in 0..segments {
            t.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:2026-12-07T12:00:{:02}.000Z\n#EXTINF:2.000000,\nseg_{i:05}.ts\n",
                i * 2
            ));
        }
        t.push_str("#EXT-X-PART:DURATION=0.20000,URI=\"part_00100.ts\",INDEPENDENT=YES\n");
        t.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_00101.ts\"\n");
        t
    }

    #[test]
    fn segments_before_the_skip_boundary_are_skipped() {
        // 20 s listed, 12 s kept: the first 4 segments go.
        let out = skip_older(&playlist(10)).unwrap();
        assert!(out.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T12:00:08.000Z\n"), "{out}");
        assert_eq!(out.matches("#EXTINF").count(), 6);
        assert!(!out.contains("seg_00003.ts") && out.contains("seg_00004.ts"));
        assert!(out.ends_with("URI=\"part_00101.ts\"\n"), "{out}");
    }

    #[test]
    fn the_key_of_the_first_kept_segment_is_restated() {
        let full = playlist(10).replacen(
            "#EXT-X-PROGRAM-DATE-TIME",
            "#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/x/key_00000.key\",IV=0x01\n#EXT-X-PROGRAM-DATE-TIME",
            1,
        );
        let out = skip_older(&full).unwrap();
        assert!(
            out.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/x/key_00000.key\",IV=0x01\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T12:00:08.000Z\n"),
            "{out}"
        );
        assert_eq!(out.matches("#EXT-X-KEY").count(), 1);
    }

    #[test]
    fn nothing_to_skip_or_no_delta_offered() {
        assert!(skip_older(&playlist(6)).is_none());
        assert!(skip_older("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n").is_none());
        assert!(skip_older("").is_none());
    }
}
