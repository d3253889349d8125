#!/usr/bin/env node
// Strict HLS playlist linter for the integration tests (npm hls-parser in
// strict mode, plus the few rules it leaves out). Reads one JSON line per
// playlist on stdin, {"uri": "...", "text": "..."}, and answers one line per
// playlist on stdout: {"ok":true,"kind":"master"|"media"} or
// {"ok":false,"error":"..."}. Stays alive until stdin closes, so one process
// serves a whole test binary.
import HLS from 'hls-parser';
import readline from 'node:readline';

HLS.setOptions({ strictMode: true, silent: true });

function extraRules(pl, text) {
  if (!text.startsWith('#EXTM3U')) throw new Error('the first line must be #EXTM3U');
  if (pl.isMasterPlaylist) {
    if (pl.variants.length === 0) throw new Error('a master playlist without variants');
    for (const v of pl.variants) {
      if (!v.bandwidth) throw new Error(`variant ${v.uri}: BANDWIDTH is required`);
      if (!v.codecs) throw new Error(`variant ${v.uri}: CODECS should be present`);
      if (!v.resolution && !v.isIFrameOnly) throw new Error(`variant ${v.uri}: RESOLUTION should be present`);
    }
    return 'master';
  }
  if (pl.playlistType === 'VOD' && !pl.endlist) throw new Error('a VOD playlist must end with #EXT-X-ENDLIST');
  if (pl.playlistType === 'EVENT' && pl.mediaSequenceBase > 0) throw new Error('an EVENT playlist never drops segments');
  pl.segments.forEach((s, i) => {
    // LL-HLS: the segment being made is only parts (and the preload hint)
    // after the last whole one.
    const open = i === pl.segments.length - 1 && !s.uri && s.parts.length > 0;
    if (!open && !(s.duration >= 0)) throw new Error(`segment ${s.uri}: no EXTINF duration`);
  });
  return 'media';
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let out;
  try {
    const { uri, text } = JSON.parse(line);
    try {
      const pl = HLS.parse(text);
      out = { ok: true, kind: extraRules(pl, text) };
    } catch (e) {
      out = { ok: false, error: `${uri}: ${e.message}` };
    }
  } catch (e) {
    out = { ok: false, error: `bad request to the linter: ${e.message}` };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});
