// Session recording and the auditor's playback, in real Chromium against the real `haetae up`
// started with a recording public key (`haetae remote keygen`; HAETAE_CONTROL__RECORDING_KEY).
// A separate story from remote.test.mjs: the agent console records a session (the customer's
// tab with a changing counter, chat, the pointer) encrypted in the browser; an auditor opens
// the session's playback page, a wrong key file is refused, the right one decrypts in the
// browser and the canvas shows the customer's counter values again; the encrypted bundle
// downloaded from the Center is decrypted by `haetae remote export-recording` (Rust undoes
// what WebCrypto did) into an H.264 Annex B stream and the events.
//
// Run: cargo build -p haetae && HAETAE_UP_BINARY=target/debug/haetae \
//        HAETAE_TEST_BROWSER=/usr/bin/chromium node --test tests/browser/remote-recording.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const HAETAE = process.env.HAETAE_UP_BINARY;
const BROWSER = process.env.HAETAE_TEST_BROWSER ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'target', 'browser-screenshots');
const PASSWORD = 'recording browser test password';
const SKIP = !HAETAE ? 'HAETAE_UP_BINARY not set (run .ci/suites/50-remote.sh)'
  : !existsSync(BROWSER) ? `${BROWSER} not found (HAETAE_TEST_BROWSER)` : false;

const BITS = 10;
const VIEW = { width: 1280, height: 720 };
const BLOCKS = Array.from({ length: BITS }, (_, i) => ({ x: 40 + i * 110, y: 590, w: 90, h: 90 }));
const CHAT = '녹화 확인용 메시지 / recorded chat 4711';

let haetae;
let dir;
let base;
let chromium;
let agentBrowser;
let customerBrowser;
let agent;
let customer;
let keyFile;
let otherKeyFile;
const errors = [];

