// Remote support end to end in two real Chromium instances against the real `haetae up`
// (Control Center + relay at /relay on the same address): the agent logs in and issues a
// code; the customer opens /r/CODE, consents, both see the same check number (SAS), the
// agent clicks "matches"; the customer shares its own tab (--auto-accept-this-tab-capture,
// preferCurrentTab; no --use-fake-ui-for-media-stream); the customer's page shows a changing
// counter as black/white blocks and the test reads it back from the agent's canvas; chat
// both ways; the agent's pointer appears on the customer's page. Then a relay path that flips
// one bit of one sealed frame: the agent's console ends the session (fail closed) and never
// shows the message. Indirect control (drawing over the customer's page, a URL the customer
// accepts or refuses), files both ways with the customer's consent and the Center's scan,
// the session history in the Center afterwards, and an `indirect` agent whose (modified)
// console cannot get control: the customer's page holds it to the policy the Center signed.
//
// Run: cargo build -p haetae && HAETAE_UP_BINARY=target/debug/haetae \
//        HAETAE_TEST_BROWSER=/usr/bin/chromium node --test tests/browser/remote.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const HAETAE = process.env.HAETAE_UP_BINARY;
const BROWSER = process.env.HAETAE_TEST_BROWSER ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'target', 'browser-screenshots');
const PASSWORD = 'remote browser test password';
const SKIP = !HAETAE ? 'HAETAE_UP_BINARY not set (run .ci/suites/50-remote.sh)'
  : !existsSync(BROWSER) ? `${BROWSER} not found (HAETAE_TEST_BROWSER)` : false;

const BITS = 10; // the counter as 10 black/white blocks
const VIEW = { width: 1280, height: 720 };
const block = (i) => ({ x: 40 + i * 110, y: 590, w: 90, h: 90 });

let haetae;
let dataDir;
let baseUrl;
let centerPort;
let agentBrowser;
let customerBrowser;
let agent;
let customer;
let chromium;
let tap; // the agent's page and WebSocket go through it
let agentUrl;
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

