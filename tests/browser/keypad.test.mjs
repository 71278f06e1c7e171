// Browser test of `e2e-fields` and its virtual keypad: a real gateway (the e2e_fixture
// example of haetae-gateway) in front of a banking page, driven through Debian's chromium
// by playwright-core. Between the browser and the gateway sits a TCP relay that records
// every byte the browser sends. A PIN typed on the keypad and an account number typed with
// the keyboard must reach the application as plaintext, while neither the bytes on the
// wire nor the page's DOM ever contain them.
//
// Run: .ci/suites/45-filters-browser.sh (builds the fixture and sets HAETAE_E2E_FIXTURE).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FIXTURE = process.env.HAETAE_E2E_FIXTURE;
const BROWSER = process.env.HAETAE_TEST_BROWSER ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'target', 'browser-screenshots');
const PIN = '730519';
const ACCOUNT = '110234567890';

let fixture;
let relay;
let baseUrl;
let browser;
let page;
let profile;
const wire = [];
const received = [];
const receivedWaiters = [];
const pageProblems = [];

function startFixture() {
  return new Promise((resolveStart, reject) => {
    fixture = spawn(FIXTURE, [], { env: { ...process.env, RUST_LOG: 'warn' }, stdio: ['pipe', 'pipe', 'inherit'] });
    fixture.on('error', reject);
    const lines = createInterface({ input: fixture.stdout });
    lines.on('line', (line) => {
      if (line.startsWith('LISTENING ')) resolveStart(line.slice('LISTENING '.length));
      if (line.startsWith('RECEIVED ')) {
        received.push(line.slice('RECEIVED '.length));
        receivedWaiters.splice(0).forEach((w) => w());
      }
    });
    const timer = setTimeout(() => reject(new Error(`${FIXTURE} did not start within 30 s`)), 30000);
    timer.unref();
  });
}

