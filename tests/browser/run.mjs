#!/usr/bin/env node
// Headless-browser test driver for hlsd (Debian's /usr/bin/chromium via playwright-core).
//
//   node tests/browser/run.mjs <scenario> <baseUrl> <clipPath> <screenshotPath>
//
// Scenarios:
//   ui        hlsd's own web page: upload through #file/#upload-btn (tus), wait
//             for "ready", play with hls.js until currentTime > 5.
//   tus-reload  hlsd's page again, with Chromium's upload throttled (about 20 s
//             for the clip; HLSD_TUS_UPLOAD_BPS overrides): once the tus upload is
//             partly done, Pause then Resume, reload the page, choose the same
//             file again: the upload must resume (same video id, HEAD answered
//             an Upload-Offset > 0); then unthrottled, wait for "ready" and play
//             as "ui" does. Adds idBefore, idAfter, resumed, offsetAtStart,
//             pauseResume to the JSON.
//   tracks    hlsd's page with a clip of 2 audio languages and a subtitle track:
//             upload as "ui" does, wait for "ready", play; hls.js must list >= 2
//             audio and >= 1 subtitle tracks; switch audio with #audio-track
//             (AUDIO_TRACK_SWITCHED, playback goes on), captions on with
//             #caption-track, seek before HLSD_EXPECT_CUE="<text>|<seconds>" and
//             check the cue becomes active on time (start within 0.5 s); the
//             storyboard (window.hlsdTracks.storyboardCues > 0, a tile that loads
//             in #storyboard-preview when hovering #seek-bar at 50 %); reports
//             #download-link (required with HLSD_EXPECT_DOWNLOAD=1).
//   tutorial  the original Node.js tutorial's page (fetch + FormData, then
//             video.js) served from another origin (http://tutorial.local/,
//             answered by page.route), uploading to and playing from hlsd.
//   embed     a page of another origin (http://tutorial.local/, answered by
//             page.route) with two <iframe>s under baseUrl: HLSD_EMBED_PATH (an
//             /embed/{id} URL with its token and options) must play in its frame
//             (currentTime > HLSD_EMBED_START + 1, the first "playing" at or after
//             HLSD_EMBED_START - 0.5), with a captions menu listing
//             HLSD_EMBED_CAPTIONS and showing it; HLSD_EMBED_DENIED_PATH (the same
//             page without a token) is answered 403. Adds firstPlaying, captions,
//             subtitleTracks, deniedStatus to the JSON.
//
// Prints exactly ONE line of JSON on stdout at the end: {"ok":true,...} or
// {"ok":false,"error":"...",...}; exits 0 only when ok. Progress goes to stderr.
// A hard overall timeout (150 s; 300 s for "tracks") ends the run with a JSON
// error and exit 1.

import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_PATH, CHROMIUM_ARGS, TUTORIAL_EXTRA_ARGS } from './browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// 150 s (300 s for "tracks", which waits for more); HLSD_BROWSER_TIMEOUT_MS may
// shorten it (to test the timeout path itself).
const DEFAULT_TIMEOUT_MS = process.argv[2] === 'tracks' ? 300_000 : 150_000;
const HARD_TIMEOUT_MS = Math.min(DEFAULT_TIMEOUT_MS, Number(process.env.HLSD_BROWSER_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS);
const TUTORIAL_ORIGIN = 'http://tutorial.local';
const T0 = Date.now();

const log = (...a) => process.stderr.write(`[run.mjs +${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Result reporting: exactly one JSON line, whatever happens.

let finished = false;
let cleanup = async () => {};
const diag = {
  consoleErrors: [], // console.error / console messages of type "error" (do not fail)
  pageErrors: [], // uncaught exceptions ("pageerror": these fail)
  failedRequests: [], // requestfailed events (net errors, CORS blocks)
  httpErrors: [], // responses with status >= 400
};
const cap = (arr, item, max = 50) => {
  if (arr.length < max) arr.push(item);
};

function corsMessages() {
  return diag.consoleErrors.filter((m) => /CORS|Access-Control|cross-origin/i.test(m));
}
// Chromium reports its Local Network Access blocks as "CORS policy" errors too,
// but no header from hlsd can lift them: say so instead of blaming hlsd's CORS.
const isLocalNetworkBlock = (m) => /address space|Permission was denied for this request/i.test(m);
function corsHint(what) {
  const cors = corsMessages();
  if (!cors.length) return '';
  if (cors.some(isLocalNetworkBlock)) return ` — blocked by Chromium's Local Network Access checks (not hlsd's CORS headers; see TUTORIAL_EXTRA_ARGS in browser.mjs): ${cors.find(isLocalNetworkBlock)}`;
  return ` — CORS failure (${what}): ${cors[0]}`;
}

// Prints the one JSON line, closes the browser, exits (0 only when ok). Never
// resolves, so `await finish(...)` stops the caller.
async function finish(result) {
  if (finished) return new Promise(() => {});
  finished = true;
  clearTimeout(hardTimer);
  const out = { ok: result.ok === true, ...result, ...diag, elapsedMs: Date.now() - T0 };
  if (!out.ok && out.error && !/CORS|Local Network Access/.test(out.error)) out.error += corsHint('cross-origin requests were refused');
  const code = out.ok ? 0 : 1;
  setTimeout(() => process.exit(code), 8_000).unref(); // never hang on cleanup
  await new Promise((r) => process.stdout.write(JSON.stringify(out) + '\n', r));
  try {
    await Promise.race([cleanup(), sleep(5000)]);
  } catch {
    /* ignore */
  }
  process.exit(code);
  return new Promise(() => {});
}

const hardTimer = setTimeout(async () => {
  log(`hard timeout (${HARD_TIMEOUT_MS / 1000} s)`);
  const error = `hard timeout after ${HARD_TIMEOUT_MS / 1000} s (last step: ${step})`;
  await Promise.race([screenshot(), sleep(3000)]); // what the page showed when time ran out
  finish({ ok: false, error, step });
}, HARD_TIMEOUT_MS);

process.on('unhandledRejection', (e) => finish({ ok: false, error: `driver: unhandled rejection: ${e?.stack || e}`, step }));
process.on('uncaughtException', (e) => finish({ ok: false, error: `driver: uncaught exception: ${e?.stack || e}`, step }));

let step = 'start';
const setStep = (s) => {
  step = s;
  log(s);
};

// ---------------------------------------------------------------------------
// Arguments.

const SCENARIOS = { ui: () => scenarioUi(), 'tus-reload': () => scenarioTusReload(), tracks: () => scenarioTracks(), tutorial: () => scenarioTutorial(), embed: () => scenarioEmbed(), codecs: () => scenarioCodecs(), live: () => scenarioLive() };
const USAGE = `usage: node tests/browser/run.mjs <${Object.keys(SCENARIOS).join('|')}> <baseUrl> <clipPath> <screenshotPath>`;
const [scenario, baseUrlArg, clipPath, screenshotPath] = process.argv.slice(2);
if (!scenario || !baseUrlArg || !clipPath || !screenshotPath) {
  await finish({ ok: false, error: USAGE });
}
if (!Object.hasOwn(SCENARIOS, scenario)) {
  await finish({ ok: false, error: `unknown scenario ${JSON.stringify(scenario)}; ${USAGE}` });
}
const baseUrl = baseUrlArg.replace(/\/+$/, '');
if (!/^https?:\/\//.test(baseUrl)) await finish({ ok: false, error: `baseUrl must start with http:// or https://: ${baseUrlArg}` });
if (!existsSync(clipPath)) await finish({ ok: false, error: `clip not found: ${clipPath}` });
if (!existsSync(CHROMIUM_PATH)) await finish({ ok: false, error: `chromium not found at ${CHROMIUM_PATH} (apt-get install chromium)` });

// ---------------------------------------------------------------------------
// Browser.

rmSync(screenshotPath, { force: true }); // a screenshot left by an earlier run must not count

const userDataDir = mkdtempSync(path.join(tmpdir(), 'hlsd-chromium-'));
let context;
cleanup = async () => {
  try {
    await context?.close();
  } finally {
    rmSync(userDataDir, { recursive: true, force: true });
  }
};

setStep('launch chromium');
context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM_PATH,
  headless: true,
  args: [
    ...CHROMIUM_ARGS,
    ...(['tutorial', 'embed', 'live'].includes(scenario) ? TUTORIAL_EXTRA_ARGS : []),
    // A self-signed certificate made by the test (https:// base URLs only).
    ...(baseUrl.startsWith('https:') ? ['--ignore-certificate-errors'] : []),
  ],
  ignoreHTTPSErrors: baseUrl.startsWith('https:'),
  viewport: { width: 1280, height: 800 },
  acceptDownloads: false,
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(30_000);

page.on('console', (msg) => {
  if (msg.type() === 'error' && !/favicon\.ico/.test(msg.location()?.url || '')) {
    const loc = msg.location();
    cap(diag.consoleErrors, `${msg.text()}${loc?.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`.slice(0, 600));
  }
});
page.on('pageerror', (err) => {
  log(`pageerror: ${err.message}`);
  cap(diag.pageErrors, String(err.stack || err.message || err).slice(0, 1000));
});
page.on('requestfailed', (req) => {
  cap(diag.failedRequests, `${req.method()} ${req.url()}: ${req.failure()?.errorText}`.slice(0, 400));
});
page.on('response', (res) => {
  if (res.status() >= 400 && !res.url().endsWith('/favicon.ico')) cap(diag.httpErrors, `${res.status()} ${res.request().method()} ${res.url()}`.slice(0, 400));
});

async function screenshot() {
  try {
    await page.screenshot({ path: screenshotPath, fullPage: true, timeout: 15_000 });
    return true;
  } catch (e) {
    log(`screenshot failed: ${e.message}`);
    return false;
  }
}

// Polls fn (async, returns a truthy "done" value or falsy) every `every` ms until
// done or `timeoutMs` elapses; returns the last value. `onTick` sees every value.
async function poll(fn, { timeoutMs, every = 250, onTick } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    onTick?.(v);
    if (v?.done || Date.now() >= end) return v;
    await sleep(every);
  }
}

