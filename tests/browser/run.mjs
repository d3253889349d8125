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
//   tutorial  the original Node.js tutorial's page (fetch + FormData, then
//             video.js) served from another origin (http://tutorial.local/,
//             answered by page.route), uploading to and playing from hlsd.
//
// Prints exactly ONE line of JSON on stdout at the end: {"ok":true,...} or
// {"ok":false,"error":"...",...}; exits 0 only when ok. Progress goes to stderr.
// A hard overall timeout (150 s) ends the run with a JSON error and exit 1.

import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_PATH, CHROMIUM_ARGS, TUTORIAL_EXTRA_ARGS } from './browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// 150 s; HLSD_BROWSER_TIMEOUT_MS may shorten it (to test the timeout path itself).
const HARD_TIMEOUT_MS = Math.min(150_000, Number(process.env.HLSD_BROWSER_TIMEOUT_MS) || 150_000);
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

const SCENARIOS = { ui: () => scenarioUi(), 'tus-reload': () => scenarioTusReload(), tutorial: () => scenarioTutorial() };
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
    ...(scenario === 'tutorial' ? TUTORIAL_EXTRA_ARGS : []),
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

// Waits for status "ready", plays #player until currentTime > 5, collects.
async function readyAndPlay(t, playbackUrl) {
  const { statusHistory, sample, track } = t;
  setStep('wait for status "ready"');
  const s = await poll(async () => {
    const v = await sample();
    return { ...v, done: isReady(v.status) || /\bfailed\b/i.test(v.status) };
  }, { timeoutMs: 90_000, every: 500, onTick: track });
  if (!isReady(s.status)) {
    await screenshot();
    return { ok: false, error: `#status-text did not reach "ready" (last: ${JSON.stringify(s.status)})`, playbackUrl, statusHistory, progressMax: t.progressMax };
  }

  setStep('play');
  const play = () =>
    page.evaluate(() => {
      const v = document.getElementById('player');
      v.muted = true;
      const p = v.play();
      return Promise.race([
        Promise.resolve(p).then(() => 'playing', (e) => `rejected: ${e?.name}: ${e?.message}`),
        new Promise((r) => setTimeout(() => r('pending'), 10_000)),
      ]);
    });
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

try {
  const r = await SCENARIOS[scenario]();
  await finish({ scenario, baseUrl, screenshot: existsSync(screenshotPath) ? screenshotPath : null, ...r });
} catch (e) {
  log(`error in step "${step}": ${e?.stack || e}`);
  await screenshot();
  await finish({ ok: false, scenario, error: `${step}: ${String(e?.message || e).split('\n')[0]}`, step });
}
