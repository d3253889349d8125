#!/usr/bin/env node
// tus 1.0 upload CLI for hlsd's tests, around tus-js-client (Node build).
//
//   node tests/browser/tus.mjs upload --endpoint http://127.0.0.1:PORT/files/ --file clip.mp4 [options]
//   node tests/browser/tus.mjs resume --upload-url http://127.0.0.1:PORT/files/ID --file clip.mp4 [options]
//   node tests/browser/tus.mjs direct --upload-url 'http://127.0.0.1:PORT/files/ID?token=S' --file clip.mp4 [options]
//
// upload: creates the upload (POST --endpoint), then PATCHes it.
// resume: an existing upload: HEAD, then PATCH from the server's Upload-Offset.
// direct: like resume, with --defer-length implied (POST /videos/direct-upload's
//         upload_url was created with a deferred length).
//
// Options:
//   --endpoint URL            creation endpoint (POST), e.g. http://127.0.0.1:PORT/files/
//   --upload-url URL          an existing upload (resume, or POST /videos/direct-upload's upload_url)
//   --file PATH               the file to upload
//   --chunk-size N|inf        bytes per PATCH (default 262144; inf = one PATCH for the rest)
//   --header 'Name: value'    extra request header, repeatable (e.g. 'Authorization: Bearer T')
//   --metadata key=value      Upload-Metadata entry, repeatable (filename defaults to the basename)
//   --defer-length            Upload-Defer-Length: 1 (the length is sent with the last PATCH)
//   --retry-delays 0,500,1000 retry delays in ms (default: none, fail fast). tus-js-client
//                             resets the count whenever an attempt made progress.
//   --stop-after BYTES        abort once BYTES were sent, then HEAD the upload for its offset
//                             (progress comes every 100 ms and at each chunk's end: pair it
//                             with --throttle-bytes-per-sec or a small --chunk-size)
//   --wait-stdin              with --stop-after: wait for a line on stdin, then resume the
//                             same upload (HEAD + PATCH) and run to the end
//   --url-file PATH           write the upload URL there as soon as it is known
//   --throttle-bytes-per-sec N  send at most N bytes per second
//   --timeout-secs N          give up after N seconds (default 600)
//
// Prints exactly ONE line of JSON on stdout at the end and exits 0 only when ok:
//   {"ok":true,"url","id","bytes","offset","offsetAtStart","created","requests",...}
//   {"ok":true,"stopped":true,"url","id","bytes","sent","offset",...}   (--stop-after)
//   {"ok":false,"error","status","code","body",...}
// `created` is the parsed JSON body of the (latest) POST answer (creation only);
// `offsetAtStart` the Upload-Offset of the first HEAD (resume only);
// `requests` lists "METHOD status" of every answered request, `retries` counts
// the retries (a request that got no answer is only logged). Progress goes to stderr;
// with --wait-stdin the stop is announced on stderr as one line
// `tus.mjs: stopped {"url":...,"offset":...}` before waiting.

import * as tus from 'tus-js-client';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import readline from 'node:readline';

const T0 = Date.now();
const log = (...a) => process.stderr.write(`[tus.mjs +${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`);

// ---------------------------------------------------------------- output

let finished = false;

async function finish(result) {
  if (finished) return new Promise(() => {});
  finished = true;
  const out = { ok: result.ok === true, ...result, elapsedMs: Date.now() - T0 };
  await new Promise((r) => process.stdout.write(JSON.stringify(out) + '\n', r));
  process.exit(out.ok ? 0 : 1);
  return new Promise(() => {});
}

process.on('unhandledRejection', (e) => finish({ ok: false, error: `unhandled rejection: ${e?.stack || e}` }));
process.on('uncaughtException', (e) => finish({ ok: false, error: `uncaught exception: ${e?.stack || e}` }));

// ------------------------------------------------------------- arguments

const USAGE = 'usage: node tests/browser/tus.mjs <upload|resume|direct> (--endpoint URL | --upload-url URL) --file PATH [options]';
const MODES = ['upload', 'resume', 'direct'];
const REPEATABLE = new Set(['header', 'metadata']);
const FLAGS = new Set(['defer-length', 'wait-stdin']);
const VALUED = new Set(['endpoint', 'upload-url', 'file', 'chunk-size', 'retry-delays', 'stop-after',
  'url-file', 'throttle-bytes-per-sec', 'timeout-secs', ...REPEATABLE]);

function parseArgs(argv) {
  const opts = { mode: argv[0], header: [], metadata: [] };
  for (let i = 1; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    if (FLAGS.has(name)) { opts[name] = true; continue; }
    if (!VALUED.has(name)) throw new Error(`unknown option ${argv[i]}`);
    if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
    if (REPEATABLE.has(name)) opts[name].push(argv[++i]);
    else opts[name] = argv[++i];
  }
  return opts;
}