// ---------------------------------------------------------------------------
// Scenario "ui": hlsd's own page with hls.js.

// Opens hlsd's page; returns an error string, or null when it has every selector.
async function openUi(extraSelectors = []) {
  setStep(`goto ${baseUrl}/`);
  const resp = await page.goto(`${baseUrl}/`, { waitUntil: 'load' });
  if (!resp || !resp.ok()) return `GET ${baseUrl}/ answered ${resp?.status()}`;
  for (const sel of ['#file', '#upload-btn', '#status-text', '#player', '#playback-url', ...extraSelectors]) {
    if (!(await page.$(sel))) return `page has no ${sel}`;
  }
  return null;
}

// Follows the page while it uploads and processes: playback URL, status,
// upload progress, and window.hlsdUpload (the tus upload's id, resumed, ...).
function uiTracker() {
  const t = { statusHistory: [], progressMax: null };
  t.sample = () =>
    page.evaluate(() => {
      const pu = document.getElementById('playback-url');
      const st = document.getElementById('status-text');
      const pr = document.getElementById('upload-progress');
      const up = window.hlsdUpload;
      return {
        playbackUrl: pu ? (pu.value ?? pu.textContent ?? '').trim() : '',
        status: st ? st.textContent.trim() : '',
        progress: pr ? Number(pr.value) : null,
        progressMaxAttr: pr ? Number(pr.max) : null,
        upload: up ? { ...up } : null,
        uploadText: (document.getElementById('upload-text')?.textContent || '').trim(),
      };
    });
  t.track = (v) => {
    if (!v) return;
    const h = t.statusHistory;
    if (v.status && h[h.length - 1] !== v.status && h.length < 40) h.push(v.status.slice(0, 120));
    if (v.progress != null && !Number.isNaN(v.progress)) t.progressMax = Math.max(t.progressMax ?? 0, v.progress);
  };
  return t;
}

const isReady = (s) => /\bready\b/i.test(s) && !/\bnot\s+ready\b/i.test(s);

// Waits for #playback-url to end in /video.m3u8 (and for `also(sample)`, if given).
async function waitForPlaybackUrl(t, also = () => true, timeoutMs = 60_000) {
  setStep('wait for #playback-url');
  const s = await poll(async () => {
    const v = await t.sample();
    return { ...v, done: (v.playbackUrl.endsWith('/video.m3u8') && also(v)) || diag.pageErrors.length > 0 };
  }, { timeoutMs, onTick: t.track });
  if (!s.playbackUrl.endsWith('/video.m3u8')) {
    await screenshot();
    return { error: `#playback-url never ended in /video.m3u8 (value ${JSON.stringify(s.playbackUrl)}, status ${JSON.stringify(s.status)})`, last: s };
  }
  log(`playback url ${s.playbackUrl}`);
  return { playbackUrl: s.playbackUrl, last: s };
}

async function scenarioUi() {
  const bad = await openUi();
  if (bad) return { ok: false, error: bad };

  setStep('upload');
  await page.setInputFiles('#file', clipPath);
  await page.click('#upload-btn');

  const t = uiTracker();
  const w = await waitForPlaybackUrl(t);
  if (w.error) return { ok: false, error: w.error, statusHistory: t.statusHistory, progressMax: t.progressMax };
  return readyAndPlay(t, w.playbackUrl);
}

// Waits (90 s) for #status-text to say "ready"; returns an error result, or null.
async function waitForReady(t, playbackUrl) {
  setStep('wait for status "ready"');
  const s = await poll(async () => {
    const v = await t.sample();
    return { ...v, done: isReady(v.status) || /\bfailed\b/i.test(v.status) };
  }, { timeoutMs: 90_000, every: 500, onTick: t.track });
  if (isReady(s.status)) return null;
  await screenshot();
  return { ok: false, error: `#status-text did not reach "ready" (last: ${JSON.stringify(s.status)})`, playbackUrl, statusHistory: t.statusHistory, progressMax: t.progressMax };
}

// Plays #player muted: "playing", "rejected: …" or "pending" (after 10 s).
const playMuted = () =>
  page.evaluate(() => {
    const v = document.getElementById('player');
    v.muted = true;
    const p = v.play();
    return Promise.race([
      Promise.resolve(p).then(() => 'playing', (e) => `rejected: ${e?.name}: ${e?.message}`),
      new Promise((r) => setTimeout(() => r('pending'), 10_000)),
    ]);
  });

