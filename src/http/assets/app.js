// hlsd web UI: upload (tus), follow processing, play with hls.js (audio and
// caption tracks, storyboard previews on a seek bar, MP4 download), manage the library.
// Plain ES2017, no framework, no build step; works under a strict CSP.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const el = {
    form: $('upload-form'), file: $('file'), uploadBtn: $('upload-btn'),
    pauseBtn: $('pause-btn'), resumeBtn: $('resume-btn'),
    upProg: $('upload-progress'), upText: $('upload-text'),
    procProg: $('process-progress'), status: $('status-text'), error: $('error'),
    player: $('player'), nowPlaying: $('now-playing'),
    quality: $('quality'), qualityField: $('quality-field'),
    url: $('playback-url'), copyBtn: $('copy-btn'), copyStatus: $('copy-status'),
    curl: $('curl-example'), library: $('library'), libStatus: $('library-status'),
    refreshBtn: $('refresh-btn'),
    tokenSection: $('api-token-section'), tokenInput: $('api-token'),
    tokenSave: $('api-token-save'), tokenClear: $('api-token-clear'),
    tokenStatus: $('api-token-status'), tokenToggle: $('api-token-toggle'),
    audioField: $('audio-field'), audioSel: $('audio-track'),
    captionField: $('caption-field'), captionSel: $('caption-track'),
    seekWrap: $('seek-wrap'), seekBar: $('seek-bar'), seekFill: $('seek-fill'), seekBuffered: $('seek-buffered'),
    preview: $('storyboard-preview'), previewTime: $('storyboard-time'),
    download: $('download-link'),
    capForm: $('captions-form'), capFile: $('captions-file'), capLang: $('captions-lang'),
    capBtn: $('captions-btn'), capStatus: $('captions-status'),
    liveBtn: $('live-btn'), liveStatus: $('live-status'), liveInfo: $('live-info'),
    liveRtmp: $('live-rtmp'), liveKey: $('live-key'), liveSrt: $('live-srt'), liveFfmpeg: $('live-ffmpeg'),
  };
  const ACTIVE = ['receiving', 'queued', 'processing', 'live'];
  const EVENTS = ['receiving', 'queued', 'processing', 'ready', 'failed', 'live'];
  const MAX_ERRORS = 500;

  // Read by automated tests.
  window.hlsErrors = [];
  window.hlsdPlayer = { hls: null, video: el.player };

  // ---------------------------------------------------------------- helpers

  function fmtBytes(n) {
    if (typeof n !== 'number' || !(n >= 0)) return '?';
    let i = 0;
    for (; n >= 1024 && i < 4; i++) n /= 1024;
    return (i ? n.toFixed(1) : String(n)) + ' ' + ['B', 'KB', 'MB', 'GB', 'TB'][i];
  }

  function fmtDuration(s) {
    if (typeof s !== 'number' || !isFinite(s) || s < 0) return '--:--';
    s = Math.round(s);
    return String(Math.floor(s / 60)).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0');
  }

  const pct = (p) => Math.floor(Math.max(0, Math.min(1, Number(p) || 0)) * 100);
  const enc = encodeURIComponent;
  const titleOf = (rec) => (rec && (rec.title || rec.file_name || rec.id)) || 'untitled';

  let errorIsAuth = false; // #error shows the "needs an API token" message

  function showError(msg) { errorIsAuth = false; el.error.textContent = msg || ''; el.error.hidden = !msg; }

  // -------------------------------------------------------- playback URLs

  // Playback URLs come from the server (`playback_url`, signed with
  // `?token=` under --signing-key) and are played as given. Only one that
  // names another origin (a --public-url this page's CSP would block) is
  // played by its path and query on this origin.
  function localUrl(url) {
    if (!url) return '';
    try {
      const u = new URL(url, location.href);
      return u.origin === location.origin ? u.href : new URL(u.pathname + u.search, location.href).href;
    } catch (_) { return ''; }
  }

  // thumb.jpg / poster.jpg next to the playlist, keeping the query (token).
  function siblingUrl(playbackUrl, file) {
    const s = localUrl(playbackUrl);
    if (!s) return '';
    const u = new URL(s);
    if (!/video\.m3u8$/.test(u.pathname)) return '';
    u.pathname = u.pathname.replace(/video\.m3u8$/, file);
    return u.href;
  }

  // Only for an older server whose answers carry no playback_url.
  const legacyUrl = (id) => location.origin + '/play/' + enc(id) + '/video.m3u8';

  // ------------------------------------------------------------- API token

  // With --api-token the server answers 401 on uploads and management
  // unless the request says `Authorization: Bearer <token>`. The token is
  // kept in localStorage (in memory only if storage is blocked).
  const TOKEN_KEY = 'hlsd.apiToken';
  let memToken = '';
  let authRequired = false; // some request got a 401

  function getToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (_) { return memToken; }
  }

  function setToken(t) {
    memToken = t;
    try {
      if (t) localStorage.setItem(TOKEN_KEY, t);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* storage blocked: the in-memory copy lasts for this page */ }
  }

  function withAuth(headers) {
    const t = getToken();
    if (t) headers.Authorization = 'Bearer ' + t;
    return headers;
  }

  function showTokenSection(focus) {
    const wasHidden = el.tokenSection.hidden;
    el.tokenSection.hidden = false;
    el.tokenClear.hidden = !getToken();
    el.tokenToggle.hidden = true;
    el.tokenToggle.setAttribute('aria-expanded', 'true');
    if (focus && wasHidden) el.tokenInput.focus();
  }

  // Called on every 401.
  function needToken() {
    const had = !!getToken();
    authRequired = true;
    showTokenSection(true);
    el.tokenStatus.textContent = had ? 'The saved token was rejected.' : '';
    const msg = had
      ? 'This server needs an API token, and the saved one was rejected. Enter the right one under "API token".'
      : 'This server needs an API token. Enter it under "API token".';
    if (!errorIsAuth || el.error.textContent !== msg) showError(msg); // no repeated alerts
    errorIsAuth = true;
    updateCurl();
  }

  function saveToken() {
    const t = el.tokenInput.value.trim();
    setToken(t);
    el.tokenInput.value = '';
    el.tokenClear.hidden = !t;
    el.tokenStatus.textContent = t ? 'Token saved in this browser.' : 'No token saved.';
    if (errorIsAuth) showError('');
    tokenChanged();
  }

  function forgetToken() {
    setToken('');
    el.tokenInput.value = '';
    el.tokenClear.hidden = true;
    el.tokenStatus.textContent = 'Token removed from this browser.';
    tokenChanged();
  }

  // Reload what depends on the token: the library, and the video being
  // followed (polling with the header instead of EventSource, or back).
  function tokenChanged() {
    updateCurl();
    libSig = '';
    refreshLibrary();
    const id = (watcher && watcher.id) || stalledWatch;
    if (id) watch(id);
  }

  function updateCurl() {
    const auth = authRequired || getToken() ? '-H "Authorization: Bearer $HLSD_API_TOKEN" ' : '';
    el.curl.textContent = 'curl ' + auth + '-F video=@myvideo.mp4 ' + location.origin + '/upload';
  }

  // The server's errors are {"error":{"code","message"}}.
  function errorMessage(status, text) {
    try {
      const e = JSON.parse(text).error;
      if (e) return e.message || e.code || 'HTTP ' + status;
    } catch (_) { /* not JSON */ }
    return status ? 'HTTP ' + status : 'network error';
  }

  async function api(method, path, body) {
    const headers = withAuth({ Accept: 'application/json' });
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = res.status === 204 ? '' : await res.text();
    if (res.status === 401) needToken();
    if (!res.ok) throw Object.assign(new Error(errorMessage(res.status, text)), { status: res.status });
    return text ? JSON.parse(text) : null;
  }

  // ----------------------------------------------------------------- upload

  // Uploads use tus 1.0 (tus-js-client, /assets/tus.min.js). POST /files/
  // creates the video and its transcode starts with the first bytes, so it
  // plays while uploading. One streaming PATCH sends the file; after a
  // failure, a pause or a page reload it goes on from the server's offset
  // (tus-js-client keeps the upload URL in localStorage under the file's
  // name, type, size and date: choosing the same file again resumes it).
  const TUS_ENDPOINT = location.origin + '/files/';
  const TUS_RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];
  const RESUMABLE_FOR_MS = 24 * 3600 * 1000; // only for the hint on load

  // The upload in progress: { file, upload (tus.Upload), id, paused, info }.
  let current = null;
  // Read by automated tests: { id, resumed, offsetAtStart, paused, done, bytesSent, progressEvents }.
  window.hlsdUpload = null;

  function setUploadProgress(loaded, total) {
    const p = total > 0 ? Math.min(100, Math.round((loaded / total) * 100)) : 0;
    el.upProg.value = p;
    el.upText.textContent = fmtBytes(loaded) + ' / ' + fmtBytes(total) + ' (' + p + '%)';
  }

  function setBusy(busy) {
    el.uploadBtn.disabled = busy;
    el.file.disabled = busy;
    el.form.setAttribute('aria-busy', String(busy));
    el.uploadBtn.textContent = busy ? 'Uploading…' : 'Upload';
    el.pauseBtn.hidden = el.resumeBtn.hidden = true;
  }

  function fail(msg) { el.status.textContent = 'upload failed'; showError(msg); }

  // The newest of tus-js-client's stored uploads (they record when they began).
  function newest(list) {
    const time = (u) => Date.parse(u.creationTime) || 0;
    return (list || []).slice().sort((a, b) => time(b) - time(a))[0] || null;
  }

  // `/files/{id}` (maybe relative, maybe with a query) → id.
  function idFromUploadUrl(url) {
    try {
      return decodeURIComponent(new URL(url, location.href).pathname.split('/').filter(Boolean).pop() || '');
    } catch (_) { return ''; }
  }

  function upload(ev) {
    ev.preventDefault();
    const f = el.file.files && el.file.files[0];
    if (!f) { showError('Choose a video file first.'); el.file.focus(); return; }
    if (authRequired && !getToken()) { needToken(); return; }
    if (!window.tus || !window.tus.isSupported) return fail('Uploads need /assets/tus.min.js, which did not load.');
    showError('');
    setBusy(true);
    setUploadProgress(0, f.size);
    el.procProg.value = 0;
    el.status.textContent = 'uploading';
    const info = { id: null, resumed: false, offsetAtStart: 0, paused: false, done: false, bytesSent: 0, progressEvents: 0 };
    const cur = (current = { file: f, upload: null, id: null, paused: false, info });
    window.hlsdUpload = info;
    cur.upload = new window.tus.Upload(f, tusOptions(cur));
    cur.upload.findPreviousUploads()
      .then((prev) => {
        const p = newest(prev);
        if (p) cur.upload.resumeFromPreviousUpload(p);
      }, () => { /* no storage: a new upload */ })
      .then(() => {
        if (current !== cur) return;
        cur.upload.start();
        if (current === cur) el.pauseBtn.hidden = false;
      });
  }

  function tusOptions(cur) {
    const metadata = { filename: cur.file.name };
    if (cur.file.type) metadata.filetype = cur.file.type;
    return {
      endpoint: TUS_ENDPOINT,
      retryDelays: TUS_RETRY_DELAYS,
      metadata,
      removeFingerprintOnSuccess: true, // the same file chosen again is a new video
      // Read at each request: a token may be saved during a pause.
      onBeforeRequest: (req) => {
        const t = getToken();
        if (t) req.setHeader('Authorization', 'Bearer ' + t);
      },
      onAfterResponse: (req, res) => tusAnswer(cur, req, res),
      onProgress: (sent, total) => tusProgress(cur, sent, total),
      onSuccess: () => tusDone(cur),
      onError: (err) => tusFailed(cur, err),
    };
  }

  // The first answer that names the upload: the creation (POST, whose JSON
  // has the id and playback_url) or, for a resumed upload, the HEAD of its
  // URL /files/{id}. The page reacts outside tus-js-client's callback.
  function tusAnswer(cur, req, res) {
    const status = res.getStatus();
    const method = req.getMethod();
    if (cur.id || status < 200 || status > 299 || (method !== 'POST' && method !== 'HEAD')) return;
    let r = null;
    if (method === 'POST') {
      try { r = JSON.parse(res.getBody()); } catch (_) { r = null; }
    }
    const id = (r && r.id) || idFromUploadUrl(method === 'POST' ? res.getHeader('Location') : req.getURL());
    if (!id) return;
    const resumed = method === 'HEAD';
    cur.id = id;
    Object.assign(cur.info, { id, resumed, offsetAtStart: resumed ? parseInt(res.getHeader('Upload-Offset'), 10) || 0 : 0 });
    setTimeout(() => started(cur, id, r && r.playback_url), 0);
  }

  function started(cur, id, playbackUrl) {
    const title = cur.file.name;
    if (playbackUrl) { follow(cur, id, playbackUrl, title, 'receiving'); return; }
    api('GET', '/videos/' + enc(id)).then(
      (r) => follow(cur, id, (r && r.playback_url) || legacyUrl(id), titleOf(r) || title, r && r.status),
      () => follow(cur, id, legacyUrl(id), title, 'receiving'));
  }

  // Shows the video being uploaded, follows its status and loads it in the
  // player: its playlist grows while the upload goes on.
  function follow(cur, id, url, title, status) {
    if (current !== cur && !cur.info.done) return; // failed meanwhile
    status = status || 'receiving';
    setPlaybackUrl(url);
    loadVideo(id, { title, status, url });
    renderStatus({ status, progress: 0 });
    watch(id);
    refreshLibrary();
  }

  function tusProgress(cur, sent, total) {
    if (current !== cur) return;
    cur.info.bytesSent = sent;
    cur.info.progressEvents++;
    setUploadProgress(sent, total || cur.file.size);
  }

  function tusDone(cur) {
    if (current !== cur) return;
    current = null;
    cur.info.done = true;
    setBusy(false);
    setUploadProgress(cur.file.size, cur.file.size);
    el.upText.textContent += ' · uploaded';
    el.file.value = '';
    refreshLibrary();
  }

  // tus-js-client gives up after its retries, or at once on a 4xx (but 409/423).
  function tusFailed(cur, err) {
    if (current !== cur) return;
    current = null;
    cur.info.error = String((err && err.message) || err);
    setBusy(false);
    if (watcher && watcher.id === cur.id) stopWatch(); // it would say "receiving" again
    const res = err && err.originalResponse;
    const status = res ? res.getStatus() : 0;
    if (status === 401) { el.status.textContent = 'upload failed'; needToken(); return; }
    const why = res ? errorMessage(status, res.getBody())
      : err && err.originalRequest ? 'the connection to the server was lost.' : cur.info.error;
    const resumable = err && err.originalRequest && (!res || status >= 500 || status === 409 || status === 423);
    fail('Upload failed: ' + why + (resumable ? ' Press Upload again to go on from where it stopped.' : ''));
  }

  function pauseUpload() {
    const cur = current;
    if (!cur || cur.paused) return;
    cur.paused = cur.info.paused = true;
    cur.upload.abort();
    el.pauseBtn.hidden = true;
    el.resumeBtn.hidden = false;
    el.resumeBtn.focus();
    el.uploadBtn.textContent = 'Paused';
    el.upText.textContent += ' · paused';
  }

  function resumeUpload() {
    const cur = current;
    if (!cur || !cur.paused) return;
    cur.paused = cur.info.paused = false;
    el.resumeBtn.hidden = true;
    el.pauseBtn.hidden = false;
    el.pauseBtn.focus();
    el.uploadBtn.textContent = 'Uploading…';
    cur.upload.start(); // HEAD, then PATCH from the server's offset
  }

  // After a reload: an unfinished upload goes on when its file is chosen again.
  function unfinishedHint() {
    const storage = window.tus && window.tus.defaultOptions && window.tus.defaultOptions.urlStorage;
    if (!storage || typeof storage.findAllUploads !== 'function') return;
    storage.findAllUploads().then((all) => {
      const p = newest(all);
      const name = p && p.metadata && p.metadata.filename;
      if (!name || current || Date.now() - Date.parse(p.creationTime) > RESUMABLE_FOR_MS) return;
      el.upText.textContent = 'Unfinished upload: choose "' + name + '" again to resume it.';
    }, () => { /* no storage */ });
  }

  // ----------------------------------------------------- status and events

  function renderStatus(d) {
    const s = d.status;
    let text = s;
    if (s === 'processing') text = 'processing ' + pct(d.progress) + '%';
    else if (s === 'receiving' && d.bytes_received) text = 'receiving ' + fmtBytes(d.bytes_received);
    else if (s === 'failed') text = 'failed: ' + ((d.error && (d.error.message || d.error.code)) || 'unknown');
    el.status.textContent = text;
    if (s === 'queued' || s === 'receiving' || s === 'live') el.procProg.removeAttribute('value'); // indeterminate
    else el.procProg.value = s === 'ready' ? 1 : Math.max(0, Math.min(1, Number(d.progress) || 0));
  }

  let watcher = null;
  let stalledWatch = null; // a video whose following stopped on a 401

  function stopWatch() {
    if (!watcher) return;
    watcher.done = true;
    if (watcher.es) watcher.es.close();
    clearTimeout(watcher.timer);
    watcher = null;
  }

  // Follows one video: Server-Sent Events, or polling once a second if they
  // fail. EventSource cannot send a header, so with a stored API token it
  // is always polling GET /videos/{id} (with the header).
  function watch(id) {
    stopWatch();
    stalledWatch = null;
    const w = (watcher = { id, es: null, timer: 0, done: false });
    const onData = (d) => {
      if (w.done || !d) return;
      statusChanged(id, d);
      if (!ACTIVE.includes(d.status)) stopWatch();
    };
    const poll = () => {
      if (w.done) return;
      api('GET', '/videos/' + enc(id))
        .then(onData, (e) => {
          if (e.status === 404) gone(id);
          else if (e.status === 401) { // resumed by tokenChanged()
            if (watcher === w) stopWatch();
            w.done = true;
            stalledWatch = id;
          }
        })
        .then(() => { if (!w.done) w.timer = setTimeout(poll, 1000); });
    };
    if (getToken() || !window.EventSource) { poll(); return; }
    const es = (w.es = new EventSource('/videos/' + enc(id) + '/events'));
    EVENTS.forEach((name) => es.addEventListener(name, (e) => {
      try { onData(JSON.parse(e.data)); } catch (_) { /* ignore a malformed event */ }
    }));
    es.addEventListener('deleted', () => gone(id));
    es.onerror = () => { if (!w.done) { es.close(); w.es = null; poll(); } };
  }

  function gone(id) {
    if (watcher && watcher.id === id) stopWatch();
    if (player.id === id) unloadPlayer();
    el.status.textContent = 'deleted';
    el.procProg.value = 0;
    refreshLibrary();
  }

  function statusChanged(id, d) {
    renderStatus(d);
    if (player.id !== id) return;
    player.status = d.status;
    // A record from GET /videos/{id} carries a freshly signed playback_url.
    const url = d.playback_url || player.url;
    if (d.status === 'ready') {
      const poster = siblingUrl(url, 'poster.jpg');
      if (poster) el.player.poster = poster;
      refreshLibrary();
      if (player.waiting) loadVideo(id, { status: 'ready', url });
      // Events carry no storyboard_url, download_url, captions…: the record does.
      if (d.playback_url) applyRecord(d);
      else api('GET', '/videos/' + enc(id)).then(applyRecord, () => { /* the library's copy will do */ });
    } else if (d.status === 'failed') {
      destroyHls();
      showError('Processing failed: ' + ((d.error && d.error.message) || 'unknown error'));
      refreshLibrary();
    } else if (player.waiting && (d.status === 'processing' || d.status === 'receiving') && Date.now() - player.attachedAt > 5000) {
      loadVideo(id, { status: d.status, url });
    }
  }

  // ----------------------------------------------------------------- player

  // record: the latest full record of the video (captions, audio_tracks,
  // storyboard_url, download_url); tracksKnown: hls.js has loaded a level,
  // so its audio and subtitle tracks are known; reloadedFor: see checkRenditions.
  const player = { hls: null, id: null, url: '', status: null, waiting: false, attachedAt: 0,
    native: false, record: null, tracksKnown: false, reloadedFor: '' };

  // Playlist retries: an EVENT playlist with no segment yet is answered 200
  // and empty, so keep asking for it (not forever); real errors retry 3 times.
  const playlistLoadPolicy = {
    default: {
      maxTimeToFirstByteMs: 10000, maxLoadTimeMs: 20000,
      timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
      errorRetry: {
        maxNumRetry: 120, retryDelayMs: 1000, maxRetryDelayMs: 2000,
        shouldRetry: (cfg, count, isTimeout, resp, retry) =>
          retry && (count < 3 || !!(resp && resp.code >= 200 && resp.code < 300)),
      },
    },
  };

  function destroyHls() {
    if (player.hls) player.hls.destroy();
    player.hls = window.hlsdPlayer.hls = null;
  }

  function unloadPlayer() {
    destroyHls();
    el.player.removeAttribute('src');
    el.player.removeAttribute('poster');
    el.player.load();
    Object.assign(player, { id: null, url: '', waiting: false, native: false, record: null, reloadedFor: '' });
    resetQuality();
    resetTracks();
    resetExtras();
    setPlaybackUrl('');
    el.nowPlaying.textContent = 'Nothing loaded. Upload a video or pick one from the library.';
  }

  // info: url (the playback URL as given; else the current one), title,
  // status, refreshed (a fresh URL after a 403), startAt, autoplay.
  function loadVideo(id, info) {
    info = info || {};
    destroyHls();
    const v = el.player;
    if (v.getAttribute('src')) { v.removeAttribute('src'); v.load(); }
    const url = info.url || (id === player.id && player.url) || legacyUrl(id);
    v.poster = info.status === 'ready' ? siblingUrl(url, 'poster.jpg') : '';
    if (id !== player.id) {
      resetExtras();
      Object.assign(player, { record: null, reloadedFor: '' });
    }
    Object.assign(player, { id, url, status: info.status || null, waiting: false, attachedAt: Date.now(), native: false, tracksKnown: false });
    if (info.title) el.nowPlaying.textContent = 'Now playing: ' + info.title;
    resetQuality();
    resetTracks();
    const src = localUrl(url);
    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      const startPosition = info.startAt > 0 ? info.startAt : 0;
      // maxLiveSyncPlaybackRate: a live behind its target latency catches up.
      const hls = new Hls({ enableWorker: true, startPosition, playlistLoadPolicy, maxLiveSyncPlaybackRate: 1.5 });
      let netRetried = false, mediaRecovered = false, denied = false, fragLoaded = false;
      player.hls = window.hlsdPlayer.hls = hls;
      hls.on(Hls.Events.ERROR, (_evt, data) => {
        window.hlsErrors.push({ type: data.type, details: data.details, fatal: !!data.fatal });
        if (window.hlsErrors.length > MAX_ERRORS) window.hlsErrors.shift();
        if (player.hls !== hls) return;
        // 403 on /play: the playback token expired or is wrong (--signing-key).
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR && data.response && data.response.code === 403) {
          if (denied) return;
          denied = true;
          setTimeout(() => { // not from inside hls.js's own event dispatch
            if (player.hls !== hls) return;
            const resume = { startAt: v.currentTime || 0, autoplay: !v.paused };
            destroyHls();
            // One retry per URL; a refreshed URL that played a while may expire too.
            playbackDenied(id, Object.assign({}, info, resume), !info.refreshed || fragLoaded);
          }, 0);
          return;
        }
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR && !netRetried) {
          netRetried = true;
          hls.startLoad();
        } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !mediaRecovered) {
          mediaRecovered = true;
          hls.recoverMediaError();
        } else {
          destroyHls();
          if (ACTIVE.includes(player.status)) player.waiting = true; // retried on the next event
          else showError('Playback failed (' + data.details + ').');
        }
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        fillQuality(hls);
        syncHlsTracks(hls);
        if (info.autoplay) v.play().catch(() => { /* refused: the user presses play */ });
      });
      const tracksUpdated = () => {
        syncHlsTracks(hls);
        setTimeout(() => applyTrackPrefs(hls), 0); // not from inside hls.js's own event dispatch
      };
      hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, tracksUpdated);
      hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, tracksUpdated);
      hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, () => syncHlsTracks(hls));
      hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, () => syncHlsTracks(hls));
      hls.on(Hls.Events.LEVEL_LOADED, () => {
        if (player.hls !== hls || player.tracksKnown) return;
        player.tracksKnown = true;
        syncHlsTracks(hls);
        setTimeout(checkRenditions, 0);
      });
      hls.on(Hls.Events.FRAG_LOADED, () => { fragLoaded = true; });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_evt, data) => showAutoLevel(hls, data.level));
      hls.attachMedia(v);
      hls.loadSource(src);
    } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
      player.native = true; // its tracks: video.audioTracks / video.textTracks
      if (info.startAt > 0) v.addEventListener('loadedmetadata', () => { v.currentTime = info.startAt; }, { once: true });
      if (info.autoplay) v.addEventListener('canplay', () => { v.play().catch(() => { /* refused */ }); }, { once: true });
      v.src = src; // native HLS (Safari, iOS)
    } else {
      showError('This browser cannot play HLS video.');
    }
  }

  // A 403 on /play: with a stored API token, ask for a fresh signed URL
  // (POST /videos/{id}/playback-token) and try once more; else say so.
  async function playbackDenied(id, info, mayRefresh) {
    if (mayRefresh && getToken()) {
      try {
        const r = await api('POST', '/videos/' + enc(id) + '/playback-token');
        if (player.id !== id || player.hls) return; // something else was loaded meanwhile
        if (r && r.playback_url) {
          setPlaybackUrl(r.playback_url);
          loadVideo(id, Object.assign({}, info, { url: r.playback_url, refreshed: true }));
          return;
        }
      } catch (e) {
        if (e.status === 401) return; // needToken() said what to do
      }
      if (player.id !== id || player.hls) return;
    }
    showError('This playback link has expired or is invalid. Pick the video in the library for a fresh one.');
  }

  // A master with codec groups (AV1, HEVC beside H.264) names the codec
  // of each level in the menu.
  const CODEC_NAMES = { avc1: 'H.264', avc3: 'H.264', av01: 'AV1', hvc1: 'HEVC', hev1: 'HEVC' };
  const codecName = (l) => CODEC_NAMES[(l.videoCodec || '').slice(0, 4)] || '';
  let showCodecs = false;

  function levelLabel(l, dupHeight) {
    const kbps = l.bitrate ? Math.round(l.bitrate / 1000) + ' kbps' : '';
    const codec = showCodecs && codecName(l) ? ' ' + codecName(l) : '';
    if (!l.height) return (kbps || 'level') + codec;
    return l.height + 'p' + codec + (dupHeight && kbps ? ' (' + kbps + ')' : '');
  }

  function resetQuality() {
    el.quality.replaceChildren(new Option('Auto', '-1'));
    el.quality.disabled = el.qualityField.hidden = true;
  }

  function fillQuality(hls) {
    resetQuality();
    const levels = hls.levels || [];
    showCodecs = new Set(levels.map(codecName)).size > 1;
    const heights = levels.map((l) => l.height + ' ' + codecName(l));
    levels.forEach((l, i) => {
      const key = l.height + ' ' + codecName(l);
      const dup = heights.indexOf(key) !== heights.lastIndexOf(key);
      el.quality.appendChild(new Option(levelLabel(l, dup), String(i)));
    });
    el.quality.value = String(hls.manualLevel >= 0 ? hls.manualLevel : -1);
    el.quality.disabled = el.qualityField.hidden = levels.length < 2;
  }

  function showAutoLevel(hls, level) {
    const auto = el.quality.options[0];
    const l = hls.levels && hls.levels[level];
    if (auto) auto.textContent = hls.autoLevelEnabled && l ? 'Auto (' + levelLabel(l, false) + ')' : 'Auto';
  }

  el.quality.addEventListener('change', () => {
    if (player.hls) player.hls.currentLevel = Number(el.quality.value);
  });

  // ------------------------------------------ audio and caption tracks

  // Read by automated tests: what the two menus offer, what is chosen, and
  // how many storyboard cues were parsed.
  const tracks = (window.hlsdTracks = { audio: [], subtitles: [], audioTrack: -1, subtitleTrack: -1, storyboardCues: 0 });
  // The viewer's choices, kept when the same video is loaded again (a
  // reload for new renditions): "lang|name", '' for captions off, null for none.
  const prefs = { id: null, audio: null, subs: null };
  const trackKey = (t) => (t.lang || '') + '|' + (t.name || '');

  function trackLabel(t, i, what) {
    const name = t.name || t.lang || what + ' ' + (i + 1);
    const ch = Number(t.channels) || 0;
    return ch > 2 ? name + ' (' + (ch === 6 ? '5.1' : ch === 8 ? '7.1' : ch + ' ch') + ')' : name;
  }

  function setAudioMenu(list, current) {
    tracks.audio = list;
    tracks.audioTrack = current;
    el.audioSel.replaceChildren(...list.map((t, i) => new Option(trackLabel(t, i, 'Audio'), String(i))));
    if (current >= 0 && current < list.length) el.audioSel.value = String(current);
    el.audioSel.hidden = el.audioField.hidden = list.length < 2;
  }

  function setCaptionMenu(list, current) {
    tracks.subtitles = list;
    tracks.subtitleTrack = current >= 0 && current < list.length ? current : -1;
    el.captionSel.replaceChildren(new Option('Off', '-1'), ...list.map((t, i) => new Option(trackLabel(t, i, 'Captions'), String(i))));
    el.captionSel.value = String(tracks.subtitleTrack);
    el.captionSel.hidden = el.captionField.hidden = !list.length;
  }

  function resetTracks() {
    setAudioMenu([], -1);
    setCaptionMenu([], -1);
  }

  function syncHlsTracks(hls) {
    if (player.hls !== hls) return;
    const audio = (hls.audioTracks || []).map((t) => ({
      id: t.id, name: t.name || '', lang: t.lang || '', channels: t.channels || '', default: !!t.default,
    }));
    const subs = (hls.subtitleTracks || []).map((t) => ({
      id: t.id, name: t.name || '', lang: t.lang || '', default: !!t.default, forced: !!t.forced,
    }));
    setAudioMenu(audio, hls.audioTrack);
    setCaptionMenu(subs, hls.subtitleDisplay === false ? -1 : hls.subtitleTrack);
  }

  function applyTrackPrefs(hls) {
    if (player.hls !== hls || prefs.id !== player.id) return;
    const audio = hls.audioTracks || [], subs = hls.subtitleTracks || [];
    const a = prefs.audio ? audio.findIndex((t) => trackKey(t) === prefs.audio) : -1;
    if (a >= 0 && a !== hls.audioTrack) hls.audioTrack = a;
    if (prefs.subs === '') {
      if (hls.subtitleTrack !== -1) hls.subtitleTrack = -1;
    } else if (prefs.subs) {
      const i = subs.findIndex((t) => trackKey(t) === prefs.subs);
      if (i >= 0 && (i !== hls.subtitleTrack || !hls.subtitleDisplay)) {
        hls.subtitleDisplay = true;
        hls.subtitleTrack = i;
      }
    }
  }

  // Native HLS (Safari): best effort with video.audioTracks / video.textTracks.
  const nativeText = () => Array.from(el.player.textTracks || []).filter((t) => t.kind === 'subtitles' || t.kind === 'captions');

  function syncNativeTracks() {
    if (player.hls || !player.native) return;
    const audio = Array.from(el.player.audioTracks || []);
    const subs = nativeText();
    setAudioMenu(audio.map((t) => ({ id: t.id, name: t.label || '', lang: t.language || '', channels: '', default: false })),
      audio.findIndex((t) => t.enabled));
    setCaptionMenu(subs.map((t) => ({ id: t.id, name: t.label || '', lang: t.language || '', default: false, forced: false })),
      subs.findIndex((t) => t.mode === 'showing'));
  }

  [el.player.audioTracks, el.player.textTracks].forEach((list) => {
    if (list && list.addEventListener) ['addtrack', 'removetrack', 'change'].forEach((n) => list.addEventListener(n, syncNativeTracks));
  });

  el.audioSel.addEventListener('change', () => {
    const i = Number(el.audioSel.value);
    if (tracks.audio[i]) Object.assign(prefs, { id: player.id, audio: trackKey(tracks.audio[i]) });
    if (player.hls) player.hls.audioTrack = i;
    else Array.from(el.player.audioTracks || []).forEach((t, j) => { t.enabled = j === i; });
  });

  el.captionSel.addEventListener('change', () => {
    const i = Number(el.captionSel.value);
    Object.assign(prefs, { id: player.id, subs: i >= 0 && tracks.subtitles[i] ? trackKey(tracks.subtitles[i]) : '' });
    const hls = player.hls;
    if (hls) {
      if (i >= 0) {
        hls.subtitleDisplay = true;
        hls.subtitleTrack = i;
      } else {
        hls.subtitleTrack = -1;
      }
    } else {
      nativeText().forEach((t, j) => { t.mode = j === i ? 'showing' : 'disabled'; });
    }
    tracks.subtitleTrack = i;
  });

  // ------------------------------- the record: storyboard, download, captions

  // What the full record of the video being played adds (GET /videos/{id}
  // or the library): storyboard_url, download_url, captions, audio_tracks.
  function applyRecord(rec) {
    if (!rec || !rec.id || rec.id !== player.id) return;
    player.record = rec;
    const ready = rec.status === 'ready';
    setDownload(ready ? rec : null);
    if (ready && rec.storyboard_url) loadStoryboard(rec.id, rec.storyboard_url);
    el.capForm.hidden = !ready;
    checkRenditions();
  }

  function resetExtras() {
    setDownload(null);
    resetStoryboard();
    el.capForm.hidden = true;
    el.capStatus.textContent = '';
  }

  // The master playlist hls.js read may predate renditions the record lists
  // (captions added later, a master published before processing ended):
  // load it again once, keeping the position.
  function checkRenditions() {
    const hls = player.hls, rec = player.record;
    if (!hls || !rec || rec.id !== player.id || rec.status !== 'ready' || !player.tracksKnown) return;
    const audio = Array.isArray(rec.audio_tracks) ? rec.audio_tracks.length : 0;
    const subs = Array.isArray(rec.captions) ? rec.captions.length : 0;
    const sig = rec.id + ':' + audio + ':' + subs;
    const missing = (audio >= 2 && (hls.audioTracks || []).length < audio) || (hls.subtitleTracks || []).length < subs;
    if (!missing || player.reloadedFor === sig) return;
    player.reloadedFor = sig;
    reloadPlayer();
  }

  function reloadPlayer() {
    const v = el.player;
    if (!player.id) return;
    // A fresh copy of the master (it changed: captions, tracks), past any cache.
    const fresh = player.url ? player.url.replace(/([?&])_=\d+(&|$)/, '$1').replace(/[?&]$/, '') : player.url;
    const url = fresh ? fresh + (fresh.includes('?') ? '&' : '?') + '_=' + Date.now() : fresh;
    loadVideo(player.id, { status: player.status, url, startAt: v.currentTime || 0, autoplay: !v.paused });
  }

  function setDownload(rec) {
    const href = rec && rec.download_url ? localUrl(rec.download_url) : '';
    el.download.hidden = !href;
    if (!href) { el.download.removeAttribute('href'); return; }
    el.download.href = href;
    const name = titleOf(rec).replace(/[\\/:*?"<>|\u0000-\u001f]+/g, '_').replace(/\.[A-Za-z0-9]{1,5}$/, '').trim() || 'video';
    el.download.setAttribute('download', name.slice(0, 100) + '.mp4');
  }

  // "Add captions": PUT /videos/{id}/captions/{lang} with the file as the body.
  async function addCaptions(ev) {
    ev.preventDefault();
    const id = player.id;
    const f = el.capFile.files && el.capFile.files[0];
    const lang = el.capLang.value.trim();
    if (!id || !f) { el.capStatus.textContent = 'Choose a .vtt or .srt file.'; return; }
    if (!/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(lang)) { el.capStatus.textContent = 'Language: a code such as en or pt-BR.'; return; }
    el.capBtn.disabled = true;
    el.capStatus.textContent = 'Uploading captions…';
    try {
      const type = /\.srt$/i.test(f.name) ? 'application/x-subrip' : 'text/vtt';
      const res = await fetch('/videos/' + enc(id) + '/captions/' + enc(lang), { method: 'PUT', headers: withAuth({ 'Content-Type': type }), body: f });
      const text = res.status === 204 ? '' : await res.text();
      if (res.status === 401) needToken();
      if (!res.ok) throw new Error(errorMessage(res.status, text));
      el.capStatus.textContent = 'Captions added.';
      el.capFile.value = '';
      if (player.id !== id) return;
      // The answer is the record (201 added, 200 replaced); else ask for it.
      let rec = null;
      try { rec = JSON.parse(text); } catch (_) { rec = null; }
      if (!rec || rec.id !== id) rec = await api('GET', '/videos/' + enc(id)).catch(() => null);
      if (player.id !== id) return;
      if (rec) player.record = rec;
      player.reloadedFor = rec ? rec.id + ':' + ((rec.audio_tracks || []).length) + ':' + ((rec.captions || []).length) : '';
      reloadPlayer(); // the master playlist now lists them
      if (rec) applyRecord(rec);
    } catch (e) {
      el.capStatus.textContent = 'Could not add captions: ' + e.message;
    } finally {
      el.capBtn.disabled = false;
    }
  }

  // --------------------------------------------- seek bar and storyboard

  // storyboard.vtt: cues "start --> end" whose text is an image URL
  // (relative to the .vtt) with a #xywh=x,y,w,h tile of a sprite sheet.
  const board = { key: '', loading: '', cues: [], failures: 0 };

  function resetStoryboard() {
    Object.assign(board, { key: '', loading: '', cues: [], failures: 0 });
    tracks.storyboardCues = 0;
    hidePreview();
  }

  function vttTime(s) {
    const m = /^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(String(s).trim());
    return m ? Number(m[1] || 0) * 3600 + Number(m[2]) * 60 + Number(m[3]) : NaN;
  }

  function parseStoryboard(text, base) {
    const baseUrl = new URL(base, location.href);
    const token = baseUrl.searchParams.get('token');
    const cues = [];
    text.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n/).forEach((block) => {
      const lines = block.split('\n').map((l) => l.trim()).filter(Boolean);
      const i = lines.findIndex((l) => l.includes('-->'));
      if (i < 0 || !lines[i + 1]) return;
      const times = lines[i].split('-->');
      const start = vttTime(times[0]), end = vttTime(times[1].trim().split(/\s+/)[0]);
      if (!(end > start)) return;
      const ref = lines[i + 1], hash = ref.indexOf('#');
      let url;
      try { url = new URL(localUrl(new URL(hash >= 0 ? ref.slice(0, hash) : ref, baseUrl).href)); } catch (_) { return; }
      // A signed .vtt whose tiles carry no token: lend them its own.
      if (token && !url.searchParams.has('token')) url.searchParams.set('token', token);
      const xywh = /xywh=(?:pixel:)?(\d+),(\d+),(\d+),(\d+)/.exec(hash >= 0 ? ref.slice(hash) : '');
      const n = xywh ? xywh.slice(1).map(Number) : null;
      cues.push({ start, end, url: url.href, x: n ? n[0] : 0, y: n ? n[1] : 0, w: n ? n[2] : 0, h: n ? n[3] : 0 });
    });
    return cues.sort((a, b) => a.start - b.start);
  }

  async function loadStoryboard(id, storyboardUrl) {
    const src = localUrl(storyboardUrl);
    if (!src) return;
    const key = id + ' ' + new URL(src).pathname;
    if ((board.key === key && board.cues.length) || board.loading === key) return;
    if (board.key !== key) Object.assign(board, { key, cues: [], failures: 0 });
    if (board.failures >= 3) return;
    board.loading = key;
    try {
      const res = await fetch(src, { credentials: 'same-origin' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const cues = parseStoryboard(await res.text(), res.url || src);
      if (board.key !== key || player.id !== id) return;
      board.cues = cues;
      tracks.storyboardCues = cues.length;
      // Fetch the sprite sheets now, so the first hover shows a picture.
      Array.from(new Set(cues.map((c) => c.url))).slice(0, 50).forEach((u) => { new Image().src = u; });
    } catch (_) {
      if (board.key === key) board.failures++; // tried again with the next record (3 times)
    } finally {
      if (board.loading === key) board.loading = '';
    }
  }

  function cueAt(t) {
    const cues = board.cues;
    let found = null;
    for (let i = 0; i < cues.length && cues[i].start <= t; i++) {
      found = cues[i];
      if (t < cues[i].end) break;
    }
    return found;
  }

  function seekDuration() {
    const v = el.player;
    if (isFinite(v.duration) && v.duration > 0) return v.duration;
    return v.seekable.length ? v.seekable.end(v.seekable.length - 1) : 0;
  }

  function updateSeek() {
    const v = el.player, d = player.id ? seekDuration() : 0;
    el.seekWrap.hidden = !(d > 0);
    if (!(d > 0)) { hidePreview(); return; }
    let buffered = 0;
    for (let i = 0; i < v.buffered.length; i++) {
      if (v.buffered.start(i) <= v.currentTime + 0.5) buffered = Math.max(buffered, v.buffered.end(i));
    }
    el.seekFill.style.width = (Math.min(1, v.currentTime / d) * 100).toFixed(3) + '%';
    el.seekBuffered.style.width = (Math.min(1, buffered / d) * 100).toFixed(3) + '%';
    el.seekBar.setAttribute('aria-valuemax', String(Math.round(d)));
    el.seekBar.setAttribute('aria-valuenow', String(Math.round(v.currentTime)));
    el.seekBar.setAttribute('aria-valuetext', fmtDuration(v.currentTime) + ' of ' + fmtDuration(d));
  }

  const seekFraction = (clientX) => {
    const r = el.seekBar.getBoundingClientRect();
    return r.width > 0 ? Math.max(0, Math.min(1, (clientX - r.left) / r.width)) : 0;
  };

  function seekTo(t) {
    const d = seekDuration();
    if (!(d > 0)) return;
    el.player.currentTime = Math.max(0, Math.min(d - 0.05, t));
    updateSeek();
  }

  function showPreview(clientX) {
    const d = seekDuration();
    if (!(d > 0)) { hidePreview(); return; }
    const frac = seekFraction(clientX);
    const t = frac * d;
    const c = cueAt(t);
    const p = el.preview, s = p.style;
    if (c) {
      s.backgroundImage = 'url("' + c.url.replace(/["\\]/g, (ch) => encodeURIComponent(ch)) + '")';
      if (c.w > 0 && c.h > 0) {
        Object.assign(s, { width: c.w + 'px', height: c.h + 'px', backgroundSize: 'auto', backgroundPosition: -c.x + 'px ' + -c.y + 'px' });
      } else { // the whole image
        Object.assign(s, { width: '160px', height: '90px', backgroundSize: 'cover', backgroundPosition: 'center' });
      }
    } else {
      Object.assign(s, { backgroundImage: 'none', width: '', height: '' });
    }
    el.previewTime.textContent = fmtDuration(t);
    p.hidden = false;
    const barWidth = el.seekBar.getBoundingClientRect().width;
    s.left = Math.max(0, Math.min(barWidth - p.offsetWidth, frac * barWidth - p.offsetWidth / 2)) + 'px';
  }

  function hidePreview() { el.preview.hidden = true; }

  ['timeupdate', 'durationchange', 'progress', 'loadedmetadata', 'seeking', 'emptied'].forEach((n) => el.player.addEventListener(n, updateSeek));
  el.seekBar.addEventListener('mousemove', (e) => showPreview(e.clientX));
  el.seekBar.addEventListener('mouseleave', hidePreview);
  el.seekBar.addEventListener('click', (e) => seekTo(seekFraction(e.clientX) * seekDuration()));
  el.seekBar.addEventListener('keydown', (e) => {
    const v = el.player, d = seekDuration();
    const to = { ArrowLeft: v.currentTime - 5, ArrowDown: v.currentTime - 5, ArrowRight: v.currentTime + 5,
      ArrowUp: v.currentTime + 5, PageDown: v.currentTime - d / 10, PageUp: v.currentTime + d / 10, Home: 0, End: d }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    seekTo(to);
  });

  // ------------------------------------------------------- URL, copy, curl

  function setPlaybackUrl(url) {
    el.url.value = url;
    el.copyBtn.disabled = !url;
    el.copyStatus.textContent = '';
  }

  async function copyUrl() {
    const text = el.url.value;
    if (!text) return;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        el.copyStatus.textContent = 'Copied to the clipboard.';
        return;
      }
    } catch (_) { /* fall back to selecting the text */ }
    el.url.focus();
    el.url.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    el.copyStatus.textContent = ok ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (⌘C on a Mac) to copy.';
  }

  // ---------------------------------------------------------------- library

  let libBusy = false, libAgain = false, libSig = '', records = new Map();

  async function refreshLibrary() {
    if (libBusy) { libAgain = true; return; }
    libBusy = true;
    try {
      const data = await api('GET', '/videos?limit=50');
      const vids = (data && data.videos) || [];
      records = new Map(vids.map((v) => [v.id, v]));
      if (player.id && records.has(player.id)) applyRecord(records.get(player.id));
      if (authRequired && !getToken()) { authRequired = false; updateCurl(); } // the server no longer asks
      const sig = JSON.stringify(vids.map((v) => [v.id, v.status, pct(v.progress), v.title,
        v.source && v.source.duration, v.storage_bytes]));
      if (sig !== libSig) { libSig = sig; renderLibrary(vids); }
      const n = vids.length;
      el.libStatus.textContent = !n ? 'No videos yet.'
        : data.next_cursor ? 'Showing the newest ' + n + ' videos.'
          : n + (n === 1 ? ' video.' : ' videos.');
    } catch (e) {
      el.libStatus.textContent = e.status === 401 ? 'The library needs an API token.'
        : 'Could not load the library: ' + e.message;
    } finally {
      libBusy = false;
      if (libAgain) { libAgain = false; refreshLibrary(); }
    }
  }

  function make(tag, cls, text) {
    const n = Object.assign(document.createElement(tag), cls ? { className: cls } : {});
    if (text != null) n.textContent = text;
    return n;
  }

  function itemFor(v) {
    const title = titleOf(v);
    const li = make('li', 'item');
    li.dataset.id = v.id;
    const thumb = make('div', 'thumb');
    const src = v.status === 'ready' ? siblingUrl(v.playback_url || legacyUrl(v.id), 'thumb.jpg') : '';
    if (src) {
      const img = Object.assign(make('img'), { src, alt: title, width: 160, height: 90, loading: 'lazy' });
      // A signed URL may have expired before a lazy image loads: retry once
      // with the token of the latest library answer.
      img.addEventListener('error', () => {
        const rec = records.get(v.id);
        const fresh = rec && siblingUrl(rec.playback_url, 'thumb.jpg');
        if (fresh && fresh !== img.src && !img.dataset.retried) { img.dataset.retried = '1'; img.src = fresh; }
      });
      thumb.appendChild(img);
    } else {
      thumb.appendChild(make('span', 'thumb-label', v.status));
    }
    const info = make('div', 'info');
    const h = info.appendChild(make('h3', 'title', title));
    if (v.status === 'live') h.appendChild(make('span', 'badge badge-live', 'LIVE'));
    const status = v.status === 'processing' ? 'processing ' + pct(v.progress) + '%' : v.status;
    const meta = [fmtDuration(v.source && v.source.duration), status];
    if (v.storage_bytes) meta.push(fmtBytes(v.storage_bytes));
    if (v.created_at) meta.push(new Date(v.created_at * 1000).toLocaleString());
    info.appendChild(make('p', 'meta status-' + v.status, meta.join(' · ')));
    if (v.status === 'failed' && v.error) info.appendChild(make('p', 'meta fail', v.error.message || v.error.code));
    const actions = make('div', 'actions');
    [['play', 'Play', 'btn'], ['rename', 'Rename', 'btn'], ['delete', 'Delete', 'btn danger']].forEach((a) => {
      const b = make('button', a[2], a[1]);
      b.type = 'button';
      b.dataset.action = a[0];
      b.setAttribute('aria-label', a[1] + ' ' + title);
      actions.appendChild(b);
    });
    li.append(thumb, info, actions);
    return li;
  }

  function renderLibrary(vids) {
    // Keep keyboard focus on the same button across re-renders.
    const a = document.activeElement;
    const li = a && a.closest && a.closest('#library li');
    const keep = li && a.dataset.action ? [li.dataset.id, a.dataset.action] : null;
    const frag = document.createDocumentFragment();
    vids.forEach((v) => frag.appendChild(itemFor(v)));
    el.library.textContent = '';
    el.library.appendChild(frag);
    if (keep) {
      const item = Array.from(el.library.children).find((n) => n.dataset.id === keep[0]);
      const btn = item && item.querySelector('[data-action="' + keep[1] + '"]');
      if (btn) btn.focus();
    }
  }

  function playFromLibrary(id) {
    const rec = records.get(id) || { id };
    showError('');
    if (rec.status) renderStatus(rec);
    if (rec.status === 'failed') return showError('This video failed to process: ' + ((rec.error && rec.error.message) || 'unknown error'));
    const url = rec.playback_url || legacyUrl(id);
    setPlaybackUrl(url);
    loadVideo(id, { title: titleOf(rec), status: rec.status, url });
    applyRecord(rec);
    watch(id);
    el.player.scrollIntoView({ behavior: 'smooth', block: 'center' });
    el.player.focus({ preventScroll: true });
  }

  async function deleteVideo(id) {
    const title = titleOf(records.get(id) || { id });
    if (!window.confirm('Delete "' + title + '"? This cannot be undone.')) return;
    try {
      await api('DELETE', '/videos/' + enc(id));
      el.refreshBtn.focus(); // the focused button is about to disappear
      if (player.id === id || (watcher && watcher.id === id)) gone(id);
    } catch (e) {
      if (e.status !== 404 && e.status !== 401) showError('Delete failed: ' + e.message);
    }
    refreshLibrary();
  }

  async function renameVideo(id) {
    const old = titleOf(records.get(id) || { id });
    const title = window.prompt('New title', old);
    if (title == null || !title.trim() || title.trim() === old) return;
    try {
      await api('PATCH', '/videos/' + enc(id), { title: title.trim() });
      if (player.id === id) el.nowPlaying.textContent = 'Now playing: ' + title.trim();
    } catch (e) {
      if (e.status !== 401) showError('Rename failed: ' + e.message);
    }
    refreshLibrary();
  }

  el.library.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action]');
    const li = b && b.closest('li[data-id]');
    const fn = li && { play: playFromLibrary, delete: deleteVideo, rename: renameVideo }[b.dataset.action];
    if (fn) fn(li.dataset.id);
  });

  // ------------------------------------------------------------------- live

  // POST /lives: shows where to push (RTMP server and key, SRT URL) and
  // puts the live in the library (its player follows it while it arrives).
  async function createLive() {
    el.liveStatus.textContent = 'creating…';
    try {
      const l = await api('POST', '/lives', {});
      el.liveRtmp.textContent = l.rtmp_server || '(RTMP is off: --rtmp-listen)';
      el.liveKey.textContent = l.stream_key;
      el.liveSrt.textContent = l.srt_url || '(SRT is off: --srt-listen)';
      el.liveFfmpeg.textContent = l.rtmp_url
        ? 'ffmpeg -re -i input.mp4 -c:v libx264 -c:a aac -f flv "' + l.rtmp_url + '"'
        : 'ffmpeg -re -i input.mp4 -c:v libx264 -c:a aac -f mpegts "' + l.srt_url + '"';
      el.liveInfo.hidden = false;
      el.liveStatus.textContent = 'live ' + l.id + ' awaits its publisher';
      window.hlsdLive = l;
      refreshLibrary();
    } catch (e) {
      el.liveStatus.textContent = '';
      if (e.status !== 401) showError('Go live failed: ' + e.message);
    }
  }

  // ------------------------------------------------------------------ start

  el.form.addEventListener('submit', upload);
  el.pauseBtn.addEventListener('click', pauseUpload);
  el.resumeBtn.addEventListener('click', resumeUpload);
  el.copyBtn.addEventListener('click', copyUrl);
  el.refreshBtn.addEventListener('click', refreshLibrary);
  el.tokenSave.addEventListener('click', saveToken);
  el.tokenInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); saveToken(); } });
  el.tokenClear.addEventListener('click', forgetToken);
  el.tokenToggle.addEventListener('click', () => showTokenSection(true));
  el.capForm.addEventListener('submit', addCaptions);
  el.liveBtn.addEventListener('click', createLive);
  el.tokenToggle.hidden = !getToken();
  updateCurl();
  setPlaybackUrl('');
  resetQuality();
  resetTracks();
  refreshLibrary();
  unfinishedHint();
  setInterval(() => { if (!document.hidden) refreshLibrary(); }, 10000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshLibrary(); });
})();
