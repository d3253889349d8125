//! Tests of [`super`]: part targets, grouping, the playlist, dates.
use super::*;

#[test]
fn dates_are_rfc3339_utc() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    let t = UNIX_EPOCH + Duration::from_millis(1_796_644_800_123);
    assert_eq!(rfc3339(t), "2026-12-07T12:00:00.123Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
}

#[test]
fn part_targets_hold_every_part_the_muxer_cuts() {
    // 30 fps read from FLV's milliseconds is 30.
    for fps in [30.0, 1000.0 / 33.0, 25.0, 60.0, 50.0, 0.0] {
        assert_eq!((part_seconds(fps), part_target(fps)), (0.2, 0.205), "{fps}");
    }
    assert_eq!((part_seconds(24.0), part_target(24.0)), (0.25, 0.255));
    // NTSC: 12 frames, now and then 11, still above 85%.
    let ntsc = 30000.0 / 1001.0;
    assert_eq!((part_seconds(ntsc), part_target(ntsc)), (0.4, 0.406));
    assert!(11.0 / ntsc >= 0.85 * part_target(ntsc));
    // Audio alone (AAC frames at 48 kHz): 0.4 s, 19 frames at most.
    assert_eq!(part_seconds(46.875), 0.4);
    assert!(part_target(46.875) >= 19.0 / 46.875);
    // Low rates: whole frames where they can, else parts whose shortest
    // is within 85% of the target.
    let low = [
        (15.0, 0.2),
        (12.0, 0.25),
        (7.5, 0.4),
        (10.0, 0.2),
        (9.0, 1.0),
    ];
    for (fps, cut) in low
        .into_iter()
        .chain([(13.0, 1.0), (17.0, 0.5), (6.0, 0.5), (1.0, 1.0)])
    {
        assert_eq!(part_seconds(fps), cut, "{fps}");
    }
    for fps in 1..=120 {
        let fps = f64::from(fps);
        let (cut, target) = (part_seconds(fps), part_target(fps));
        let shortest = (cut * fps + 1e-6).floor().max(1.0) / fps;
        assert!(
            shortest >= 0.85 * target,
            "{fps} fps: {shortest} of {target}"
        );
        assert!((cut * fps - 1e-6).ceil() / fps <= target, "{fps} fps");
    }
}

fn part(n: u32, independent: bool) -> Part {
    Part {
        name: format!("part_{n:05}.ts"),
        duration: 0.4,
        independent,
        restart: false,
    }
}

#[test]
fn segments_close_on_keyframes_or_before_they_grow_too_long() {
    let mut low = Low::new(crate::storage::VideoId::random(), "", 0.405);
    let timing = (2.0, 2);
    let mut closed = vec![];
    for n in 0..11 {
        let ts = Bytes::from_static(b"ts");
        let c = low.take(part(n, n % 5 == 0), (ts.clone(), ts), timing);
        closed.extend(c.map(|c| (n, c.bytes.len(), c.independent)));
    }
    assert_eq!(closed, vec![(5, 5, true), (10, 5, true)]);
    // No keyframe on the grid: cut before it would round past 2 s.
    let mut closed = vec![];
    for n in 11..20 {
        let ts = Bytes::from_static(b"ts");
        let c = low.take(part(n, false), (ts.clone(), ts), timing);
        closed.extend(c.map(|c| (n, c.bytes.len(), c.independent)));
    }
    assert_eq!(closed, vec![(16, 6, true)]);
    assert_eq!(low.expired(false), Vec::<String>::new());
    assert_eq!(low.expired(true).len(), 20);
}

#[test]
fn the_playlist_lists_recent_parts_and_a_hint() {
    let mut low = Low::new(crate::storage::VideoId::random(), "", 0.405);
    let mut segs = vec![];
    for n in 0..22 {
        if let Some(c) = low.take(part(n, n % 5 == 0), (Bytes::new(), Bytes::new()), (2.0, 2)) {
            segs.push(Segment::new(
                c.duration,
                format!("seg_{:05}.ts", segs.len()),
            ));
        }
    }
    let view = View {
        segments: &segs,
        first: 0,
        event: true,
        map: None,
        target: 2,
        hint: "part_00022.ts",
        keys: (None, None),
        discontinuities: 0,
    };
    let (text, at) = low.render(&view);
    assert_eq!((at.open_msn, at.parts, at.prev_parts), (4, 2, 5));
    assert_eq!(text.matches("#EXT-X-PART:").count(), 12, "{text}");
    assert!(!text.contains("part_00009.ts") && text.contains("part_00010.ts"));
    assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_00022.ts\"\n"));
    assert_eq!(text.matches("#EXT-X-PROGRAM-DATE-TIME:").count(), 5);
    assert_eq!(low.expired(false).len(), 5);
}

#[test]
fn a_publisher_back_closes_the_segment_and_starts_one_after_a_discontinuity() {
    let mut low = Low::new(crate::storage::VideoId::random(), "", 0.405);
    let mut segs = vec![];
    let restart = |n: u32| Part {
        restart: true,
        ..part(n, true)
    };
    for n in 0..9 {
        // Part 7 starts where the publisher came back, 0.8 s into a
        // segment: it closes it, though it is not full.
        let p = if n == 7 {
            restart(n)
        } else {
            part(n, n % 5 == 0)
        };
        if let Some(c) = low.take(p, (Bytes::new(), Bytes::new()), (2.0, 2)) {
            let mut s = Segment::new(c.duration, format!("seg_{:05}.ts", segs.len()));
            s.discontinuity = c.restart;
            segs.push(s);
        }
    }
    assert_eq!(segs.len(), 2, "{segs:?}");
    assert!(!segs[1].discontinuity);
    let view = View {
        segments: &segs,
        first: 1,
        event: false,
        map: None,
        target: 2,
        hint: "part_00009.ts",
        keys: (None, None),
        discontinuities: 3,
    };
    let (text, _) = low.render(&view);
    // The open segment (parts 7 and 8) follows the tag.
    let tag = text.find("#EXT-X-DISCONTINUITY\n").expect(&text);
    assert!(tag > text.find("seg_00001.ts").unwrap(), "{text}");
    assert!(tag < text.find("part_00007.ts").unwrap(), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:3\n"), "{text}");
    // Closed, the segment carries it.
    let c = low.close().unwrap();
    assert!(c.restart && c.independent);
}