// Waits for status "ready", plays #player until currentTime > 5, collects.
async function readyAndPlay(t, playbackUrl) {
  const { statusHistory } = t;
  const notReady = await waitForReady(t, playbackUrl);
  if (notReady) return notReady;

  setStep('play');
  const play = playMuted;
  const playResults = [await play()];
  log(`play(): ${playResults[0]}`);

  setStep('wait for currentTime > 5');
  let lastPlayAt = Date.now();
  const state = () =>
    page.evaluate(() => {
      const v = document.getElementById('player');
      return { currentTime: v.currentTime, paused: v.paused, ended: v.ended, readyState: v.readyState };
    });
  const st = await poll(async () => {
    const v = await state();
    if (v.currentTime <= 5 && v.paused && !v.ended && Date.now() - lastPlayAt > 3000 && playResults.length < 10) {
      lastPlayAt = Date.now();
      playResults.push(await play());
    }
    return { ...v, done: v.currentTime > 5 || diag.pageErrors.length > 0 };
  }, { timeoutMs: 40_000 });
  log(`currentTime ${st.currentTime}`);

  setStep('collect');
  const info = await page.evaluate(() => {
    const v = document.getElementById('player');
    const hlsErrors = Array.isArray(window.hlsErrors) ? window.hlsErrors : null;
    const hls = window.hlsdPlayer && window.hlsdPlayer.hls;
    const q = document.getElementById('quality');
    const buffered = [];
    for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
    return {
      currentTime: v.currentTime,
      duration: v.duration,
      paused: v.paused,
      readyState: v.readyState,
      buffered,
      videoWidth: v.videoWidth,
      videoHeight: v.videoHeight,
      hlsErrors: (hlsErrors || []).map((e) => ({ type: e.type, details: e.details, fatal: !!e.fatal })),
      hlsErrorsExposed: hlsErrors !== null,
      fatalErrors: (hlsErrors || []).filter((e) => e && e.fatal).length,
      hlsdPlayerExposed: !!window.hlsdPlayer,
      levels: hls && Array.isArray(hls.levels) ? hls.levels.length : null,
      levelSizes: hls && Array.isArray(hls.levels) ? hls.levels.map((l) => `${l.width}x${l.height}@${l.bitrate}`) : null,
      currentLevel: hls ? hls.currentLevel : null,
      qualityOptions: q ? q.options.length : null,
      libraryItems: document.querySelectorAll('#library li').length,
      statusText: (document.getElementById('status-text')?.textContent || '').trim(),
      // The protocol each playlist and segment came over (h2, http/1.1).
      mediaProtocols: [...new Set(performance.getEntriesByType('resource')
        .filter((e) => /\/play\/.*\.(m3u8|ts|m4s|mp4)(\?|$)/.test(e.name))
        .map((e) => e.nextHopProtocol))],
    };
  });
  await screenshot();

  const problems = [];
  if (!(info.currentTime > 5)) problems.push(`currentTime ${info.currentTime} <= 5 (paused=${info.paused}, readyState=${info.readyState})`);
  if (info.fatalErrors > 0) problems.push(`${info.fatalErrors} fatal hls.js error(s): ${JSON.stringify(info.hlsErrors.filter((e) => e.fatal))}`);
  if (!(info.videoWidth > 0)) problems.push('videoWidth is 0');
  if (diag.pageErrors.length) problems.push(`uncaught page exception(s): ${diag.pageErrors[0].split('\n')[0]}`);
  return {
    ok: problems.length === 0,
    ...(problems.length ? { error: problems.join('; ') } : {}),
    ...info,
    playbackUrl,
    statusHistory,
    progressMax: t.progressMax,
    playResults,
  };
}

// ---------------------------------------------------------------------------
// Scenario "tus-reload": the page's tus upload survives a reload.

// Chromium's own network throttling (DevTools protocol), so the upload stays
// in progress for a while; bytes per second, -1 for none.
async function throttler() {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  return (uploadBps) =>
    cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: uploadBps });
}

const uploadState = () => page.evaluate(() => (window.hlsdUpload ? { ...window.hlsdUpload } : null));

// Pause, then Resume: the upload must go on (tus: HEAD, then PATCH from the offset).
async function pauseAndResume() {
  setStep('pause');
  await page.click('#pause-btn');
  const paused = await uploadState();
  const resumeShown = await page.isVisible('#resume-btn');
  await sleep(1000);
  const during = await uploadState();
  setStep('resume');
  await page.click('#resume-btn');
  const after = await poll(async () => {
    const u = await uploadState();
    return { ...u, done: u && !u.paused && u.progressEvents > during.progressEvents };
  }, { timeoutMs: 20_000 });
  const ok = !!(paused?.paused && resumeShown && during.progressEvents === paused.progressEvents && after.done);
  return { ok, pausedAt: paused?.bytesSent ?? null, resumeShown, progressWhilePaused: during.progressEvents - paused.progressEvents, resumedTo: after.bytesSent ?? null };
}

async function scenarioTusReload() {
  const bad = await openUi(['#pause-btn', '#resume-btn', '#upload-progress']);
  if (bad) return { ok: false, error: bad };
  const size = statSync(clipPath).size;
  // About 20 s for the whole clip (HLSD_TUS_UPLOAD_BPS overrides).
  const uploadBps = Number(process.env.HLSD_TUS_UPLOAD_BPS) || Math.max(64 * 1024, Math.round(size / 20));
  const throttle = await throttler();
  await throttle(uploadBps);
  log(`upload throttled to ${uploadBps} B/s (clip ${size} bytes)`);

  setStep('upload (throttled)');
  await page.setInputFiles('#file', clipPath);
  await page.click('#upload-btn');
  const t = uiTracker();
  const partly = (v) => v.upload?.id && v.progress >= 10;
  const w = await waitForPlaybackUrl(t, (v) => partly(v) || v.progress >= 100);
  if (w.error) return { ok: false, error: w.error, statusHistory: t.statusHistory, progressMax: t.progressMax, uploadBps };
  if (!partly(w.last) || w.last.progress >= 100) {
    return { ok: false, error: `the upload was not partly done before the reload (progress ${w.last.progress}%, upload ${JSON.stringify(w.last.upload)})`, uploadBps };
  }

  const pauseResume = await pauseAndResume();
  const before = await t.sample();
  const idBefore = before.upload.id;
  log(`before reload: id ${idBefore}, ${before.progress}% (${before.upload.bytesSent} bytes)`);

  setStep('reload');
  await page.reload({ waitUntil: 'load' });
  await throttle(-1);
  await sleep(500); // the page looks for unfinished uploads on load
  const hintAfterReload = (await t.sample()).uploadText;

  setStep('upload the same file again (resume)');
  await page.setInputFiles('#file', clipPath);
  await page.click('#upload-btn');
  const w2 = await waitForPlaybackUrl(t, (v) => !!v.upload?.id);
  if (w2.error) return { ok: false, error: w2.error, idBefore, statusHistory: t.statusHistory, uploadBps };
  const up = w2.last.upload;
  log(`after reload: id ${up.id}, resumed ${up.resumed}, offset at start ${up.offsetAtStart}`);
  const tus = { idBefore, idAfter: up.id, resumed: up.resumed, offsetAtStart: up.offsetAtStart, bytes: size,
    progressBeforeReload: before.progress, playbackUrlBefore: before.playbackUrl, hintAfterReload, pauseResume, uploadBps };

  const r = await readyAndPlay(t, w2.playbackUrl);
  const problems = r.ok ? [] : [r.error];
  if (up.id !== idBefore) problems.push(`a new upload was made after the reload (id ${up.id}, before ${idBefore})`);
  if (!up.resumed) problems.push('the upload was not resumed (no HEAD of the previous upload URL)');
  if (!(up.offsetAtStart > 0)) problems.push(`the server kept no bytes of the interrupted upload (Upload-Offset ${up.offsetAtStart} after the reload)`);
  if (!pauseResume.ok) problems.push(`Pause/Resume did not work: ${JSON.stringify(pauseResume)}`);
  return { ...r, ...tus, ok: problems.length === 0, ...(problems.length ? { error: problems.join('; ') } : {}) };
}

// ---------------------------------------------------------------------------
// Scenario "tracks": alternate audio, captions, storyboard previews and the
// download link on hlsd's page (hls.js).

// HLSD_EXPECT_CUE="<text>|<seconds>": a caption cue on screen from then on.
function expectedCue() {
  const raw = process.env.HLSD_EXPECT_CUE || '';
  const i = raw.lastIndexOf('|');
  const text = i > 0 ? raw.slice(0, i).trim() : '';
  const at = i > 0 ? Number(raw.slice(i + 1)) : NaN;
  return text && Number.isFinite(at) && at >= 0 ? { text, at } : null;
}

