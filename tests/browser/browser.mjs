// Shared Chromium settings for run.mjs and selftest.mjs.
export const CHROMIUM_PATH = process.env.HLSD_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

// Only for the "tutorial" scenario. Its page (http://tutorial.local/) is answered
// by page.route, so Chromium sees no IP address for it and files it under the
// "public" address space; Chromium's Local Network Access checks then block every
// request from it to hlsd on 127.0.0.1 ("Permission was denied for this request to
// access the `loopback` address space" / "The request client is not a secure
// context and the resource is in more-private address space `loopback`"), before
// CORS is even considered. In real use the page and hlsd share a network, so this
// one check is turned off here; CORS itself stays fully enforced.
export const TUTORIAL_EXTRA_ARGS = ['--disable-features=LocalNetworkAccessChecks'];
