// Browser tests of the Security Control Center: a real Control Center (the browser_fixture
// example: SQLite, in-process bus) driven through Debian's chromium by playwright-core.
// One story, step by step, each step one behaviour; screenshots go to
// target/browser-screenshots/ for CI artifacts.
//
// Run: cargo build -p haetae-control --example browser_fixture && npm run test:browser

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHmac, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FIXTURE = process.env.HAETAE_CONTROL_FIXTURE
  ?? join(ROOT, 'target', 'debug', 'examples', 'browser_fixture');
const BROWSER = process.env.HAETAE_TEST_BROWSER ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'target', 'browser-screenshots');
const PASSWORD = 'browser test password';

let fixture;
let baseUrl;
let browser;
let page;
let profile;
const emitted = new Map();
const pageErrors = [];

function startFixture() {
  return new Promise((resolveStart, reject) => {
    fixture = spawn(FIXTURE, [], {
      env: { ...process.env, HAETAE_ADMIN_PASSWORD: PASSWORD, RUST_LOG: 'warn' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    fixture.on('error', reject);
    const lines = createInterface({ input: fixture.stdout });
    lines.on('line', (line) => {
      const [word, rest] = [line.split(' ')[0], line.split(' ').slice(1).join(' ')];
      if (word === 'LISTENING') resolveStart(rest);
      if (word === 'EMITTED') emitted.get(rest)?.();
    });
    const timer = setTimeout(() => reject(new Error(`${FIXTURE} did not start within 30 s`)), 30000);
    timer.unref();
  });
}

/** Emits one event on the bus the way a gateway does; resolves once the emitter flushed. */
function emitEvent(fields) {
  const id = randomUUID();
  const event = {
    '@timestamp': new Date().toISOString(),
    event: { id, kind: 'event', category: ['intrusion_detection'], action: 'restrict.block', outcome: 'failure', severity: 73 },
    haetae: { component: 'gateway', instance: 'gw-browser', filter: 'restrict-1', policy_version: 1 },
    ...fields,
  };
  return new Promise((done) => {
    emitted.set(id, () => done(id));
    fixture.stdin.write(`${JSON.stringify(event)}\n`);
  });
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
  baseUrl = await startFixture();
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
  fixture?.stdin.end();
  fixture?.kill('SIGTERM');
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe('Security Control Center in a browser', () => {
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
    await page.fill('#new-service input[name=upstream]', 'http://127.0.0.1:9000');
    await submitAndReload(() => page.click('#new-service button[type=submit]'));
    assert.match(await page.locator('#services').textContent(), /transfer/);
    await shot('02-services');
  });

  it('adds a restrict filter and its restricted-device list', async () => {
    await page.goto(`${baseUrl}/filters`);
    await page.fill('#new-filter input[name=id]', 'restrict-1');
    await page.selectOption('#new-filter select[name=kind]', 'restrict');
    await page.fill('#new-filter textarea[name=config]', '{"device_lists": ["restricted-devices"]}');
    await submitAndReload(() => page.click('#new-filter button[type=submit]'));
    assert.match(await page.locator('#filters').textContent(), /restrict-1/);
    await page.goto(`${baseUrl}/lists`);
    await page.fill('#new-list input[name=name]', 'restricted-devices');
    await page.selectOption('#new-list select[name=kind]', 'device');
    await page.fill('#new-list textarea[name=entries]', 'BLOCKED-DEVICE-1');
    await submitAndReload(() => page.click('#new-list button[type=submit]'));
    assert.match(await page.locator('#lists').textContent(), /BLOCKED-DEVICE-1/);
  });

  it('maps restrict to the service by clicking its matrix cell', async () => {
    await page.goto(`${baseUrl}/matrix`);
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

  it('shows an event from the bus on the dashboard without reloading', async () => {
    await page.goto(`${baseUrl}/`);
    await page.waitForSelector('body[data-live=open]');
    let reloaded = false;
    page.once('load', () => { reloaded = true; });
    const id = await emitEvent({
      user: { id: 'blocked-user' },
      device: { id: 'BLOCKED-DEVICE-1' },
      service: { id: 'transfer' },
      message: 'request from a restricted device',
    });
    const row = page.locator(`#latest-events tr[data-event-id="${id}"]`);
    await row.waitFor({ timeout: 10000 });
    assert.match(await row.textContent(), /BLOCKED-DEVICE-1/);
    await page.waitForFunction(() => document.getElementById('fig-blocked').textContent === '1');
    await page.waitForSelector('#chart rect.failures');
    await page.waitForFunction(() => document.getElementById('top-users').textContent.includes('blocked-user'));
    const alert = page.locator('#latest-alerts tbody tr', { hasText: 'BLOCKED-DEVICE-1' });
    await alert.first().waitFor({ timeout: 10000 });
    assert.match(await alert.first().textContent(), /restricted-device/);
    assert.equal(reloaded, false, 'the dashboard must update in place');
    await shot('05-dashboard-live-event');
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