// hls.js's tracks, the menus, the player, and window.hlsdTracks. It also
// (once per hls.js instance) records the track events in window.__trackEvents.
const trackState = () =>
  page.evaluate(() => {
    const v = document.getElementById('player');
    const hls = window.hlsdPlayer && window.hlsdPlayer.hls;
    const log = (window.__trackEvents = window.__trackEvents || []);
    if (hls && !hls.__hlsdTestWatch && window.Hls) {
      hls.__hlsdTestWatch = true;
      ['AUDIO_TRACKS_UPDATED', 'AUDIO_TRACK_SWITCHING', 'AUDIO_TRACK_SWITCHED', 'SUBTITLE_TRACKS_UPDATED', 'SUBTITLE_TRACK_SWITCH'].forEach((name) =>
        hls.on(window.Hls.Events[name], (_e, d) => {
          const l = (window.__trackEvents = window.__trackEvents || []);
          l.push({ name, id: d && typeof d.id === 'number' ? d.id : null, currentTime: v.currentTime, at: Date.now() });
          if (l.length > 200) l.shift();
        }));
    }
    const menu = (id) => {
      const s = document.getElementById(id);
      return s ? { visible: !!(s.offsetWidth || s.offsetHeight), options: Array.from(s.options).map((o) => [o.value, o.textContent]), value: s.value } : null;
    };
    const tr = (t) => ({ id: t.id, name: t.name, lang: t.lang, groupId: t.groupId });
    const ht = window.hlsdTracks;
    return {
      hlsId: hls ? (hls.__hlsdTestId = hls.__hlsdTestId || Math.random().toString(36).slice(2)) : null,
      audioTracks: hls ? (hls.audioTracks || []).map(tr) : [],
      subtitleTracks: hls ? (hls.subtitleTracks || []).map(tr) : [],
      audioTrack: hls ? hls.audioTrack : null,
      subtitleTrack: hls ? hls.subtitleTrack : null,
      subtitleDisplay: hls ? hls.subtitleDisplay : null,
      textTracks: Array.from(v.textTracks).map((t) => ({ kind: t.kind, label: t.label, language: t.language, mode: t.mode, cues: t.cues ? t.cues.length : null })),
      audioMenu: menu('audio-track'),
      captionMenu: menu('caption-track'),
      hlsdTracks: ht ? { audio: (ht.audio || []).length, subtitles: (ht.subtitles || []).length, storyboardCues: ht.storyboardCues } : null,
      currentTime: v.currentTime, paused: v.paused, ended: v.ended, readyState: v.readyState, duration: v.duration,
      events: log.slice(),
    };
  });

