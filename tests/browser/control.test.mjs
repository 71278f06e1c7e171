// Browser tests of the Security Control Center: the real `haetae up` (Control Center and a
// gateway in one process, SQLite, in-process bus) in front of a small upstream, driven
// through Debian's chromium by playwright-core. A request from a restricted device goes
// through the gateway and its event and alert appear on the dashboard.
// One story, step by step, each step one behaviour; screenshots go to
// target/browser-screenshots/ for CI artifacts.
//
// Run: cargo build -p haetae && HAETAE_UP_BINARY=target/debug/haetae npm run test:browser

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '..', '..');
const HAETAE = process.env.HAETAE_UP_BINARY;
const BROWSER = process.env.HAETAE_TEST_BROWSER ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'target', 'browser-screenshots');
const PASSWORD = 'browser test password';

let haetae;
let dataDir;
let baseUrl;
let gatewayUrl;
let upstream;
let upstreamUrl;
const upstreamSaw = [];
let browser;
let page;
let profile;
const pageErrors = [];

/** A port that was free a moment ago (the Center, the gateway and its admin listener). */
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

/** The bank's application behind the gateway: answers every request with its path. */
function startUpstream() {
  return new Promise((done) => {
    upstream = createServer((req, res) => {
      upstreamSaw.push(req.url);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`app saw ${req.url}`);
    });
    upstream.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${upstream.address().port}`));
  });
}

/** Starts `haetae up` on free ports and resolves once the Center answers. */
async function startUp() {
  const [center, gateway, admin] = [await freePort(), await freePort(), await freePort()];
  dataDir = mkdtempSync(join(tmpdir(), 'haetae-up-browser-'));
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
  const exited = new Promise((_, reject) => haetae.on('exit', (code) => reject(new Error(`haetae up exited with ${code}`))));
  exited.catch(() => {});
  gatewayUrl = `http://127.0.0.1:${gateway}`;
  const url = `http://127.0.0.1:${center}`;
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    try {
      const r = await Promise.race([fetch(`${url}/login`), exited]);
      if (r.ok) return url;
    } catch (e) {
      if (haetae.exitCode !== null) throw e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${HAETAE} up did not answer on ${url} within 60 s`);
}

/** Sends one request through the gateway, as the bank's app on a phone would. */
async function throughGateway(path, { device, user }) {
  const r = await fetch(`${gatewayUrl}${path}`, {
    headers: { 'user-agent': `BankApp/5.2 (Android 14; HaetaeDevice/${device})`, 'x-user-id': user },
    redirect: 'manual',
  });
  return { status: r.status, body: await r.text() };
}

/** RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s), computed here independently of the server. */
function totp(base32, seconds) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 0x0f;
  const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1000000).padStart(6, '0');
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Waits for the reload that follows a successful API call from a form or button. */
async function submitAndReload(action) {
  await Promise.all([page.waitForEvent('load'), action()]);
  const flash = page.locator('#flash.error');
  if (await flash.count() > 0) assert.fail(`the page reported an error: ${await flash.textContent()}`);
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  upstreamUrl = await startUpstream();
  baseUrl = await startUp();
  profile = mkdtempSync(join(tmpdir(), 'haetae-chromium-'));
  // A fresh profile folder each run (playwright-core passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: BROWSER,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    locale: 'ko-KR',
    viewport: { width: 1400, height: 900 },
  });
  page = browser.pages()[0] ?? await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
});

after(async () => {
  await browser?.close();
  haetae?.kill('SIGTERM');
  upstream?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('Security Control Center in a browser', { skip: HAETAE ? false : 'HAETAE_UP_BINARY not set (run .ci/suites/40-control.sh)' }, () => {
  it('logs in with the first admin and lands on the Korean dashboard', async () => {
    await page.goto(`${baseUrl}/login`);
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', PASSWORD);
    await Promise.all([page.waitForURL(`${baseUrl}/`), page.click('button[type=submit]')]);
    assert.equal(await page.getAttribute('html', 'lang'), 'ko');
    assert.ok(await page.locator('#fig-events').isVisible());
    await shot('01-dashboard-empty');
  });

  it('creates a service', async () => {
    await page.goto(`${baseUrl}/services`);
    await page.fill('#new-service input[name=id]', 'transfer');
    await page.fill('#new-service input[name=name]', '계좌이체');
    await page.fill('#new-service input[name=path_prefix]', '/bank/transfer');
    await page.fill('#new-service input[name=upstream]', upstreamUrl);
    await submitAndReload(() => page.click('#new-service button[type=submit]'));
    assert.match(await page.locator('#services').textContent(), /transfer/);
    await shot('02-services');
  });

  it('adds device-info and restrict filters and the restricted-device list', async () => {
    await page.goto(`${baseUrl}/filters`);
    await page.fill('#new-filter input[name=id]', 'device-info-1');
    await page.selectOption('#new-filter select[name=kind]', 'device-info');
    await page.fill('#new-filter textarea[name=config]', '{}');
    await submitAndReload(() => page.click('#new-filter button[type=submit]'));
    await page.fill('#new-filter input[name=id]', 'restrict-1');
    await page.selectOption('#new-filter select[name=kind]', 'restrict');
    await page.fill('#new-filter textarea[name=config]',
      '{"device_lists": ["restricted-devices"], "user_header": "X-User-Id", "notice": "page", "notice_path": "/notice"}');
    await submitAndReload(() => page.click('#new-filter button[type=submit]'));
    assert.match(await page.locator('#filters').textContent(), /device-info-1/);
    assert.match(await page.locator('#filters').textContent(), /restrict-1/);
    await page.goto(`${baseUrl}/lists`);
    await page.fill('#new-list input[name=name]', 'restricted-devices');
    await page.selectOption('#new-list select[name=kind]', 'device');
    await page.fill('#new-list textarea[name=entries]', 'BLOCKED-DEVICE-1');
    await submitAndReload(() => page.click('#new-list button[type=submit]'));
    assert.match(await page.locator('#lists').textContent(), /BLOCKED-DEVICE-1/);
  });

  it('maps device-info then restrict to the service by clicking their matrix cells', async () => {
    await page.goto(`${baseUrl}/matrix`);
    await submitAndReload(() => page.locator('button.cell[data-service=transfer][data-filter=device-info-1]').click());
    assert.equal(await page.locator('button.cell[data-service=transfer][data-filter=device-info-1]').getAttribute('data-mapped'), 'true');
    const cell = page.locator('button.cell[data-service=transfer][data-filter=restrict-1]');
    assert.equal(await cell.getAttribute('data-mapped'), 'false');
    await submitAndReload(() => cell.click());
    assert.equal(await page.locator('button.cell[data-service=transfer][data-filter=restrict-1]').getAttribute('data-mapped'), 'true');
    await shot('03-matrix');
  });

  it('sets a matrix cell to monitor for this service only, then back to the filter\'s mode', async () => {
    await page.goto(`${baseUrl}/matrix`);
    const select = 'select.cell-mode[data-service=transfer][data-filter=restrict-1]';
    await submitAndReload(() => page.selectOption(select, 'monitor'));
    const td = page.locator('td:has(button.cell[data-service=transfer][data-filter=restrict-1])');
    assert.match(await td.getAttribute('class'), /mode-monitor/);
    await shot('03b-matrix-cell-monitor');
    await submitAndReload(() => page.selectOption(select, 'inherit'));
    assert.match(await td.getAttribute('class'), /mode-enforce/);
  });

  it('adds an alert rule for any attempt from a restricted device', async () => {
    await page.goto(`${baseUrl}/alerts`);
    await page.fill('#new-rule input[name=id]', 'restricted-device');
    await page.fill('#new-rule input[name=name]', '제한 단말 접근');
    await page.selectOption('#new-rule select[name=severity]', 'high');
    await page.selectOption('#new-rule select[name=type]', 'each');
    await page.fill('#new-rule input[name=action]', 'restrict.*');
    await page.selectOption('#new-rule select[name=group_by]', 'device');
    await submitAndReload(() => page.click('#new-rule button[type=submit]'));
    assert.match(await page.locator('#alert-rules').textContent(), /restricted-device/);
    await shot('04a-alert-rules');
  });

  it('publishes the draft as version 1', async () => {
    await page.goto(`${baseUrl}/policy`);
    assert.match(await page.locator('#draft').textContent(), /transfer/);
    await page.fill('#publish input[name=comment]', 'browser test');
    await submitAndReload(() => page.click('#publish button[type=submit]'));
    assert.match(await page.locator('#versions').textContent(), /v1/);
    await shot('04-policy');
  });

  it('the gateway runs the published policy: an allowed device reaches the app', async () => {
    // The Center publishes on the bus and the gateway in the same process swaps its chain;
    // poll briefly rather than assume when that happened.
    let r;
    for (let i = 0; i < 100; i += 1) {
      r = await throughGateway('/bank/transfer/form', { device: 'PHONE-OK-7', user: 'kim' });
      if (r.status === 200) break;
      await new Promise((done) => setTimeout(done, 100));
    }
    assert.equal(r.status, 200);
    assert.equal(r.body, 'app saw /bank/transfer/form');
  });

  it('shows the event and the alert of a restricted device on the dashboard without reloading', async () => {
    await page.goto(`${baseUrl}/`);
    await page.waitForSelector('body[data-live=open]');
    await page.waitForFunction(() => document.getElementById('fig-gateways').textContent === '1/1');
    let reloaded = false;
    page.once('load', () => { reloaded = true; });
    const before = upstreamSaw.length;
    const r = await throughGateway('/bank/transfer/submit', { device: 'BLOCKED-DEVICE-1', user: 'blocked-user' });
    assert.equal(r.status, 403, 'a restricted device gets the notice page');
    assert.match(r.body, /이용이 제한된 거래입니다/);
    assert.equal(upstreamSaw.length, before, 'the request never reached the app');
    // device-info's transaction record comes first; the decision is restrict's.
    const row = page.locator('#latest-events tr', { hasText: /restrict\.(notice|respond)/ });
    await row.first().waitFor({ timeout: 15000 });
    assert.match(await row.first().textContent(), /blocked-user/);
    assert.match(await row.first().textContent(), /BLOCKED-DEVICE-1/);
    await page.waitForFunction(() => document.getElementById('fig-blocked').textContent === '1');
    await page.waitForSelector('#chart rect.failures');
    await page.waitForFunction(() => document.getElementById('top-users').textContent.includes('blocked-user'));
    const alert = page.locator('#latest-alerts tbody tr', { hasText: 'BLOCKED-DEVICE-1' });
    await alert.first().waitFor({ timeout: 15000 });
    assert.match(await alert.first().textContent(), /restricted-device/);
    assert.equal(reloaded, false, 'the dashboard must update in place');
    await shot('05-dashboard-live-event');
  });

  it('the analysis page names the restricted device and the user behind it', async () => {
    await page.goto(`${baseUrl}/analysis`);
    await page.click('p.presets a >> nth=0');
    await page.waitForSelector('#analysis-chart rect');
    const row = page.locator('#analysis tr[data-value="BLOCKED-DEVICE-1"]');
    assert.match(await row.textContent(), /blocked-user \(1\)/);
    assert.equal(await page.locator('#analysis tbody tr').count(), 1, 'only restrict.* decisions are counted');
    await shot('05b-analysis-restricted-devices');
  });

  it('shows a missing required control in red on the security-check matrix', async () => {
    await page.goto(`${baseUrl}/security-check`);
    await page.selectOption('#requirements select[name=service]', 'transfer');
    await page.check('#requirements input[value=restrict]');
    await page.check('#requirements input[value=otp]');
    await submitAndReload(() => page.click('#requirements button[type=submit]'));
    const row = page.locator('#security-check tr[data-service=transfer]');
    const gap = row.locator('td[data-control=otp]');
    assert.equal(await gap.getAttribute('class'), 'check-gap');
    const color = await gap.evaluate((el) => getComputedStyle(el).color);
    const [r, g, b] = color.match(/\d+/g).map(Number);
    assert.ok(r > 150 && g < 80 && b < 80, `a gap is drawn in red, got ${color}`);
    assert.equal(await row.locator('td[data-control=restrict]').getAttribute('class'), 'check-met');
    await shot('06-security-check');
  });

  it('enrols a TOTP second factor and then needs it to log in', async () => {
    await page.goto(`${baseUrl}/account`);
    await page.click('#totp-start');
    // The secret arrives from the API after the click: wait until it is on the page.
    await page.locator('#totp-secret').filter({ hasText: /^[A-Z2-7]{16,}=*$/ }).waitFor();
    const secret = (await page.locator('#totp-secret').textContent()).trim();
    assert.match(await page.locator('#totp-uri').textContent(), /^otpauth:\/\/totp\/haetae:admin\?secret=/);
    // The QR code the server drew is shown (a data: SVG image, allowed by the CSP) and decoded
    // by the browser into a square picture of a few hundred modules.
    const qr = page.locator('#totp-qr');
    await qr.waitFor({ state: 'visible' });
    await page.waitForFunction(() => {
      const img = document.getElementById('totp-qr');
      return img.complete && img.naturalWidth > 0;
    });
    const box = await qr.boundingBox();
    assert.ok(box.width >= 150 && Math.abs(box.width - box.height) < 1, `QR box ${JSON.stringify(box)}`);
    assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;charset=utf-8,%3Csvg/);
    await shot('07-totp-qr');
    await page.fill('#totp-confirm input[name=code]', totp(secret, Date.now() / 1000));
    await page.click('#totp-confirm button[type=submit]');
    await page.locator('#totp-recovery').waitFor({ state: 'visible' });
    const codes = (await page.locator('#totp-codes').textContent()).trim().split('\n');
    assert.equal(codes.length, 10);
    await shot('07b-totp-enrolled');
    // Log out; the password alone is not enough any more.
    await Promise.all([page.waitForURL(/\/login/), page.click('form.logout button')]);
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', PASSWORD);
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
    assert.match(page.url(), /\/login/);
    assert.ok(await page.locator('p.error').isVisible());
    // A recovery code works once (the enrolment code's time step is used up already).
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', PASSWORD);
    await page.fill('input[name=otp]', codes[0]);
    await Promise.all([page.waitForURL(`${baseUrl}/`), page.click('button[type=submit]')]);
    await shot('08-login-with-recovery-code');
  });

  it('ran without script errors or CSP violations', () => {
    assert.deepEqual(pageErrors, []);
  });
});
