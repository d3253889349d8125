// Self-test: can playwright-core drive Debian's /usr/bin/chromium headless here?
// Usage: node tests/browser/selftest.mjs [screenshotPath]
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CHROMIUM_PATH, CHROMIUM_ARGS } from './browser.mjs';

const shot = process.argv[2] || path.join(tmpdir(), 'hlsd-selftest.png');
const userDataDir = mkdtempSync(path.join(tmpdir(), 'hlsd-chromium-'));
const t0 = Date.now();
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 640, height: 360 },
  });
  const page = context.pages()[0] || (await context.newPage());
  await page.goto('data:text/html,<h1>hi</h1>');
  const text = await page.textContent('h1');
  const version = context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));
  await page.screenshot({ path: shot, fullPage: true });
  const ok = text === 'hi' && statSync(shot).size > 0;
  console.log(JSON.stringify({ ok, text, version, screenshot: shot, ms: Date.now() - t0 }));
  process.exitCode = ok ? 0 : 1;
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.message || e) }));
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