async function scenarioTracks() {
  const expected = expectedCue();
  if (!expected) return { ok: false, error: `HLSD_EXPECT_CUE must be "<text>|<seconds>" (got ${JSON.stringify(process.env.HLSD_EXPECT_CUE ?? null)})` };
  const bad = await openUi(['#audio-track', '#caption-track', '#seek-bar', '#storyboard-preview', '#download-link']);
  if (bad) return { ok: false, error: bad };

  setStep('upload');
  await page.setInputFiles('#file', clipPath);
  await page.click('#upload-btn');
  const t = uiTracker();
  const w = await waitForPlaybackUrl(t);
  if (w.error) return { ok: false, error: w.error, statusHistory: t.statusHistory, progressMax: t.progressMax };
  const notReady = await waitForReady(t, w.playbackUrl);
  if (notReady) return notReady;
  const out = { playbackUrl: w.playbackUrl, statusHistory: t.statusHistory, expectedCue: expected, playResults: [] };
  const fail = async (error, more = {}) => {
    await screenshot();
    const last = await trackState().catch(() => null);
    return { ok: false, error, ...out, ...more, lastState: last, hlsErrors: await page.evaluate(() => window.hlsErrors || []).catch(() => null) };
  };

  setStep('play');
  out.playResults.push(await playMuted());

  // Keeps playback going while waiting: play() again when paused (every 3 s),
  // from the start when it ended.
  let lastPlayAt = Date.now();
  const nudge = async (s) => {
    if (!(s.paused || s.ended) || Date.now() - lastPlayAt < 3000 || out.playResults.length >= 20) return;
    lastPlayAt = Date.now();
    if (s.ended) await page.evaluate(() => { document.getElementById('player').currentTime = 0; });
    out.playResults.push(await playMuted());
  };

  setStep('wait for >= 2 audio tracks and >= 1 subtitle track (hls.js)');
  const tr = await poll(async () => {
    const s = await trackState();
    return { ...s, done: (s.audioTracks.length >= 2 && s.subtitleTracks.length >= 1 && s.audioMenu?.visible && s.captionMenu?.visible) || diag.pageErrors.length > 0 };
  }, { timeoutMs: 60_000, every: 500 });
  Object.assign(out, {
    audioTracks: tr.audioTracks.length, subtitleTracks: tr.subtitleTracks.length,
    audioTrackList: tr.audioTracks, subtitleTrackList: tr.subtitleTracks, audioMenu: tr.audioMenu, captionMenu: tr.captionMenu,
  });
  log(`hls.js: ${tr.audioTracks.length} audio, ${tr.subtitleTracks.length} subtitle tracks`);
  if (!(tr.audioTracks.length >= 2 && tr.subtitleTracks.length >= 1)) {
    return fail(`hls.js has ${tr.audioTracks.length} audio and ${tr.subtitleTracks.length} subtitle tracks (want >= 2 and >= 1)`);
  }
  if (!tr.audioMenu?.visible || !tr.captionMenu?.visible) return fail('#audio-track or #caption-track is not shown although hls.js has the tracks');

  // ---- audio: the second track through #audio-track
  const target = tr.audioTrack === 1 ? 0 : 1;
  const targetTrack = tr.audioTracks[target];
  setStep(`switch audio to track ${target} (${targetTrack.lang} "${targetTrack.name}") with #audio-track`);
  // Room to play on after the switch: start over when near the end.
  await page.evaluate(() => {
    const v = document.getElementById('player');
    if (!(v.currentTime < v.duration - 5)) v.currentTime = 0;
    window.__trackEvents = [];
  });
  await trackState(); // hls.js's events are recorded from here on
  const switchStarted = Date.now();
  await page.selectOption('#audio-track', String(target));
  const sw = await poll(async () => {
    const s = await trackState();
    await nudge(s);
    const ev = s.events.find((e) => e.name === 'AUDIO_TRACK_SWITCHED' && e.id === targetTrack.id);
    return { ...s, ev, done: (!!ev && s.audioTrack === target) || diag.pageErrors.length > 0 };
  }, { timeoutMs: 60_000, every: 250 });
  out.audioSwitched = { ok: false, target, id: targetTrack.id, lang: targetTrack.lang, name: targetTrack.name, audioTrack: sw.audioTrack,
    eventMs: sw.ev ? sw.ev.at - switchStarted : null, events: sw.events.map((e) => `${e.name}:${e.id}`) };
  if (!sw.ev || sw.audioTrack !== target) return fail(`no AUDIO_TRACK_SWITCHED for track id ${targetTrack.id} within 60 s (hls.audioTrack ${sw.audioTrack})`);

  setStep('wait for playback to go on > 1 s after the audio switch');
  let advanced = 0, prev = sw.currentTime;
  const adv = await poll(async () => {
    const s = await trackState();
    const d = s.currentTime - prev;
    if (d > 0 && d < 2) advanced += d; // a seek (start over) is no progress
    prev = s.currentTime;
    await nudge(s);
    return { ...s, done: advanced > 1 || diag.pageErrors.length > 0 };
  }, { timeoutMs: 60_000, every: 250 });
  Object.assign(out.audioSwitched, { advanced: Number(advanced.toFixed(3)), ok: advanced > 1, audioTrackAfter: adv.audioTrack });
  if (!(advanced > 1)) return fail(`playback stalled after the audio switch (advanced ${advanced.toFixed(2)} s in 60 s)`);

  // ---- captions: the first subtitle track through #caption-track
  const sub = tr.subtitleTracks[0];
  setStep(`choose subtitle track 0 (${sub.lang} "${sub.name}") with #caption-track`);
  const before = await trackState();
  // hls.js sends no SUBTITLE_TRACK_SWITCH for a track that is already on.
  const alreadyOn = before.subtitleTrack === 0 && before.subtitleDisplay !== false;
  await page.selectOption('#caption-track', '0');
  const cs = await poll(async () => {
    const s = await trackState();
    const ev = s.events.find((e) => e.name === 'SUBTITLE_TRACK_SWITCH' && e.id === sub.id);
    return { ...s, ev, done: ((!!ev || alreadyOn) && s.subtitleTrack === 0 && s.textTracks.some((x) => x.mode === 'showing')) || diag.pageErrors.length > 0 };
  }, { timeoutMs: 60_000, every: 250 });
  out.captionSwitched = { ok: cs.done === true && (!!cs.ev || alreadyOn) && cs.subtitleTrack === 0, id: sub.id, lang: sub.lang, name: sub.name,
    alreadyOn, subtitleTrack: cs.subtitleTrack, textTracks: cs.textTracks };
  if (!out.captionSwitched.ok) return fail(`subtitle track ${sub.id} was not switched on and showing within 60 s`);

  const from = Math.max(0, expected.at - 2);
  setStep(`seek to ${from} s, wait for "${expected.text}" (expected at ${expected.at} s)`);
  await page.evaluate((at) => new Promise((resolve) => {
    const v = document.getElementById('player');
    v.pause();
    v.addEventListener('seeked', () => resolve(), { once: true });
    setTimeout(resolve, 15_000);
    v.currentTime = at;
  }), from);
  // Give hls.js a moment to load the captions there before playing on.
  const loaded = await poll(async () => {
    const has = await page.evaluate((text) => Array.from(document.getElementById('player').textTracks).some((tt) =>
      tt.mode === 'showing' && tt.cues && Array.from(tt.cues).some((c) => (c.text || '').replace(/<[^>]*>/g, '').replace(/\s+/g, ' ').includes(text))), expected.text);
    return { done: has };
  }, { timeoutMs: 15_000, every: 250 });
  out.cueLoadedBeforePlay = loaded.done;
  await page.evaluate((text) => {
    const v = document.getElementById('player');
    const w = (window.__cueWatch = { seen: null });
    const norm = (s) => String(s || '').replace(/<[^>]*>/g, '').replace(/\s+/g, ' ').trim();
    const check = () => {
      if (w.seen) return;
      for (const tt of Array.from(v.textTracks)) {
        if (tt.mode !== 'showing' || !tt.activeCues) continue;
        for (const c of Array.from(tt.activeCues)) {
          if (norm(c.text).includes(text)) {
            w.seen = { text: norm(c.text), startTime: c.startTime, endTime: c.endTime, seenAt: v.currentTime, track: tt.label, lang: tt.language };
            return;
          }
        }
      }
    };
    Array.from(v.textTracks).forEach((tt) => tt.addEventListener('cuechange', check));
    v.addEventListener('timeupdate', check);
    w.timer = setInterval(check, 20);
  }, expected.text);
  lastPlayAt = Date.now();
  out.playResults.push(await playMuted());
  const cue = await poll(async () => {
    const s = await trackState();
    const seen = await page.evaluate(() => window.__cueWatch && window.__cueWatch.seen);
    if (!seen) await nudge(s);
    return { ...s, seen, done: !!seen || diag.pageErrors.length > 0 };
  }, { timeoutMs: 60_000, every: 250 });
  await page.evaluate(() => clearInterval(window.__cueWatch && window.__cueWatch.timer));
  if (!cue.seen) return fail(`no active cue with "${expected.text}" within 60 s (currentTime ${cue.currentTime})`);
  out.cue = cue.seen;
  log(`cue "${cue.seen.text}" ${cue.seen.startTime}–${cue.seen.endTime}, seen at ${cue.seen.seenAt}`);

  // ---- storyboard: cues parsed, a tile on hover at 50 %
  setStep('wait for window.hlsdTracks.storyboardCues > 0');
  const sb = await poll(async () => {
    const n = await page.evaluate(() => (window.hlsdTracks && window.hlsdTracks.storyboardCues) || 0);
    return { n, done: n > 0 };
  }, { timeoutMs: 60_000, every: 500 });
  out.storyboardCues = sb.n;
  setStep('hover #seek-bar at 50 %');
  await page.waitForSelector('#seek-bar', { state: 'visible', timeout: 30_000 }).catch(() => null);
  const bar = page.locator('#seek-bar');
  await bar.scrollIntoViewIfNeeded().catch(() => null);
  const box = await bar.boundingBox();
  let preview = null;
  if (box) {
    await bar.hover({ position: { x: box.width * 0.25, y: box.height / 2 } });
    await bar.hover({ position: { x: box.width / 2, y: box.height / 2 } });
    preview = await page.evaluate(async () => {
      const p = document.getElementById('storyboard-preview');
      const cs = getComputedStyle(p);
      const m = /url\(["']?(.*?)["']?\)/.exec(cs.backgroundImage || '');
      const r = { visible: !p.hidden && !!(p.offsetWidth || p.offsetHeight), backgroundImage: m ? m[1] : '', backgroundPosition: cs.backgroundPosition,
        width: p.offsetWidth, height: p.offsetHeight, time: (document.getElementById('storyboard-time')?.textContent || '').trim(), status: null, contentType: null, decoded: null };
      if (!r.backgroundImage) return r;
      try {
        const res = await fetch(r.backgroundImage);
        r.status = res.status;
        r.contentType = res.headers.get('content-type');
        r.bytes = (await res.arrayBuffer()).byteLength;
      } catch (e) { r.fetchError = String(e); }
      r.decoded = await new Promise((ok) => {
        const img = new Image();
        img.onload = () => ok(`${img.naturalWidth}x${img.naturalHeight}`);
        img.onerror = () => ok(null);
        img.src = r.backgroundImage;
        setTimeout(() => ok(null), 10_000);
      });
      return r;
    });
  }
  out.preview = preview;
  out.previewOk = !!(preview && preview.visible && preview.backgroundImage && preview.status === 200 && preview.decoded);

  // ---- download link (required only with HLSD_EXPECT_DOWNLOAD=1)
  const wantDownload = process.env.HLSD_EXPECT_DOWNLOAD === '1';
  setStep(`read #download-link${wantDownload ? ' (wait for it)' : ''}`);
  const readLink = () => page.evaluate(() => {
    const a = document.getElementById('download-link');
    return a && !a.hidden && a.getAttribute('href') ? { href: a.href, download: a.getAttribute('download') } : null;
  });
  const dl = wantDownload ? (await poll(async () => { const l = await readLink(); return { l, done: !!l }; }, { timeoutMs: 60_000, every: 500 })).l : await readLink();
  out.downloadHref = dl ? dl.href : null;
  out.downloadName = dl ? dl.download : null;
  if (dl) {
    out.download = await page.evaluate(async (href) => {
      try {
        const res = await fetch(href, { headers: { Range: 'bytes=0-1023' } });
        const b = new Uint8Array(await res.arrayBuffer());
        return { status: res.status, contentType: res.headers.get('content-type'), ftyp: String.fromCharCode(...b.slice(4, 8)) };
      } catch (e) { return { error: String(e) }; }
    }, dl.href);
  }

  setStep('collect');
  await screenshot(); // captions and the storyboard preview on screen
  const info = await page.evaluate(() => {
    const v = document.getElementById('player');
    const errs = Array.isArray(window.hlsErrors) ? window.hlsErrors : [];
    return { currentTime: v.currentTime, duration: v.duration, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
      hlsErrors: errs.map((e) => ({ type: e.type, details: e.details, fatal: !!e.fatal })), fatalErrors: errs.filter((e) => e && e.fatal).length,
      hlsdTracks: window.hlsdTracks ? JSON.parse(JSON.stringify(window.hlsdTracks)) : null };
  });

  const problems = [];
  const c = out.cue, cueLen = c.endTime - c.startTime;
  if (!(Math.abs(c.startTime - expected.at) <= 0.5)) problems.push(`cue starts at ${c.startTime} s, expected ${expected.at} ± 0.5 s`);
  if (!(c.seenAt >= expected.at - 0.5 && c.seenAt <= expected.at + cueLen)) problems.push(`cue first seen active at currentTime ${c.seenAt}, outside [${expected.at - 0.5}, ${expected.at + cueLen}]`);
  if (!(out.storyboardCues > 0)) problems.push('window.hlsdTracks.storyboardCues is 0 (no storyboard_url in the record, or storyboard.vtt did not load or parse)');
  if (!out.previewOk) problems.push(`hovering #seek-bar did not show a loadable storyboard tile: ${JSON.stringify(preview)}`);
  if (wantDownload && !(out.download && (out.download.status === 200 || out.download.status === 206))) problems.push(`download link ${out.downloadHref ? `answered ${JSON.stringify(out.download)}` : 'never shown'}`);
  if (info.fatalErrors > 0) problems.push(`${info.fatalErrors} fatal hls.js error(s): ${JSON.stringify(info.hlsErrors.filter((e) => e.fatal))}`);
  if (diag.pageErrors.length) problems.push(`uncaught page exception(s): ${diag.pageErrors[0].split('\n')[0]}`);
  return { ok: problems.length === 0, ...(problems.length ? { error: problems.join('; ') } : {}), ...out, ...info };
}

// ---------------------------------------------------------------------------
// Scenario "tutorial": the tutorial's page, fetch + FormData then video.js,
// from another origin.

function tutorialHtml(base) {
  return `<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>HLS tutorial test page</title>
  <link href="/video-js.css" rel="stylesheet">
  <script src="/video.js"></script>
</head>
<body>
  <h1>Upload a video</h1>
  <form id="f">
    <input type="file" name="video" id="video" accept="video/*">
    <button type="submit" id="submit">Upload</button>
  </form>
  <p id="msg"></p>
  <video id="player" class="video-js" controls muted playsinline preload="auto" width="640" height="360"></video>
  <script>
    const BASE = ${JSON.stringify(base)};
    window.vjsErrors = [];
    window.tutorialErrors = [];
    const msg = (t) => { document.getElementById('msg').textContent = t; };
    document.getElementById('f').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const input = document.getElementById('video');
      let j;
      try {
        msg('Uploading...');
        const fd = new FormData();
        fd.append('video', input.files[0]);
        const r = await fetch(BASE + '/upload', { method: 'POST', body: fd });
        window.tutorialStatus = r.status;
        j = await r.json();
      } catch (e) {
        window.tutorialErrors.push('upload: ' + e);
        msg('Upload failed: ' + e);
        return;
      }
      window.tutorialResult = j;
      msg('Playing ' + j.playback_url);
      const player = videojs('player', { controls: true, muted: true, autoplay: false, preload: 'auto' });
      window.tutorialPlayer = player;
      player.on('error', () => {
        const e = player.error();
        window.vjsErrors.push({ code: e && e.code, message: e && e.message });
      });
      player.src({ src: j.playback_url, type: 'application/x-mpegURL' });
      player.muted(true);
      const p = player.play();
      if (p && p.catch) p.catch((e) => window.tutorialErrors.push('play: ' + e));
    });
  </script>
</body>
</html>`;
}

async function scenarioTutorial() {
  const dist = path.join(HERE, 'node_modules', 'video.js', 'dist');
  const vjsFile = path.join(dist, 'video.min.js');
  const cssFile = path.join(dist, 'video-js.min.css');
  if (!existsSync(vjsFile)) return { ok: false, error: `missing ${vjsFile} (run npm ci in tests/browser)` };
  const html = tutorialHtml(baseUrl);
  const vjs = readFileSync(vjsFile);
  const css = readFileSync(cssFile);

  await page.route(`${TUTORIAL_ORIGIN}/**`, (route) => {
    const p = new URL(route.request().url()).pathname;
    if (p === '/' || p === '/index.html') return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html });
    if (p === '/video.js') return route.fulfill({ status: 200, contentType: 'text/javascript; charset=utf-8', body: vjs });
    if (p === '/video-js.css') return route.fulfill({ status: 200, contentType: 'text/css; charset=utf-8', body: css });
    return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });
  });

  setStep(`goto ${TUTORIAL_ORIGIN}/ (uploads to ${baseUrl})`);
  await page.goto(`${TUTORIAL_ORIGIN}/`, { waitUntil: 'load' });
  if (!(await page.evaluate(() => typeof window.videojs === 'function'))) return { ok: false, error: 'video.js did not load on the tutorial page' };
  const videojsVersion = await page.evaluate(() => window.videojs.VERSION);

  setStep('upload (fetch + FormData)');
  await page.setInputFiles('#video', clipPath);
  await page.click('#submit');

  const up = await poll(async () => {
    const v = await page.evaluate(() => ({
      result: window.tutorialResult ?? null,
      status: window.tutorialStatus ?? null,
      errors: window.tutorialErrors.filter((e) => e.startsWith('upload:')),
    }));
    return { ...v, done: v.result !== null || v.errors.length > 0 };
  }, { timeoutMs: 60_000 });
  if (up.result === null) {
    await screenshot();
    const why = up.errors.length ? up.errors.join('; ') : 'no response within 60 s';
    return {
      ok: false,
      error: `POST ${baseUrl}/upload from ${TUTORIAL_ORIGIN} failed: ${why}${corsHint('hlsd must send Access-Control-Allow-Origin on POST /upload')}`,
      uploadStatus: up.status,
    };
  }
  const result = up.result;
  log(`upload answered ${up.status}: ${JSON.stringify(result).slice(0, 300)}`);
  if (typeof result?.playback_url !== 'string' || !/^https?:\/\//.test(result.playback_url)) {
    await screenshot();
    return { ok: false, error: `upload answer has no absolute playback_url (the tutorial page uses it as is, from another origin)`, uploadStatus: up.status, result };
  }

  setStep('wait for currentTime > 5 (video.js)');
  const playResults = [];
  let lastPlayAt = Date.now();
  let stalls = 0;
  let lastTime = -1;
  const st = await poll(async () => {
    const v = await page.evaluate(() => {
      const p = window.tutorialPlayer;
      if (!p) return { currentTime: 0, paused: true, ended: false, readyState: 0, vjsErrors: window.vjsErrors };
      return {
        currentTime: p.currentTime(),
        paused: p.paused(),
        ended: p.ended(),
        readyState: p.readyState(),
        vjsErrors: window.vjsErrors,
      };
    });
    if (v.currentTime === lastTime && !v.paused) stalls++;
    lastTime = v.currentTime;
    // A growing EVENT playlist may stall or pause playback: nudge it again, keep waiting.
    if (v.currentTime <= 5 && v.paused && !v.ended && !v.vjsErrors.length && Date.now() - lastPlayAt > 3000 && playResults.length < 20) {
      lastPlayAt = Date.now();
      playResults.push(
        await page.evaluate(() => {
          const p = window.tutorialPlayer;
          p.muted(true);
          const r = p.play();
          return Promise.race([
            Promise.resolve(r).then(() => 'playing', (e) => `rejected: ${e?.name}: ${e?.message}`),
            new Promise((res) => setTimeout(() => res('pending'), 5_000)),
          ]);
        }),
      );
    }
    return { ...v, done: v.currentTime > 5 || v.vjsErrors.length > 0 || diag.pageErrors.length > 0 };
  }, { timeoutMs: 90_000, every: 500 });
  log(`currentTime ${st.currentTime}`);

  setStep('collect');
  const info = await page.evaluate(() => {
    const p = window.tutorialPlayer;
    const el = p ? p.tech({ IWillNotUseThisInPlugins: true }).el() : document.querySelector('video');
    const tech = p ? p.tech({ IWillNotUseThisInPlugins: true }) : null;
    const vhs = tech && tech.vhs;
    let playlist = null;
    try {
      const m = vhs && vhs.playlists && vhs.playlists.media();
      if (m) playlist = { uri: m.resolvedUri || m.uri, playlistType: m.playlistType ?? null, endList: !!m.endList, segments: (m.segments || []).length };
    } catch {
      /* ignore */
    }
    const buffered = [];
    for (let i = 0; el && i < el.buffered.length; i++) buffered.push([el.buffered.start(i), el.buffered.end(i)]);
    return {
      currentTime: p ? p.currentTime() : el.currentTime,
      duration: p ? p.duration() : el.duration,
      paused: p ? p.paused() : el.paused,
      buffered,
      videoWidth: el ? el.videoWidth : 0,
      videoHeight: el ? el.videoHeight : 0,
      vjsErrors: window.vjsErrors,
      tutorialErrors: window.tutorialErrors,
      playbackTech: vhs ? 'vhs' : 'native',
      vhsPlaylist: playlist,
      result: window.tutorialResult,
      uploadStatus: window.tutorialStatus ?? null,
    };
  });
  await screenshot();

  const problems = [];
  if (!(info.currentTime > 5)) problems.push(`currentTime ${info.currentTime} <= 5 (paused=${info.paused})`);
  if (info.vjsErrors.length) problems.push(`video.js error(s): ${JSON.stringify(info.vjsErrors)}`);
  if (!(info.videoWidth > 0)) problems.push('videoWidth is 0');
  if (diag.pageErrors.length) problems.push(`uncaught page exception(s): ${diag.pageErrors[0].split('\n')[0]}`);
  if (problems.length) {
    const hint = corsHint('hlsd must send Access-Control-Allow-Origin on /play/*');
    if (hint) problems.push(hint.replace(/^ — /, ''));
  }
  return {
    ok: problems.length === 0,
    ...(problems.length ? { error: problems.join('; ') } : {}),
    ...info,
    videojsVersion,
    stalls,
    playResults,
  };
}