function number(value, what) {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${what} must be a number >= 0, got ${JSON.stringify(value)}`);
  return n;
}

function headersOf(list) {
  const h = {};
  for (const line of list) {
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`--header must be 'Name: value', got ${JSON.stringify(line)}`);
    h[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return h;
}

function metadataOf(list, file) {
  const m = { filename: path.basename(file) };
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--metadata must be key=value, got ${JSON.stringify(kv)}`);
    m[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return m;
}

function config(argv) {
  if (!MODES.includes(argv[0])) throw new Error(USAGE);
  const o = parseArgs(argv);
  if (!o.file) throw new Error('--file is required');
  if (o.mode === 'upload' && !o.endpoint) throw new Error('upload needs --endpoint');
  if (o.mode !== 'upload' && !o['upload-url']) throw new Error(`${o.mode} needs --upload-url`);
  if (o.mode === 'direct') o['defer-length'] = true;
  const chunk = o['chunk-size'] ?? '262144';
  return {
    mode: o.mode,
    endpoint: o.endpoint || null,
    uploadUrl: o['upload-url'] || null,
    file: o.file,
    chunkSize: /^inf(inity)?$/i.test(chunk) ? Infinity : number(chunk, '--chunk-size') || Infinity,
    headers: headersOf(o.header),
    metadata: metadataOf(o.metadata, o.file),
    deferLength: !!o['defer-length'],
    retryDelays: o['retry-delays'] ? o['retry-delays'].split(',').map((d) => number(d, '--retry-delays')) : null,
    stopAfter: o['stop-after'] != null ? number(o['stop-after'], '--stop-after') : null,
    waitStdin: !!o['wait-stdin'],
    urlFile: o['url-file'] || null,
    rate: o['throttle-bytes-per-sec'] != null ? number(o['throttle-bytes-per-sec'], '--throttle-bytes-per-sec') : 0,
    timeoutSecs: o['timeout-secs'] != null ? number(o['timeout-secs'], '--timeout-secs') : 600,
  };
}

// ----------------------------------------------------------------- source

// A Readable that releases `buf` at `rate` bytes per second (in pieces of
// at most 1/10 s worth), so an upload can be kept in progress for a while.
class ThrottledReadable extends Readable {
  constructor(buf, rate) {
    super();
    this.buf = buf;
    this.rate = rate;
    this.pos = 0;
    this.t0 = Date.now();
    this.timer = null;
  }

  _read() {
    if (this.pos >= this.buf.length) { this.push(null); return; }
    const allowed = Math.floor(((Date.now() - this.t0) / 1000) * this.rate) - this.pos;
    if (allowed <= 0) {
      this.timer = setTimeout(() => { this.timer = null; this._read(); }, 50);
      return;
    }
    const n = Math.min(allowed, Math.max(1, Math.ceil(this.rate / 10)), this.buf.length - this.pos);
    const piece = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.push(piece);
  }

  _destroy(err, cb) {
    clearTimeout(this.timer);
    cb(err);
  }
}

// tus-js-client's own file source reports wrong sizes for a deferred length
// (a short last slice, `done` never true), so the file is read into memory
// and sliced here: a Buffer, or a throttled Readable with its size attached
// (the Node HTTP stack sends `value.size` as Content-Length).
function fileReader(rate) {
  return {
    openFile(buf) {
      return Promise.resolve({
        size: buf.length,
        slice(start, end) {
          const value = buf.subarray(start, Math.min(end, buf.length));
          const done = end >= buf.length;
          if (!rate || value.length === 0) { value.size = value.length; return Promise.resolve({ value, done }); }
          const stream = new ThrottledReadable(value, rate);
          stream.size = value.length;
          return Promise.resolve({ value: stream, done });
        },
        close() {},
      });
    },
  };
}

// --------------------------------------------------------------- helpers

const idOf = (url) => {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').filter(Boolean).pop() || '') || null;
  } catch {
    return null;
  }
};

// The server's errors are {"error":{"code","message"}}.
function describeError(err) {
  const res = err && err.originalResponse;
  const out = { error: String((err && err.message) || err) };
  if (!res) return out;
  out.status = res.getStatus();
  const body = res.getBody() || '';
  out.body = body.slice(0, 2000);
  try {
    const e = JSON.parse(body).error;
    if (e) Object.assign(out, { code: e.code, error: `HTTP ${out.status}: ${e.message || e.code}` });
  } catch {
    /* not JSON */
  }
  return out;
}

// HEAD the upload for the server's Upload-Offset (after --stop-after).
async function serverOffset(url, headers) {
  try {
    const res = await fetch(url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } });
    const off = Number.parseInt(res.headers.get('upload-offset'), 10);
    return { offset: Number.isNaN(off) ? null : off, headStatus: res.status };
  } catch (e) {
    return { offset: null, headError: String(e.message || e) };
  }
}

function readLine() {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.once('line', () => { rl.close(); resolve(); });
    rl.once('close', resolve); // stdin closed: resume as well
  });
}