/** A TCP relay to the gateway that keeps every byte the browser sends. */
function startRelay(target) {
  const { hostname, port } = new URL(target);
  return new Promise((done) => {
    relay = createServer((client) => {
      const upstream = connect(Number(port), hostname);
      client.on('data', (d) => wire.push(Buffer.from(d)));
      client.pipe(upstream);
      upstream.pipe(client);
      const close = () => { client.destroy(); upstream.destroy(); };
      client.on('error', close);
      upstream.on('error', close);
    });
    relay.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${relay.address().port}`));
  });
}

/** The keypad's current layout, read from its pixels against reference renderings. */
async function keypadLayout() {
  return page.evaluate(async () => {
    const mod = await import('/haetae/e2e.js');
    const { cols, rows, cell } = mod.KEYPAD_GEOMETRY;
    const canvas = document.querySelector('canvas.haetae-keypad-keys');
    const ctx = canvas.getContext('2d');
    const ref = document.createElement('canvas');
    ref.width = cell;
    ref.height = cell;
    const rctx = ref.getContext('2d');
    const labels = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '\u232b', '\u00d7'];
    const refs = labels.map((l) => {
      rctx.clearRect(0, 0, cell, cell);
      mod.drawKey(rctx, l, 0, 0);
      return rctx.getImageData(0, 0, cell, cell).data;
    });
    const layout = [];
    for (let i = 0; i < cols * rows; i += 1) {
      const got = ctx.getImageData((i % cols) * cell, Math.floor(i / cols) * cell, cell, cell).data;
      let best = -1;
      let bestDiff = Infinity;
      refs.forEach((r, k) => {
        let diff = 0;
        for (let p = 0; p < r.length; p += 1) diff += Math.abs(r[p] - got[p]);
        if (diff < bestDiff) { bestDiff = diff; best = k; }
      });
      layout.push(labels[best]);
    }
    return { layout, cols, cell };
  });
}

async function pressKeys(digits) {
  const { layout, cols, cell } = await keypadLayout();
  assert.equal(new Set(layout).size, 12, `every key appears once: ${layout.join(' ')}`);
  const canvas = page.locator('canvas.haetae-keypad-keys');
  const box = await canvas.boundingBox();
  const scale = box.width / (cols * cell);
  for (const d of digits) {
    const i = layout.indexOf(d);
    await page.mouse.click(
      box.x + ((i % cols) * cell + cell / 2) * scale,
      box.y + (Math.floor(i / cols) * cell + cell / 2) * scale,
    );
  }
  return layout;
}

/** Everything of the page a script or extension could read: markup and live values. */
async function domSnapshot() {
  return page.evaluate(() => {
    const values = [...document.querySelectorAll('input')].map((i) => `${i.name}=${i.value}`);
    return `${document.documentElement.outerHTML}\n${values.join('\n')}`;
  });
}

describe('e2e-fields keypad in a real browser', { skip: FIXTURE ? false : 'HAETAE_E2E_FIXTURE not set (run .ci/suites/45-filters-browser.sh)' }, () => {
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const gateway = await startFixture();
    baseUrl = await startRelay(gateway);
    profile = mkdtempSync(join(tmpdir(), 'haetae-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: BROWSER,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
      locale: 'ko-KR',
    });
    page = browser.pages()[0] ?? await browser.newPage();
    page.on('pageerror', (e) => pageProblems.push(String(e)));
    page.on('console', (m) => {
      // The fixture application has no favicon; its 404 is no script problem.
      if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) pageProblems.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    relay?.close();
    fixture?.stdin.end();
    fixture?.kill();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('draws a keypad whose layout changes with every display and holds no key values in the DOM', async () => {
    await page.goto(`${baseUrl}/`);
    await page.locator('canvas.haetae-keypad-keys').waitFor();
    const first = (await keypadLayout()).layout;
    await page.reload();
    await page.locator('canvas.haetae-keypad-keys').waitFor();
    const second = (await keypadLayout()).layout;
    assert.notDeepEqual(first, second, 'a new random layout per display');
    // Text and attributes of the keypad (less the canvas's pixel size) hold no digit.
    const dom = await page.evaluate(() => {
      const box = document.querySelector('.haetae-keypad');
      const attrs = [box, ...box.querySelectorAll('*')].flatMap((el) => [...el.attributes]
        .filter((a) => a.name !== 'style' && !(el.tagName === 'CANVAS' && (a.name === 'width' || a.name === 'height')))
        .map((a) => `${a.name}=${a.value}`));
      return `${box.textContent}\n${attrs.join('\n')}`;
    });
    assert.doesNotMatch(dom, /[0-9]/, `no digits in the keypad's DOM: ${dom}`);
  });

  it('sends the PIN and account number encrypted and the application receives plaintext', async () => {
    wire.length = 0;
    await page.fill('#account', ACCOUNT);
    await pressKeys(PIN.split(''));
    assert.equal(await page.textContent('.haetae-keypad-dots'), '\u25cf'.repeat(6), 'masked dots');
    const dom = await domSnapshot();
    assert.ok(!dom.includes(PIN), 'the PIN is nowhere in the DOM before submit');
    await page.screenshot({ path: join(SHOTS, 'e2e-keypad.png') });

    const got = new Promise((done) => receivedWaiters.push(done));
    await Promise.all([page.waitForEvent('load'), page.click('#send')]);
    await got;
    assert.equal(await page.textContent('body'), 'ok');
    const body = new URLSearchParams(received.at(-1));
    assert.equal(body.get('pin'), PIN, 'the application got the PIN');
    assert.equal(body.get('account_number'), ACCOUNT, 'and the account number');
    assert.equal(body.get('amount'), '50000');

    const sent = Buffer.concat(wire).toString('latin1');
    assert.match(sent, /POST \/transfer/, 'the relay saw the form post');
    assert.match(sent, /pin=hte1\./, 'the PIN travelled encrypted');
    assert.ok(!sent.includes(PIN), 'the PIN never crossed the wire in plaintext');
    assert.ok(!sent.includes(ACCOUNT), 'nor the account number');
    assert.deepEqual(pageProblems, [], 'no script or CSP errors');
  });
});