// ---------------------------------------------------------------------------
// Scenario "embed": hlsd's /embed/{id} in another site's iframe.

async function scenarioEmbed() {
  const good = `${baseUrl}${process.env.HLSD_EMBED_PATH || ''}`;
  const denied = `${baseUrl}${process.env.HLSD_EMBED_DENIED_PATH || ''}`;
  const start = Number(process.env.HLSD_EMBED_START || 0);
  const lang = process.env.HLSD_EMBED_CAPTIONS || '';
  if (!process.env.HLSD_EMBED_PATH || !process.env.HLSD_EMBED_DENIED_PATH) return { ok: false, error: 'HLSD_EMBED_PATH and HLSD_EMBED_DENIED_PATH are required' };
  const attr = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>A blog post</title></head><body>
    <h1>A blog post with a video</h1>
    <iframe id="good" src="${attr(good)}" width="640" height="360" allow="autoplay; fullscreen" allowfullscreen></iframe>
    <iframe id="denied" src="${attr(denied)}" width="320" height="180"></iframe>
  </body></html>`;
  await page.route(`${TUTORIAL_ORIGIN}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html }));
  const deniedResponse = page.waitForResponse((r) => r.url() === denied, { timeout: 60_000 });

  setStep(`goto ${TUTORIAL_ORIGIN}/ (frames ${good})`);
  await page.goto(`${TUTORIAL_ORIGIN}/`, { waitUntil: 'load' });
  const deniedStatus = (await deniedResponse).status();
  const frame = () => page.frames().find((f) => f.url() === good);

  setStep('wait for the framed video to play past start + 1 s');
  const st = await poll(async () => {
    const f = frame();
    if (!f) return { done: false };
    const v = await f.evaluate(() => {
      const video = document.getElementById('player');
      const e = window.hlsdEmbed;
      const menu = [...(document.getElementById('captions')?.options || [])].map((o) => o.dataset.lang || '');
      return e ? { currentTime: video.currentTime, paused: video.paused, firstPlaying: e.firstPlaying ?? null, errors: e.errors, captions: e.captions, subtitleTracks: e.subtitleTracks, menu, menuHidden: document.getElementById('captions').hidden } : null;
    }).catch((e) => ({ evalError: String(e) }));
    if (!v || v.evalError) return { done: false, ...v };
    return { ...v, done: (v.currentTime > start + 1 && (!lang || v.captions === lang)) || v.errors.length > 0 || diag.pageErrors.length > 0 };
  }, { timeoutMs: 90_000, every: 500 });
  await screenshot();
  const problems = [];
  if (!(st.currentTime > start + 1)) problems.push(`the framed video did not play past ${start + 1} s (at ${st.currentTime}, paused=${st.paused})`);
  if (!(st.firstPlaying >= start - 0.5)) problems.push(`start not honoured: first playing at ${st.firstPlaying}`);
  if (lang && !(st.menu || []).includes(lang)) problems.push(`the captions menu does not list ${lang}: ${JSON.stringify(st.menu)}`);
  if (lang && st.captions !== lang) problems.push(`captions shown: ${st.captions}, not ${lang}`);
  if (st.errors?.length) problems.push(`player errors: ${st.errors.join('; ')}`);
  if (deniedStatus !== 403) problems.push(`the embed without its token answered ${deniedStatus}`);
  if (diag.pageErrors.length) problems.push(`uncaught page exception(s): ${diag.pageErrors[0].split('\n')[0]}`);
  return {
    ok: problems.length === 0,
    ...(problems.length ? { error: problems.join('; ') } : {}),
    currentTime: st.currentTime,
    firstPlaying: st.firstPlaying,
    captions: st.captions,
    subtitleTracks: st.subtitleTracks,
    menu: st.menu,
    deniedStatus,
  };
}

