// The embed page's player (/embed/{id}): hls.js where Media Source exists,
// native HLS otherwise (Safari). Options come from the <video>'s data-*:
//   data-src      the playlist (with the page's token)
//   data-start    seconds to start at; data-end: seconds to stop (or loop) at
//   data-clip     "1": the token grants a clip, so the playlists are already
//                 trimmed to it and start at it (EXT-X-START); data-start and
//                 data-end are the clip's range in the whole video's time
//   data-captions a language to show captions in
// window.hlsdEmbed reports what happened (for tests and for debugging).
'use strict';
(() => {
  const video = document.getElementById('player');
  const menu = document.getElementById('captions');
  const d = video.dataset;
  const num = (v) => (v === undefined || v === '' ? null : Number(v));
  const clip = d.clip === '1';
  const start = num(d.start);
  const end = num(d.end);
  const state = { errors: [], subtitleTracks: [], captions: null, endAt: clip ? null : end, startAt: clip ? null : start };
  window.hlsdEmbed = state;

  video.addEventListener('playing', () => {
    if (state.firstPlaying == null) state.firstPlaying = video.currentTime;
  });

  // Stop (or loop) at the end of the range.
  video.addEventListener('timeupdate', () => {
    if (state.endAt == null || video.currentTime < state.endAt) return;
    if (video.loop) video.currentTime = state.startAt ?? 0;
    else if (!video.paused) video.pause();
  });

  function fillMenu(tracks, pick) {
    state.subtitleTracks = tracks.map((t) => t.lang || '');
    for (const [i, t] of tracks.entries()) {
      const o = document.createElement('option');
      o.value = String(i);
      o.textContent = t.name || t.lang || `Track ${i + 1}`;
      o.dataset.lang = t.lang || '';
      menu.append(o);
    }
    menu.hidden = tracks.length === 0;
    const want = d.captions ? tracks.findIndex((t) => (t.lang || '').toLowerCase() === d.captions) : -1;
    if (want >= 0) {
      menu.value = String(want);
      pick(want);
    }
  }

  if (window.Hls && window.Hls.isSupported()) {
    // A live behind its target latency (a late start, a stall) plays up
    // to 1.5x until it is back (hls.js's own advice for LL-HLS).
    const hls = new window.Hls({ startPosition: state.startAt ?? -1, maxLiveSyncPlaybackRate: 1.5 });
    state.hls = hls;
    hls.on(window.Hls.Events.LEVEL_LOADED, (_, data) => {
      // A clip's playlists start at its first segment: its range, in the
      // player's time, starts at EXT-X-START.
      if (!clip || state.endAt != null || end == null) return;
      const offset = data.details.startTimeOffset || 0;
      state.startAt = offset;
      state.endAt = offset + (end - (start ?? 0));
    });
    const pick = (i) => {
      hls.subtitleTrack = i;
      hls.subtitleDisplay = i >= 0;
      state.captions = i >= 0 ? hls.subtitleTracks[i]?.lang ?? null : null;
    };
    hls.once(window.Hls.Events.SUBTITLE_TRACKS_UPDATED, (_, data) => fillMenu(data.subtitleTracks, pick));
    menu.addEventListener('change', () => pick(Number(menu.value)));
    hls.on(window.Hls.Events.ERROR, (_, e) => {
      if (e.fatal) state.errors.push(`${e.type}: ${e.details}`);
    });
    hls.loadSource(d.src);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = d.src;
    video.addEventListener('loadedmetadata', () => {
      if (state.startAt != null) video.currentTime = state.startAt;
      const tracks = [...video.textTracks].filter((t) => t.kind === 'subtitles' || t.kind === 'captions');
      const pick = (i) => {
        tracks.forEach((t, j) => (t.mode = j === i ? 'showing' : 'disabled'));
        state.captions = i >= 0 ? tracks[i].language : null;
      };
      fillMenu(tracks.map((t) => ({ lang: t.language, name: t.label })), pick);
      menu.addEventListener('change', () => pick(Number(menu.value)));
    }, { once: true });
    video.addEventListener('error', () => state.errors.push(`media: ${video.error?.code}`));
  } else {
    state.errors.push('this browser cannot play HLS');
  }
})();