function freePort() {
  return new Promise((done, reject) => {
    const probe = createNetServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/** `haetae remote keygen`: the private key file and the public key it prints. */
function keygen(path) {
  const out = execFileSync(HAETAE, ['remote', 'keygen', '--out', path], { encoding: 'utf8' });
  const m = /recording_key = "([0-9a-f]{130})"/.exec(out);
  assert.ok(m, out);
  return m[1];
}

async function startUp(recordingKey) {
  const [center, gateway, admin] = [await freePort(), await freePort(), await freePort()];
  haetae = spawn(HAETAE, ['up'], {
    env: {
      ...process.env,
      HAETAE_DATA_DIR: join(dir, 'data'),
      HAETAE_CONTROL__LISTEN: `127.0.0.1:${center}`,
      HAETAE_CONTROL__RECORDING_KEY: recordingKey,
      HAETAE_GATEWAY__LISTEN: `127.0.0.1:${gateway}`,
      HAETAE_GATEWAY__ADMIN_LISTEN: `127.0.0.1:${admin}`,
      HAETAE_ADMIN_PASSWORD: PASSWORD,
      HAETAE_LOG__LEVEL: process.env.HAETAE_TEST_LOG ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${center}`;
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (haetae.exitCode !== null) throw new Error(`haetae up exited with ${haetae.exitCode}`);
    try { if ((await fetch(`${url}/login`)).ok) return url; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${HAETAE} up did not answer on ${url} within 60 s`);
}

async function launch(extra) {
  return chromium.launch({
    executablePath: BROWSER,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extra],
  });
}

async function newPage(browser, name) {
  const ctx = await browser.newContext({ locale: 'ko-KR', viewport: VIEW, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    // The agent-role page is refused the player on purpose: its 403 is the expected answer.
    if (name === 'agent-role' && /status of 403/.test(m.text())) return;
    if (m.type() === 'error') errors.push(`${name}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${name}: ${e}`));
  return page;
}

async function loginAs(page, user, landing) {
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL(`${base}${landing}`), page.click('button[type=submit]')]);
}

/** The customer's page draws a counter as BITS black/white blocks every `ms` and remembers when
 * each value appeared. */
async function startCounter(page, ms) {
  await page.evaluate(({ blocks, ms }) => {
    const box = document.createElement('div');
    Object.assign(box.style, { position: 'fixed', left: '0', top: '570px', width: '100%', height: '130px', background: '#808080', zIndex: 3000 });
    const cells = blocks.map((b) => {
      const d = document.createElement('div');
      Object.assign(d.style, { position: 'fixed', left: `${b.x}px`, top: `${b.y}px`, width: `${b.w}px`, height: `${b.h}px`, zIndex: 3001 });
      box.append(d);
      return d;
    });
    document.body.append(box);
    window.__shown = {};
    let n = 0;
    const show = () => {
      n = (n + 1) % (1 << blocks.length);
      cells.forEach((c, i) => { c.style.background = (n >> i) & 1 ? '#fff' : '#000'; });
      window.__shown[n] = Date.now();
    };
    show();
    window.__counter = setInterval(show, ms);
  }, { blocks: BLOCKS, ms });
}

/** Reads the counter from a canvas on every animation frame until stopped; returns the values. */
function readCanvas(page, canvasId) {
  return page.evaluate(({ id, blocks, view }) => {
    const canvas = document.getElementById(id);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    window.__seen = {};
    window.__reading = true;
    const read = () => {
      if (!window.__reading) return;
      const sx = canvas.width / view.width;
      const sy = canvas.height / view.height;
      let v = 0;
      let grey = false;
      blocks.forEach((b, i) => {
        const px = ctx.getImageData(Math.round((b.x + b.w / 2) * sx) - 3, Math.round((b.y + b.h / 2) * sy) - 3, 6, 6).data;
        let lum = 0;
        for (let k = 0; k < px.length; k += 4) lum += (px[k] + px[k + 1] + px[k + 2]) / 3;
        lum /= px.length / 4;
        if (lum > 60 && lum < 196) grey = true; // a blend, or an empty canvas
        if (lum > 128) v |= 1 << i;
      });
      if (!grey) window.__seen[v] = (window.__seen[v] ?? 0) + 1;
      requestAnimationFrame(read);
    };
    requestAnimationFrame(read);
  }, { id: canvasId, blocks: BLOCKS, view: VIEW });
}

before(async () => {
  if (SKIP) return;
  ({ chromium } = await import('playwright-core'));
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'haetae-up-recording-'));
  keyFile = join(dir, 'recording-key.json');
  otherKeyFile = join(dir, 'other-key.json');
  const pub = keygen(keyFile);
  keygen(otherKeyFile);
  base = await startUp(pub);
  agentBrowser = await launch([]);
  customerBrowser = await launch(['--auto-accept-this-tab-capture']);
  agent = await newPage(agentBrowser, 'agent');
  customer = await newPage(customerBrowser, 'customer');
  await loginAs(agent, 'admin', '/');
});

after(async () => {
  await agentBrowser?.close();
  await customerBrowser?.close();
  haetae?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('session recording and auditor playback', { skip: SKIP }, () => {
  let session;
  let shown;

  it('keygen refuses to overwrite a key file and writes it owner-only', () => {
    assert.throws(() => execFileSync(HAETAE, ['remote', 'keygen', '--out', keyFile], { stdio: 'pipe' }));
    const key = JSON.parse(readFileSync(keyFile, 'utf8'));
    assert.equal(key.kind, 'haetae-recording-private-key');
    assert.equal(key.crv, 'P-256');
  });

  it('the agent console records a session encrypted to the organisation key', async () => {
    await agent.goto(`${base}/remote`);
    await agent.click('#rs-issue');
    await agent.waitForFunction(() => document.getElementById('rs-code').dataset.code);
    const code = await agent.$eval('#rs-code', (el) => el.dataset.code);
    await customer.goto(`${base}/r/${code}`);
    // The consent text tells the customer the session may be recorded, and who can replay it.
    assert.match(await customer.textContent('#rs-consent'), /녹화될 수 있습니다/);
    assert.match(await customer.textContent('#rs-consent'), /only authorised auditors can replay/);
    await customer.check('#rs-agree');
    await customer.click('#rs-connect');
    await agent.waitForSelector('#rs-sas-box:not([hidden])');
    assert.equal(await agent.textContent('#rs-sas'), await customer.textContent('#rs-sas'));
    await agent.click('#rs-sas-ok');
    await customer.waitForSelector('#rs-step-share:not([hidden])');
    await agent.waitForFunction(() => document.getElementById('rs-agent').dataset.recording === 'recording');
    session = await agent.$eval('#rs-agent', (el) => el.dataset.session);
    await startCounter(customer, 100);
    await customer.click('#rs-share');
    await agent.waitForFunction(() => Number(document.getElementById('rs-screen').dataset.frames ?? 0) > 5, null, { timeout: 30000 });
    await new Promise((r) => setTimeout(r, 4000));
    await customer.fill('#rs-chat-input', CHAT);
    await customer.click('#rs-chat-form button');
    await agent.waitForSelector(`#rs-chat-log li.peer:has-text("${CHAT}")`);
    const box = await agent.locator('#rs-screen').boundingBox();
    await agent.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.25, { steps: 5 });
    await new Promise((r) => setTimeout(r, 1500));
    await agent.click('#rs-end');
    await agent.waitForFunction(() => ['done', 'failed'].includes(document.getElementById('rs-agent').dataset.recording), null, { timeout: 30000 });
    assert.equal(await agent.$eval('#rs-agent', (el) => el.dataset.recording), 'done');
    shown = await customer.evaluate(() => { clearInterval(window.__counter); return window.__shown; });
    assert.match(await agent.textContent('#rs-log'), /녹화 저장됨/);
  });

  it('an agent cannot replay recordings; an auditor sees the player', async () => {
    const r = await agent.evaluate(async () => {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const res = await fetch('/api/v1/users', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify({ username: 'kim.auditor', password: 'recording browser test password', role: 'auditor' }) });
      const res2 = await fetch('/api/v1/users', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify({ username: 'lee.agent', password: 'recording browser test password', role: 'agent' }) });
      return [res.status, res2.status];
    });
    assert.ok(r.every((s) => s < 300), JSON.stringify(r));
    const lee = await newPage(agentBrowser, 'agent-role');
    await loginAs(lee, 'lee.agent', '/remote');
    const res = await lee.goto(`${base}/remote/history/${session}/playback`);
    assert.equal(res.status(), 403);
    await lee.close();
  });

  it('a wrong key is refused; the right key replays the customer counter in the browser', async (t) => {
    const auditor = await newPage(agentBrowser, 'auditor');
    await loginAs(auditor, 'kim.auditor', '/');
    await auditor.goto(`${base}/remote/history/${session}`);
    await auditor.click('#rs-playback');
    await auditor.waitForSelector('#rp');
    // Another organisation's key: refused, nothing decoded.
    await auditor.setInputFiles('#rp-key', otherKeyFile);
    await auditor.waitForFunction(() => document.getElementById('rp').dataset.state === 'error');
    assert.match(await auditor.textContent('#rp-status'), /does not open the recording/);
    assert.equal(await auditor.$eval('#rp-screen', (c) => c.dataset.frames ?? '0'), '0');
    // The right key: the key file stays in the browser (no request carries it).
    const bodies = [];
    auditor.on('request', (req) => { if (req.postData()) bodies.push(req.postData()); });
    await auditor.setInputFiles('#rp-key', keyFile);
    await auditor.waitForFunction(() => document.getElementById('rp').dataset.state === 'ready', null, { timeout: 30000 });
    const d = JSON.parse(readFileSync(keyFile, 'utf8')).d;
    assert.ok(!bodies.some((b) => b.includes(d)), 'the private key was sent to the server');
    const frames = Number(await auditor.$eval('#rp', (el) => el.dataset.frames));
    assert.ok(frames >= 10, `${frames} frames recorded`);
    assert.match(await auditor.textContent('#rp-events'), new RegExp(CHAT.replace(/[/]/g, '\\/')));
    await readCanvas(auditor, 'rp-screen');
    await auditor.click('#rp-play');
    await auditor.waitForFunction(() => document.getElementById('rp').dataset.state === 'ended', null, { timeout: 60000 });
    const seen = await auditor.evaluate(() => { window.__reading = false; return window.__seen; });
    const values = Object.keys(seen);
    const matched = values.filter((v) => v in shown);
    t.diagnostic(`${frames} frames recorded; playback showed ${values.length} counter values, ${matched.length} of them values the customer showed`);
    assert.ok(matched.length >= 10, `only ${matched.length} counter values in playback`);
    assert.ok(matched.length >= values.length * 0.8, `${values.length} values seen, ${matched.length} shown by the customer`);
    // Seek back to the first chunk: the picture is decoded again from a key frame.
    await auditor.$eval('#rp-seek', (el) => { el.value = '0'; el.dispatchEvent(new Event('input')); });
    await auditor.screenshot({ path: join(SHOTS, 'remote-recording-playback.png') });

    // The encrypted bundle, decrypted offline by the CLI.
    const bundle = await auditor.evaluate(async () => {
      const id = document.getElementById('rp').dataset.recording;
      const r = await fetch(`/api/v1/remote/recordings/${id}/bundle`);
      return Array.from(new Uint8Array(await r.arrayBuffer()));
    });
    const bundlePath = join(dir, 'session.hrec');
    writeFileSync(bundlePath, Buffer.from(bundle));
    assert.equal(Buffer.from(bundle).indexOf(Buffer.from(CHAT)), -1, 'chat plaintext in the bundle');
    assert.equal(Buffer.from(bundle).indexOf(Buffer.from([0, 0, 0, 1, 0x67])), -1, 'H.264 start code in the bundle');
    assert.throws(() => execFileSync(HAETAE, ['remote', 'export-recording', bundlePath, '--key', otherKeyFile, '--out', join(dir, 'x')], { stdio: 'pipe' }));
    const out = join(dir, 'export');
    execFileSync(HAETAE, ['remote', 'export-recording', bundlePath, '--key', keyFile, '--out', out], { encoding: 'utf8' });
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.summary.complete, true);
    assert.ok(summary.summary.frames >= 10 && summary.summary.key_frames >= 1, JSON.stringify(summary));
    const h264 = readFileSync(join(out, 'recording.h264'));
    assert.deepEqual([...h264.subarray(0, 4)], [0, 0, 0, 1]);
    assert.ok(h264.indexOf(Buffer.from([0, 0, 0, 1, 0x67])) >= 0 || h264.indexOf(Buffer.from([0, 0, 1, 0x67])) >= 0, 'no SPS in the stream');
    assert.match(readFileSync(join(out, 'events.jsonl'), 'utf8'), new RegExp(CHAT.replace(/[/]/g, '\\/')));
    await auditor.close();
  });

  it('no script or CSP errors', () => {
    assert.deepEqual(errors.filter((e) => !/favicon/.test(e)), []);
  });
});