// Issue 28: a master with H.264 and AV1 groups. The embed page plays it;
// the level hls.js loads says which codec it chose. HLSD_REFUSE_CODEC
// (e.g. av01) makes MediaSource refuse that codec, as a browser without an
// AV1 decoder does.
async function scenarioCodecs() {
  const url = `${baseUrl}${process.env.HLSD_EMBED_PATH || ''}`;
  const refuse = process.env.HLSD_REFUSE_CODEC || '';
  // How far it must play (seconds of the video; the embed's `start` may
  // begin it later than 0).
  const past = Number(process.env.HLSD_PLAY_PAST || 2);
  if (!process.env.HLSD_EMBED_PATH) return { ok: false, error: 'HLSD_EMBED_PATH is required' };
  if (refuse) {
    await page.addInitScript((prefix) => {
      for (const MS of [window.MediaSource, window.ManagedMediaSource]) {
        if (!MS) continue;
        const own = MS.isTypeSupported.bind(MS);
        MS.isTypeSupported = (type) => (String(type).includes(prefix) ? false : own(type));
      }
    }, refuse);
  }
  setStep(`goto ${url}`);
  await page.goto(url, { waitUntil: 'load' });
  setStep(`wait for the video to play past ${past} s`);
  const st = await poll(async () => {
    const v = await page.evaluate(() => {
      const video = document.getElementById('player');
      const e = window.hlsdEmbed;
      const h = e?.hls;
      const level = h && h.currentLevel >= 0 ? h.levels[h.currentLevel] : null;
      return e ? { currentTime: video.currentTime, errors: e.errors, videoCodec: level?.videoCodec ?? null, levels: (h?.levels || []).map((l) => l.videoCodec) } : null;
    }).catch((e) => ({ evalError: String(e) }));
    if (!v || v.evalError) return { done: false, ...v };
    return { ...v, done: v.currentTime > past || v.errors.length > 0 || diag.pageErrors.length > 0 };
  }, { timeoutMs: 90_000, every: 500 });
  await screenshot();
  const problems = [];
  // The library's player names each level's codec in its quality menu.
  let menu = null;
  const id = process.env.HLSD_UI_ID;
  if (id) {
    setStep('play it from the library');
    await page.goto(`${baseUrl}/`, { waitUntil: 'load' });
    await page.click(`#library li[data-id="${id}"] button[data-action="play"]`, { timeout: 60_000 });
    const q = await poll(async () => {
      const texts = await page.evaluate(() => [...document.getElementById('quality').options].map((o) => o.textContent));
      return { texts, done: texts.length > 2 };
    }, { timeoutMs: 60_000, every: 500 });
    menu = q.texts;
  }
  if (!(st.currentTime > past)) problems.push(`the video did not play past ${past} s (at ${st.currentTime})`);
  if (st.errors?.length) problems.push(`player errors: ${st.errors.join('; ')}`);
  if (diag.pageErrors.length) problems.push(`uncaught page exception(s): ${diag.pageErrors[0].split('\n')[0]}`);
  return {
    ok: problems.length === 0,
    ...(problems.length ? { error: problems.join('; ') } : {}),
    currentTime: st.currentTime,
    videoCodec: st.videoCodec,
    levels: st.levels,
    menu,
  };
}