async function startUp() {
  const [center, gateway, admin] = [await freePort(), await freePort(), await freePort()];
  centerPort = center;
  dataDir = mkdtempSync(join(tmpdir(), 'haetae-up-remote-'));
  haetae = spawn(HAETAE, ['up'], {
    env: {
      ...process.env,
      HAETAE_DATA_DIR: dataDir,
      HAETAE_CONTROL__LISTEN: `127.0.0.1:${center}`,
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
    try {
      if ((await fetch(`${url}/login`)).ok) return url;
    } catch { /* not yet */ }
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

async function newPage(browser, name, viewport = VIEW) {
  const ctx = await browser.newContext({ locale: 'ko-KR', viewport });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${name}: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`${name}: ${e}`));
  return page;
}

async function login(page, base) {
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
}

/** Logs in as any user; `landing` is where the Center sends that role. */
async function loginAs(page, base, user, password, landing) {
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${base}${landing}`), page.click('button[type=submit]')]);
}

/** A JSON API call from a logged-in page, with its CSRF token. */
function apiFrom(page, method, url, body) {
  return page.evaluate(async ({ method, url, body }) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch(url, { method, headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify(body) });
    return { status: r.status, text: await r.text() };
  }, { method, url, body });
}

const sha256hex = (buf) => createHash('sha256').update(buf).digest('hex');

/** Agent: issue a code; returns it. */
async function issueCode(page, base) {
  await page.goto(`${base}/remote`);
  await page.click('#rs-issue');
  await page.waitForFunction(() => document.getElementById('rs-code').dataset.code);
  return page.$eval('#rs-code', (el) => el.dataset.code);
}

/** Customer: open the link, consent, connect; both wait for the SAS. Returns [agentSas, customerSas]. */
async function joinAndCompare(page, base, code) {
  await page.goto(`${base}/r/${code}`);
  assert.equal(await page.inputValue('#rs-code'), code);
  await page.check('#rs-agree');
  await page.click('#rs-connect');
  await page.waitForSelector('#rs-sas:not(:empty)');
  await agent.waitForSelector('#rs-sas-box:not([hidden])');
  return [await agent.textContent('#rs-sas'), await page.textContent('#rs-sas')];
}

/** A TCP proxy in front of the Center that keeps a copy of every binary WebSocket message the
 * relay sends to this client (frames from a server are unmasked) and, with `tamper`, flips one
 * bit in the first sealed frame. */
function relayTap(targetPort, { tamper }) {
  const state = { tampered: 0, captured: [], capturedBytes: 0 };
  const server = createNetServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    client.pipe(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    upstream.on('end', () => client.end());
    let head = Buffer.alloc(0);
    let mode = 'head';
    let buf = Buffer.alloc(0);
    const pump = () => {
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        const frame = Buffer.from(buf.subarray(0, off + len));
        const payload = frame.subarray(off);
        const opcode = frame[0] & 0x0f;
        if (opcode === 2) {
          state.captured.push(Buffer.from(payload));
          state.capturedBytes += payload.length;
        }
        if (tamper && opcode === 2 && state.tampered === 0 && payload[1] === 6 && payload[7] === 0x13) {
          payload[payload.length - 1] ^= 0x01; // the last byte of the GCM tag
          state.tampered += 1;
        }
        client.write(frame);
        buf = buf.subarray(off + len);
      }
    };
    upstream.on('data', (d) => {
      if (mode === 'pass') { client.write(d); return; }
      if (mode === 'ws') { buf = Buffer.concat([buf, d]); pump(); return; }
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headers = head.subarray(0, end + 4);
      client.write(headers);
      if (headers.toString('latin1').startsWith('HTTP/1.1 101')) {
        mode = 'ws';
        buf = head.subarray(end + 4);
        pump();
      } else {
        mode = 'pass';
        client.write(head.subarray(end + 4));
      }
    });
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done({ server, state, port: server.address().port })));
}

/** The customer's page draws a counter as BITS black/white blocks, every `ms` milliseconds
 * (0: every animation frame), and remembers when each value appeared. */
async function startCounter(page, ms) {
  await page.evaluate(({ bits, blocks, ms }) => {
    const box = document.createElement('div');
    box.id = 'test-counter';
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
      n = (n + 1) % (1 << bits);
      cells.forEach((c, i) => { c.style.background = (n >> i) & 1 ? '#fff' : '#000'; });
      window.__shown[n] = Date.now();
    };
    show();
    if (ms > 0) window.__counter = setInterval(show, ms);
    else { const loop = () => { show(); window.__counter = requestAnimationFrame(loop); }; loop(); }
  }, { bits: BITS, blocks: Array.from({ length: BITS }, (_, i) => block(i)), ms });
}

/** Reads the counter back from the agent's canvas on every animation frame for 5 s; returns
 * frames/s, values seen and matched, and the latency from the customer's page to the canvas. */
async function measure(t, view) {
  await agent.waitForFunction(() => Number(document.getElementById('rs-screen').dataset.frames ?? 0) > 5, null, { timeout: 30000 });
  await agent.evaluate(({ bits, blocks, view }) => {
    const canvas = document.getElementById('rs-screen');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    window.__seen = {};
    window.__reading = true;
    const read = () => {
      if (!window.__reading) return;
      const sx = canvas.width / view.width;
      const sy = canvas.height / view.height;
      let v = 0;
      for (let i = 0; i < bits; i++) {
        const b = blocks[i];
        const px = ctx.getImageData(Math.round((b.x + b.w / 2) * sx) - 3, Math.round((b.y + b.h / 2) * sy) - 3, 6, 6).data;
        let lum = 0;
        for (let k = 0; k < px.length; k += 4) lum += (px[k] + px[k + 1] + px[k + 2]) / 3;
        if (lum / (px.length / 4) > 128) v |= 1 << i;
      }
      if (!(v in window.__seen)) window.__seen[v] = Date.now();
      requestAnimationFrame(read);
    };
    requestAnimationFrame(read);
  }, { bits: BITS, blocks: Array.from({ length: BITS }, (_, i) => block(i)), view });
  const framesBefore = Number(await agent.$eval('#rs-screen', (c) => c.dataset.frames));
  await new Promise((r) => setTimeout(r, 5000));
  const framesAfter = Number(await agent.$eval('#rs-screen', (c) => c.dataset.frames));
  const seen = await agent.evaluate(() => { window.__reading = false; return window.__seen; });
  const shown = await customer.evaluate(() => window.__shown);
  const matched = Object.keys(seen).filter((v) => v in shown);
  const latencies = matched.map((v) => seen[v] - shown[v]).filter((d) => d >= 0 && d < 5000).sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const fps = (framesAfter - framesBefore) / 5;
  const size = await agent.$eval('#rs-screen', (c) => `${c.dataset.codec} ${c.width}x${c.height}`);
  t.diagnostic(`agent decoded ${fps.toFixed(1)} frames/s at ${size}; ${matched.length} distinct counter values read back; `
    + `counter latency (customer shows -> agent canvas) p50 ${pct(0.5)} ms, p95 ${pct(0.95)} ms`);
  return { fps, seen: Object.keys(seen).length, matched: matched.length };
}

before(async () => {
  if (SKIP) return;
  ({ chromium } = await import('playwright-core'));
  mkdirSync(SHOTS, { recursive: true });
  baseUrl = await startUp();
  agentBrowser = await launch([]);
  customerBrowser = await launch(['--auto-accept-this-tab-capture']);
  agent = await newPage(agentBrowser, 'agent');
  customer = await newPage(customerBrowser, 'customer');
  tap = await relayTap(centerPort, { tamper: false });
  agentUrl = `http://127.0.0.1:${tap.port}`; // same host: the session cookie applies
  await login(agent, agentUrl);
});

after(async () => {
  await agentBrowser?.close();
  await customerBrowser?.close();
  haetae?.kill('SIGTERM');
  tap?.server.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('remote support between two browsers', { skip: SKIP }, () => {
  let code;

  it('the agent issues a one-time code in the Control Center', async () => {
    code = await issueCode(agent, agentUrl);
    assert.match(code, /^[0-9]{9}$/);
    assert.equal(await agent.textContent('#rs-link'), `${agentUrl}/r/${code}`);
    // The page runs under the Center's strict CSP (no inline script or style).
    const csp = (await fetch(`${baseUrl}/r`)).headers.get('content-security-policy');
    assert.match(csp, /script-src 'self';/);
    assert.doesNotMatch(csp, /unsafe-inline/);
  });

  it('the customer consents and both sides show the same check number', async () => {
    const [a, c] = await joinAndCompare(customer, baseUrl, code);
    assert.match(a, /^[0-9]{6}$/);
    assert.equal(a, c);
    // Nothing is open before the agent confirms.
    assert.ok(await customer.isHidden('#rs-banner'));
    assert.ok(await customer.isHidden('#rs-step-share'));
    await agent.screenshot({ path: join(SHOTS, 'remote-01-agent-sas.png') });
    await customer.screenshot({ path: join(SHOTS, 'remote-01-customer-sas.png') });
    await agent.click('#rs-sas-ok');
    await customer.waitForSelector('#rs-banner:not([hidden])');
    assert.match(await customer.textContent('#rs-banner'), /상담원이 원격지원 중입니다 \/ An agent is supporting you/);
  });

  it("the customer shares its tab and the agent's canvas shows its changing counter", async (t) => {
    await startCounter(customer, 100);
    await customer.click('#rs-share');
    const m = await measure(t, VIEW);
    await agent.screenshot({ path: join(SHOTS, 'remote-02-agent-screen.png') });
    // 5 s of a counter that changes 10 times a second: the agent must see most values, and
    // values it reads must be ones the customer showed (not noise).
    assert.ok(m.matched >= 20, `only ${m.matched} counter values read back`);
    assert.ok(m.matched >= m.seen * 0.8, `too many values the customer never showed: ${m.seen} seen, ${m.matched} matched`);
    assert.ok(m.fps >= 3, `${m.fps} frames/s`);
  });

  it('a still screen keeps reaching the agent (the last frame is repeated)', async () => {
    await customer.evaluate(() => clearInterval(window.__counter));
    await new Promise((r) => setTimeout(r, 500));
    const frames = () => agent.$eval('#rs-screen', (c) => Number(c.dataset.frames));
    const before = await frames();
    await new Promise((r) => setTimeout(r, 3500));
    const after = await frames();
    const repeated = Number(await customer.evaluate(() => document.body.dataset.framesRepeated ?? 0));
    assert.ok(after - before >= 2, `${after - before} frames in 3.5 s of a still screen`);
    assert.ok(repeated >= 2, `${repeated} repeats`);
  });

  it('chat goes both ways', async () => {
    await agent.fill('#rs-chat-input', '안녕하세요, 상담원입니다');
    await agent.press('#rs-chat-input', 'Enter');
    await customer.waitForSelector('#rs-chat-log li.peer:has-text("안녕하세요, 상담원입니다")');
    await customer.fill('#rs-chat-input', '네, 화면이 보이시나요?');
    await customer.click('#rs-chat-form button');
    await agent.waitForSelector('#rs-chat-log li.peer:has-text("네, 화면이 보이시나요?")');
  });

  it("the agent's pointer appears on the customer's page where the agent points", async () => {
    const box = await agent.locator('#rs-screen').boundingBox();
    await agent.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.5);
    await agent.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.25, { steps: 5 });
    await customer.waitForSelector('#rs-pointer:not([hidden])');
    // 1280x720 viewport: half the width, a quarter of the height.
    let at;
    for (let i = 0; i < 50; i++) {
      at = await customer.evaluate(() => {
        const r = document.getElementById('rs-pointer').getBoundingClientRect();
        return { x: r.x + r.width / 2, y: r.y + r.height / 2, sent: document.body.dataset.pointer };
      });
      if (Math.abs(at.x - 640) < 20 && Math.abs(at.y - 180) < 20) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(Math.abs(at.x - 640) < 20 && Math.abs(at.y - 180) < 20,
      `pointer at ${JSON.stringify(at)}; agent canvas box ${JSON.stringify(box)}`);
    await customer.screenshot({ path: join(SHOTS, 'remote-03-customer-pointer.png') });
    await agent.mouse.move(1, 1); // leaves the canvas: the pointer hides
    await customer.waitForSelector('#rs-pointer', { state: 'hidden' });
  });

  it("the agent draws over the customer's page and clears it", async () => {
    await agent.check('#rs-draw');
    const box = await agent.locator('#rs-screen').boundingBox();
    await agent.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.3);
    await agent.mouse.down();
    await agent.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.3, { steps: 8 });
    await agent.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.5, { steps: 8 });
    await agent.mouse.up();
    await customer.waitForFunction(() => document.body.dataset.drawings === '1');
    // The stroke is on the overlay where the agent drew it (x 20-40 %, y 30 % of 1280x720).
    const ink = await customer.evaluate(() => {
      const c = document.getElementById('rs-draw');
      const px = c.getContext('2d').getImageData(Math.round(c.width * 0.3) - 3, Math.round(c.height * 0.3) - 3, 6, 6).data;
      let alpha = 0;
      for (let i = 3; i < px.length; i += 4) alpha = Math.max(alpha, px[i]);
      const empty = c.getContext('2d').getImageData(Math.round(c.width * 0.8), Math.round(c.height * 0.8), 6, 6).data.some((v) => v !== 0);
      return { alpha, empty, hidden: c.hidden };
    });
    assert.ok(ink.alpha > 100 && !ink.empty && !ink.hidden, JSON.stringify(ink));
    await customer.screenshot({ path: join(SHOTS, 'remote-05-customer-drawing.png') });
    await agent.uncheck('#rs-draw');
    await agent.click('#rs-clear');
    await customer.waitForFunction(() => document.body.dataset.drawings === '0');
    assert.ok(await customer.isHidden('#rs-draw'));
  });

  it('a URL from the agent opens only when the customer accepts it, and only http(s)', async () => {
    // The console refuses other schemes before sending; the customer's decoder would too.
    for (const bad of ['javascript:alert(1)', 'file:///etc/passwd']) {
      await agent.fill('#rs-url', bad);
      await agent.click('#rs-url-form button');
    }
    const pushed = `${baseUrl}/r?pushed=1`;
    await agent.fill('#rs-url', pushed);
    await agent.click('#rs-url-form button');
    await customer.waitForSelector('#rs-url-box:not([hidden])');
    assert.equal(await customer.textContent('#rs-url-text'), pushed);
    const pagesBefore = customer.context().pages().length;
    await customer.click('#rs-url-refuse');
    assert.ok(await customer.isHidden('#rs-url-box'));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(customer.context().pages().length, pagesBefore, 'refused URL opened');
    await agent.fill('#rs-url', pushed);
    await agent.click('#rs-url-form button');
    await customer.waitForSelector('#rs-url-box:not([hidden])');
    const [opened] = await Promise.all([customer.context().waitForEvent('page'), customer.click('#rs-url-open')]);
    await opened.waitForLoadState('domcontentloaded');
    assert.equal(opened.url(), pushed);
    await opened.close();
    await customer.bringToFront();
  });

  it('a file sent after the customer consents arrives intact; a refused one never does', async () => {
    const text = Buffer.from('해태 원격지원 안내문\n'.repeat(5000), 'utf8'); // ~130 KB: several chunks
    await agent.setInputFiles('#rs-file', { name: '안내문.txt', mimeType: 'text/plain', buffer: text });
    const offer = customer.locator('li.rs-file-offer').last();
    await offer.locator('button.rs-accept').waitFor();
    assert.match(await offer.textContent(), /안내문\.txt/);
    // Nothing arrives before consent.
    assert.equal(await customer.locator('a.rs-save').count(), 0);
    await offer.locator('button.rs-accept').click();
    const save = customer.locator('a.rs-save').last();
    await save.waitFor({ timeout: 20000 });
    assert.equal(await save.getAttribute('data-sha256'), sha256hex(text));
    // Saving gives the customer exactly the bytes the agent chose.
    const [download] = await Promise.all([customer.waitForEvent('download'), save.click()]);
    assert.equal(download.suggestedFilename(), '안내문.txt');
    assert.equal(sha256hex(readFileSync(await download.path())), sha256hex(text));
    await agent.waitForSelector('#rs-files li[data-state="sent"]');

    // Refused: the agent's console never sends a byte of it, and nothing is offered for saving.
    await agent.setInputFiles('#rs-file', { name: 'secret.txt', mimeType: 'text/plain', buffer: Buffer.from('never') });
    const second = customer.locator('li.rs-file-offer').last();
    await second.locator('button.rs-refuse').click();
    await agent.waitForSelector('#rs-files li[data-state="refused"]');
    assert.equal(await second.getAttribute('data-state'), 'refused');
    assert.equal(await second.locator('a').count(), 0);
    assert.equal(await customer.locator('a.rs-save').count(), 1);

    // A program disguised as a PDF: scanned after arrival and refused with the findings shown.
    const exe = Buffer.alloc(1024);
    exe.write('MZ', 0);
    exe.writeUInt32LE(0x80, 0x3c);
    exe.write('PE\0\0', 0x80, 'latin1');
    await agent.setInputFiles('#rs-file', { name: 'invoice.pdf', mimeType: 'application/pdf', buffer: exe });
    const third = customer.locator('li.rs-file-offer').last();
    await third.locator('button.rs-accept').click();
    await customer.waitForSelector('li.rs-file-offer[data-state="refused-scan"]');
    assert.match(await third.textContent(), /위험한 파일|dangerous/);
    assert.match(await third.textContent(), /[A-Z]+-[A-Z]+/); // a finding code
    assert.equal(await third.locator('a').count(), 0);
    await agent.waitForSelector('#rs-files li[data-state="refused-scan"]');
  });

  it('a file the customer chooses reaches the agent intact after the scan', async () => {
    const data = Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 7) % 251));
    await customer.setInputFiles('#rs-send-file', { name: 'screenshot.bin', mimeType: 'application/octet-stream', buffer: data });
    await agent.waitForSelector('#rs-files li[data-state="received"] a', { timeout: 20000 });
    const a = agent.locator('#rs-files li[data-state="received"] a').last();
    assert.equal(await a.getAttribute('data-sha256'), sha256hex(data));
    await customer.waitForSelector('#rs-files li[data-state="sent"]');
  });

  it("the relay's traffic to the agent holds no chat plaintext and no H.264 start code", () => {
    const all = Buffer.concat(tap.state.captured);
    // The customer's screen went through: hundreds of kilobytes of sealed frames.
    assert.ok(tap.state.capturedBytes > 50000, `only ${tap.state.capturedBytes} bytes captured`);
    assert.equal(all.indexOf(Buffer.from('화면이 보이시나요', 'utf8')), -1, 'chat plaintext on the wire');
    for (const nal of [[0, 0, 0, 1, 0x67], [0, 0, 0, 1, 0x65], [0, 0, 0, 1, 0x41]]) {
      assert.equal(all.indexOf(Buffer.from(nal)), -1, `H.264 start code ${Buffer.from(nal).toString('hex')} on the wire`);
    }
  });

  it('the customer ends the session from the banner; the agent sees it end', async () => {
    await customer.click('#rs-end');
    await agent.waitForFunction(() => document.getElementById('rs-agent').dataset.state === 'ended');
    assert.equal(await agent.$eval('#rs-agent', (el) => el.dataset.endReason), 'Normal');
    assert.ok(await customer.isHidden('#rs-banner'));
    const log = await agent.textContent('#rs-log');
    assert.match(log, /확인 번호 일치 확인/);
    assert.match(log, /접속 번호 발급/);
  });

  it('the session history (chat, files, consent, control) is visible in the Center afterwards', async () => {
    await agent.waitForFunction(() => document.getElementById('rs-agent').dataset.historyDone === 'yes');
    const session = await agent.$eval('#rs-agent', (el) => el.dataset.session);
    await agent.goto(`${agentUrl}/remote/history`);
    await agent.waitForSelector(`#rs-sessions a[href="/remote/history/${session}"]`);
    await agent.click(`#rs-sessions a[href="/remote/history/${session}"]`);
    await agent.waitForSelector('#rs-records');
    const page = await agent.textContent('#rs-records');
    assert.match(page, /안녕하세요, 상담원입니다/);
    assert.match(page, /네, 화면이 보이시나요\?/);
    assert.match(page, /안내문\.txt/);
    assert.match(page, new RegExp(sha256hex(Buffer.from('해태 원격지원 안내문\n'.repeat(5000), 'utf8'))));
    // Records are JSON objects with their keys in order.
    assert.match(page, /"consent":"refused"[^}]*"name":"secret\.txt"/);
    assert.match(page, /"name":"invoice\.pdf","scan":"vulnerable"/);
    assert.match(page, /screenshot\.bin/);
    assert.match(page, /consent/);
    assert.match(await agent.textContent('main'), /Normal/);
    await agent.screenshot({ path: join(SHOTS, 'remote-06-history.png'), fullPage: true });
  });

  it('a used code does not work a second time', async () => {
    const again = await newPage(customerBrowser, 'customer-2');
    await again.goto(`${baseUrl}/r/${code}`);
    await again.check('#rs-agree');
    await again.click('#rs-connect');
    await again.waitForSelector('#rs-status.error');
    assert.match(await again.textContent('#rs-status'), /올바르지 않거나 만료/);
    await again.close();
  });

  it('"differs" aborts: nothing opens on either side', async () => {
    const next = await issueCode(agent, agentUrl);
    const [a, c] = await joinAndCompare(customer, baseUrl, next);
    assert.equal(a, c);
    await agent.click('#rs-sas-bad');
    await customer.waitForFunction(() => document.body.dataset.state === 'ended');
    assert.equal(await customer.evaluate(() => document.body.dataset.endReason), 'SasMismatch');
    assert.equal(await agent.$eval('#rs-agent', (el) => el.dataset.endReason), 'SasMismatch');
    assert.ok(await customer.isHidden('#rs-banner'));
    assert.ok(await customer.isHidden('#rs-step-share'));
    assert.match(await customer.textContent('#rs-status'), /확인 번호가 달라 중단/);
  });

  it('a relay that alters one sealed frame makes the session fail closed', async () => {
    const proxy = await relayTap(centerPort, { tamper: true });
    try {
      const via = `http://127.0.0.1:${proxy.port}`; // same host: the session cookie applies
      const tampered = await issueCode(agent, via);
      const [a, c] = await joinAndCompare(customer, baseUrl, tampered);
      assert.equal(a, c);
      await agent.click('#rs-sas-ok');
      await customer.waitForSelector('#rs-banner:not([hidden])');
      await customer.fill('#rs-chat-input', '계좌번호 110-123-456789');
      await customer.click('#rs-chat-form button');
      await agent.waitForFunction(() => document.getElementById('rs-agent').dataset.state === 'ended');
      assert.equal(await agent.$eval('#rs-agent', (el) => el.dataset.endReason), 'Integrity');
      assert.equal(proxy.state.tampered, 1);
      assert.doesNotMatch(await agent.textContent('#rs-chat-log'), /110-123/);
      await customer.waitForFunction(() => document.body.dataset.state === 'ended');
      await agent.screenshot({ path: join(SHOTS, 'remote-04-agent-integrity.png') });
    } finally {
      proxy.server.close();
    }
  });

  it('at 1920x1080 with the counter changing on every animation frame', async (t) => {
    await customer.close();
    customer = await newPage(customerBrowser, 'customer-1080p', { width: 1920, height: 1080 });
    const next = await issueCode(agent, agentUrl);
    const [a, c] = await joinAndCompare(customer, baseUrl, next);
    assert.equal(a, c);
    await agent.click('#rs-sas-ok');
    await customer.waitForSelector('#rs-step-share:not([hidden])');
    await startCounter(customer, 0);
    await customer.click('#rs-share');
    const m = await measure(t, { width: 1920, height: 1080 });
    assert.equal(await agent.$eval('#rs-screen', (el) => `${el.width}x${el.height}`), '1920x1080');
    assert.ok(m.matched >= 20, `only ${m.matched} counter values read back`);
    assert.ok(m.matched >= m.seen * 0.8, `${m.seen} seen, ${m.matched} matched`);
    await agent.click('#rs-end');
  });

  it('an indirect agent cannot get control, even with a modified console', async () => {
    // The admin makes an `agent` user with the indirect grade.
    const r1 = await apiFrom(agent, 'POST', '/api/v1/users', { username: 'lee.agent', password: PASSWORD, role: 'agent' });
    assert.ok(r1.status < 300, r1.text);
    const r2 = await apiFrom(agent, 'PUT', '/api/v1/remote/agents/lee.agent', { grade: 'indirect', allow_from: '127.0.0.0/8' });
    assert.equal(r2.status, 200, r2.text);
    const lee = await newPage(agentBrowser, 'indirect-agent');
    await loginAs(lee, baseUrl, 'lee.agent', PASSWORD, '/remote');
    const run = async (tamper) => {
      await lee.unroute('**/remote/session').catch(() => {});
      if (tamper) {
        await lee.route('**/remote/session', async (route) => {
          const resp = await route.fetch();
          const body = await resp.json();
          await route.fulfill({ response: resp, json: tamper(body) });
        });
      }
      const code = await issueCode(lee, baseUrl);
      const cust = await newPage(customerBrowser, 'customer-indirect');
      await cust.goto(`${baseUrl}/r/${code}`);
      await cust.check('#rs-agree');
      await cust.click('#rs-connect');
      await lee.waitForSelector('#rs-sas-box:not([hidden])');
      await lee.click('#rs-sas-ok');
      await cust.waitForFunction(() => ['open', 'ended'].includes(document.body.dataset.state));
      return cust;
    };

    // 1. The genuine console: no control button, no file tools; the customer sees the grade.
    let cust = await run(null);
    await cust.waitForFunction(() => document.body.dataset.grade === 'indirect');
    assert.equal(await lee.textContent('#rs-grade'), 'indirect');
    assert.ok(await lee.isHidden('#rs-control'));
    assert.ok(await lee.isHidden('#rs-file-label'));
    assert.ok(await cust.isHidden('#rs-send-file-box'));
    await lee.click('#rs-end');
    await cust.close();

    // 2. A console told it is direct (the Center's signed policy forwarded unchanged): it asks
    //    for control and offers a file; the customer's page refuses both.
    cust = await run((b) => ({ ...b, grade: 'direct', max_file: 1 << 20 }));
    await lee.waitForSelector('#rs-control:not([hidden])');
    await cust.waitForFunction(() => document.body.dataset.grade === 'indirect');
    await lee.click('#rs-control');
    await cust.waitForFunction(() => document.body.dataset.refused === 'ControlRequest');
    assert.match(await cust.textContent('#rs-status'), /허용되지 않아 거부/);
    assert.doesNotMatch(await cust.textContent('#rs-chat-log'), /원격 제어 요청/);
    await lee.setInputFiles('#rs-file', { name: 'x.txt', mimeType: 'text/plain', buffer: Buffer.from('x') });
    await cust.waitForFunction(() => document.body.dataset.refused === 'FileOffer');
    assert.equal(await cust.locator('li.rs-file-offer').count(), 0);
    await lee.waitForSelector('#rs-files li[data-state="refused"]');
    assert.equal(await cust.evaluate(() => document.body.dataset.state), 'open');
    await lee.click('#rs-end');
    await cust.close();

    // 3. A console that rewrites the policy to `direct`: the signature fails; the session ends.
    cust = await run((b) => ({ ...b, grade: 'direct', payload: b.payload.replace('grade=indirect', 'grade=direct').replace('features=pointer,drawing,url', 'features=pointer,drawing,url,control,files') }));
    await cust.waitForFunction(() => document.body.dataset.state === 'ended');
    assert.equal(await cust.evaluate(() => document.body.dataset.endReason), 'Protocol');
    assert.match(await cust.textContent('#rs-status'), /session policy is invalid/);
    await cust.close();
    await lee.close();
  });

  it('an agent outside its allowed networks cannot log in', async () => {
    const r = await apiFrom(agent, 'PUT', '/api/v1/remote/agents/lee.agent', { grade: 'indirect', allow_from: '10.99.0.0/16' });
    assert.equal(r.status, 200, r.text);
    const page = await newPage(agentBrowser, 'indirect-agent-outside');
    await page.goto(`${baseUrl}/login`);
    await page.fill('input[name=username]', 'lee.agent');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('.error, .flash.error, p.error');
    assert.match(page.url(), /\/login/);
    await page.close();
  });

  it('no script or CSP errors on either page', () => {
    const relevant = errors.filter((e) => !/favicon/.test(e));
    assert.deepEqual(relevant, []);
  });
});
