#!/usr/bin/env node
// N simulated HLS players against one server (benches/serve_vs_nginx.sh).
//
//   node benches/players.mjs <master playlist URL> <players> <seconds> [period s]
//
// Each player keeps one keep-alive connection, as players do: it fetches
// the master playlist once, then every period (default 6 s, one segment's
// length, as a player of a live stream does) its media playlist and its
// next segment (wrapping around at the end), starting at a random offset
// so the load is spread. Prints the request count, errors (non-200 or network) and
// the latency percentiles of playlists and segments.

import http from 'node:http';

const [url, playersArg, secondsArg, periodArg] = process.argv.slice(2);
const PLAYERS = Number(playersArg || 200);
const SECONDS = Number(secondsArg || 40);
const PERIOD_MS = Number(periodArg || 6) * 1000;

// A GET; keeps the body only when `keep` (segments are counted, not kept).
const get = (agent, u, keep = true) =>
  new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = http.get(u, { agent }, (res) => {
      const chunks = [];
      let bytes = 0;
      res.on('data', (c) => {
        bytes += c.length;
        if (keep) chunks.push(c);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode, bytes, body: Buffer.concat(chunks), ms: Number(process.hrtime.bigint() - t0) / 1e6 }),
      );
      res.on('error', (e) => resolve({ status: 0, error: String(e), ms: 0 }));
    });
    req.on('error', (e) => resolve({ status: 0, error: String(e), ms: 0 }));
  });

const uris = (text) => text.split('\n').filter((l) => l && !l.startsWith('#'));
const lat = { playlist: [], segment: [] };
let requests = 0;
let bytes = 0;
const errors = [];

async function player(i, end) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const m = await get(agent, url);
  requests++;
  if (m.status !== 200) return errors.push(`master ${m.status} ${m.error || ''}`);
  const text = m.body.toString();
  const variants = uris(text);
  const media = text.includes('#EXT-X-STREAM-INF') ? new URL(variants[i % variants.length], url).href : url;
  let n = -1;
  await new Promise((r) => setTimeout(r, Math.random() * PERIOD_MS));
  while (Date.now() < end) {
    const started = Date.now();
    const p = await get(agent, media);
    requests++;
    if (p.status !== 200) errors.push(`playlist ${p.status} ${p.error || ''}`);
    else {
      lat.playlist.push(p.ms);
      const segs = uris(p.body.toString());
      if (n < 0) n = Math.floor(Math.random() * segs.length);
      const s = await get(agent, new URL(segs[n++ % segs.length], media).href, false);
      bytes += s.bytes;
      requests++;
      if (s.status !== 200) errors.push(`segment ${s.status} ${s.error || ''}`);
      else lat.segment.push(s.ms);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, PERIOD_MS - (Date.now() - started))));
  }
  agent.destroy();
}

const pct = (a, p) => {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const end = Date.now() + SECONDS * 1000;
await Promise.all(Array.from({ length: PLAYERS }, (_, i) => player(i, end)));
for (const k of ['playlist', 'segment']) {
  console.log(
    `   ${k.padEnd(8)} ${String(lat[k].length).padStart(6)} ok  p50 ${pct(lat[k], 50).toFixed(1)} ms  p99 ${pct(lat[k], 99).toFixed(1)} ms  max ${Math.max(...lat[k]).toFixed(1)} ms`,
  );
}
console.log(`   players ${PLAYERS}, requests ${requests}, segment bytes ${(bytes / 1e6).toFixed(0)} MB, errors ${errors.length}${errors.length ? ': ' + errors.slice(0, 5).join('; ') : ''}`);
process.exit(errors.length ? 1 : 0);