// Issue 27: a live broadcast, still arriving, in the embed page. hls.js must
// see a live playlist and play on; the result says how far behind the
// publisher it plays: HLSD_PUSH_START_MS is when the real-time (-re) push
// began, so (now - start) - currentTime is the glass-to-glass latency
// (plus the push's own start-up), sampled every 0.5 s for
// HLSD_LIVE_SAMPLE_SECS (default: until 2 s played).
async function scenarioLive() {
  const url = `${baseUrl}${process.env.HLSD_EMBED_PATH || ''}`;
  const pushStart = Number(process.env.HLSD_PUSH_START_MS || 0);
  const sampleSecs = Number(process.env.HLSD_LIVE_SAMPLE_SECS || 0);
  const other = process.env.HLSD_HLS_URL; // another server's live (benches)
  if (!(process.env.HLSD_EMBED_PATH || other) || !pushStart) return { ok: false, error: 'HLSD_EMBED_PATH (or HLSD_HLS_URL) and HLSD_PUSH_START_MS are required' };
  if (other) {
    // The same hls.js (hlsd's copy) on a bare page, as the embed page uses it.
    const html = `<!doctype html><html><head><meta charset="utf-8"></head><body>
      <video id="player" muted autoplay playsinline></video>
      <script src="${baseUrl}/assets/hls.min.js"></script>
      <script>
        const hls = new Hls({ maxLiveSyncPlaybackRate: 1.5 }); // as hlsd's embed page
        window.hlsdEmbed = { hls, errors: [] };
        hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.hlsdEmbed.errors.push(d.details); });
        hls.loadSource(${JSON.stringify(other)});
        hls.attachMedia(document.getElementById('player'));
      </script></body></html>`;
    await page.route(`${TUTORIAL_ORIGIN}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html }));
  }
  const target = other ? `${TUTORIAL_ORIGIN}/` : url;
  setStep(`goto ${target}`);
  await page.goto(target, { waitUntil: 'load' });
  const sample = () => page.evaluate(() => {
    const video = document.getElementById('player');
    const e = window.hlsdEmbed;
    const h = e?.hls;
    const details = h?.levels?.[Math.max(h.currentLevel, 0)]?.details;
    // LL-HLS: the parts hls.js sees and whether it may block its reloads.
    const ll = { parts: details?.partList?.length ?? 0, canBlockReload: details?.canBlockReload ?? null, lowLatencyMode: h?.lowLatencyMode ?? null };
    return e ? { currentTime: video.currentTime, errors: e.errors, live: details?.live ?? null, hlsLatency: h?.latency ?? null, now: Date.now(), ...ll } : null;
  }).catch((e) => ({ evalError: String(e) }));
  const latencies = [];
  setStep('wait for the live to play past 2 s');
  const st = await poll(async () => {
    const v = await sample();
    if (!v || v.evalError) return { done: false, ...v };
    if (v.currentTime > 0.5) latencies.push((v.now - pushStart) / 1000 - v.currentTime);
    const enough = sampleSecs ? latencies.length >= sampleSecs * 2 : v.currentTime > 2;
    return { ...v, done: enough || v.errors.length > 0 || diag.pageErrors.length > 0 };
  }, { timeoutMs: 90_000 + sampleSecs * 1000, every: 500 });
  await screenshot();
  const problems = [];
  if (!(st.currentTime > 2)) problems.push(`the live did not play past 2 s (at ${st.currentTime})`);
  if (st.live !== true) problems.push(`hls.js did not see a live playlist (live=${st.live})`);
  if (st.errors?.length) problems.push(`player errors: ${st.errors.join('; ')}`);
  if (diag.pageErrors.length) problems.push(`uncaught page exception(s): ${diag.pageErrors[0].split('\n')[0]}`);
  // The page's go-live panel, and the library's badge on the live.
  let panel = null;
  const liveId = process.env.HLSD_LIVE_ID;
  if (liveId) {
    setStep('the go-live panel and the LIVE badge');
    await page.goto(`${baseUrl}/`, { waitUntil: 'load' });
    await page.click('#live-btn');
    panel = await poll(async () => {
      const v = await page.evaluate((id) => ({
        key: document.getElementById('live-key').textContent,
        rtmp: document.getElementById('live-rtmp').textContent,
        badge: !!document.querySelector(`#library li[data-id="${id}"] .badge-live`),
      }), liveId);
      return { ...v, done: v.key.length >= 32 && v.badge };
    }, { timeoutMs: 60_000, every: 500 });
    if (!(panel.key.length >= 32)) problems.push(`the go-live panel shows no key (${JSON.stringify(panel)})`);
    if (!panel.rtmp.startsWith('rtmp://')) problems.push(`the go-live panel shows no RTMP server (${JSON.stringify(panel)})`);
    if (!panel.badge) problems.push('the library shows no LIVE badge on the live');
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
  return {
    ok: problems.length === 0,
    ...(problems.length ? { error: problems.join('; ') } : {}),
    currentTime: st.currentTime,
    live: st.live,
    hlsLatency: st.hlsLatency,
    parts: st.parts,
    canBlockReload: st.canBlockReload,
    lowLatencyMode: st.lowLatencyMode,
    samples: latencies.length,
    latencyP50: at(0.5),
    latencyP95: at(0.95),
    panel,
  };
}

// ---------------------------------------------------------------------------

try {
  const r = await SCENARIOS[scenario]();
  await finish({ scenario, baseUrl, screenshot: existsSync(screenshotPath) ? screenshotPath : null, ...r });
} catch (e) {
  log(`error in step "${step}": ${e?.stack || e}`);
  await screenshot();
  await finish({ ok: false, scenario, error: `${step}: ${String(e?.message || e).split('\n')[0]}`, step });
}