// ------------------------------------------------------------------ upload

async function main() {
  let cfg, buf;
  try {
    cfg = config(process.argv.slice(2));
    buf = readFileSync(cfg.file);
  } catch (e) {
    return finish({ ok: false, error: e.message });
  }

  const st = { created: null, offsetAtStart: null, requests: [], retries: 0, sent: 0, stopped: false, lastLog: 0 };
  let upload = null;
  const state = () => ({
    url: upload?.url || null,
    id: upload?.url ? idOf(upload.url) : null,
    bytes: buf.length,
    sent: st.sent,
    ...(st.created ? { created: st.created } : {}),
    ...(st.offsetAtStart != null ? { offsetAtStart: st.offsetAtStart } : {}),
    ...(st.resumedAfterStop ? { resumedAfterStop: st.resumedAfterStop } : {}),
    requests: st.requests,
    retries: st.retries,
  });
  setTimeout(() => finish({ ok: false, error: `timeout after ${cfg.timeoutSecs} s`, ...state() }), cfg.timeoutSecs * 1000).unref();

  const onAfterResponse = (req, res) => {
    const method = req.getMethod();
    const status = res.getStatus();
    const offset = res.getHeader('Upload-Offset');
    if (st.requests.length < 500) st.requests.push(`${method} ${status}`);
    log(`${method} ${req.getURL()} -> ${status}${offset != null ? ` (Upload-Offset ${offset})` : ''}`);
    const ok = status >= 200 && status < 300;
    if (method === 'POST' && ok) { // the latest creation (a failed HEAD may make a new one)
      try {
        st.created = JSON.parse(res.getBody());
      } catch {
        st.created = null;
      }
    }
    if (method === 'HEAD' && ok && st.offsetAtStart == null && !Number.isNaN(Number.parseInt(offset, 10))) {
      st.offsetAtStart = Number.parseInt(offset, 10);
    }
  };

  const onUploadUrlAvailable = () => {
    log(`upload url ${upload.url}`);
    if (cfg.urlFile) writeFileSync(cfg.urlFile, upload.url + '\n');
  };

  // --stop-after: abort, ask the server where it stands, then exit or wait.
  const stop = async () => {
    st.stopped = true;
    await upload.abort();
    await new Promise((r) => setTimeout(r, 200)); // let the server settle the cut PATCH
    const info = { ...state(), stopped: true, ...(await serverOffset(upload.url, cfg.headers)) };
    if (!cfg.waitStdin) return finish({ ok: true, ...info });
    process.stderr.write(`tus.mjs: stopped ${JSON.stringify({ url: info.url, offset: info.offset, sent: info.sent })}\n`);
    await readLine();
    log('resuming');
    st.resumedAfterStop = { offset: info.offset, sent: info.sent };
    upload.start(); // HEAD, then PATCH from the server's offset
  };

  const onProgress = (sent, total) => {
    st.sent = sent;
    if (Date.now() - st.lastLog >= 1000 || sent === total) {
      st.lastLog = Date.now();
      log(`progress ${sent} / ${total ?? '?'}`);
    }
    if (cfg.stopAfter != null && !st.stopped && sent >= cfg.stopAfter && upload.url) {
      stop().catch((e) => finish({ ok: false, error: `stop: ${e.message || e}`, ...state() }));
    }
  };

  // tus-js-client's default rule (no retry on a 4xx but 409 and 423), logged.
  const onShouldRetry = (err, attempt) => {
    const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
    const retry = !(status >= 400 && status < 500) || status === 409 || status === 423;
    if (retry) {
      st.retries++;
      log(`retry ${attempt + 1} in ${cfg.retryDelays[attempt]} ms after: ${err.message || err}`);
    }
    return retry;
  };

  const onSuccess = ({ lastResponse }) => {
    const off = Number.parseInt(lastResponse && lastResponse.getHeader('Upload-Offset'), 10);
    finish({ ok: true, ...state(), offset: Number.isNaN(off) ? null : off });
  };

  const onError = (err) => {
    log(`error: ${err.message || err}`);
    finish({ ok: false, ...state(), ...describeError(err) });
  };

  upload = new tus.Upload(buf, {
    endpoint: cfg.endpoint,
    uploadUrl: cfg.uploadUrl,
    chunkSize: cfg.chunkSize,
    headers: cfg.headers,
    metadata: cfg.metadata,
    uploadLengthDeferred: cfg.deferLength,
    retryDelays: cfg.retryDelays,
    storeFingerprintForResuming: false,
    fileReader: fileReader(cfg.rate),
    onAfterResponse,
    onUploadUrlAvailable,
    onProgress,
    onShouldRetry,
    onSuccess,
    onError,
  });
  log(`${cfg.mode}: ${cfg.uploadUrl ? `resuming ${cfg.uploadUrl}` : `creating at ${cfg.endpoint}`}, ${cfg.file} (${buf.length} bytes)`);
  upload.start();
}

main();
