// Glass-to-glass latency and bitrate of remote support in two headless Chromium instances
// against `haetae up` (used by bench/remote.sh). The customer's page shows a counter as 10
// black/white blocks; the agent's canvas is read back on every animation frame; latency =
// when the agent's canvas first shows a value minus when the customer's page showed it (one
// machine, one clock: Date.now() in both browsers). Bitrate = bytes the relay sends to the
// agent (sealed frames, framing included) through a counting TCP proxy, per second.
//
//   HAETAE_UP_BINARY=target/release/haetae HAETAE_TEST_BROWSER=/usr/bin/chromium \
//     node bench/remote-g2g.mjs [SECONDS]
//
// Prints one JSON line per scenario.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HAETAE = process.env.HAETAE_UP_BINARY;
const BROWSER = process.env.HAETAE_TEST_BROWSER ?? '/usr/bin/chromium';
const SECONDS = Number(process.argv[2] ?? 8);
const PASSWORD = 'remote bench password 1';
const BITS = 10;
const blocksFor = (view) => Array.from({ length: BITS }, (_, i) => {
  const w = Math.floor(view.width / 14);
  return { x: 40 + i * (w + 20), y: view.height - w - 40, w, h: w };
});

function freePort() {
  return new Promise((done, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => done(port)); });
  });
}

/** A TCP proxy that counts bytes from the server to the client once the WebSocket is up. */
function countingProxy(port) {
  const state = { bytes: 0 };
  const server = createServer((client) => {
    const up = connect(port, '127.0.0.1');
    client.pipe(up);
    let ws = false;
    up.on('data', (d) => {
      if (!ws && d.toString('latin1').startsWith('HTTP/1.1 101')) ws = true;
      else if (ws) state.bytes += d.length;
      client.write(d);
    });
    for (const s of [client, up]) s.on('error', () => { client.destroy(); up.destroy(); });
    up.on('end', () => client.end());
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done({ server, state, port: server.address().port })));
}

async function main() {
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'haetae-bench-remote-'));
  const [center, gw, adm] = [await freePort(), await freePort(), await freePort()];
  const up = spawn(HAETAE, ['up'], {
    env: { ...process.env, HAETAE_DATA_DIR: dir, HAETAE_CONTROL__LISTEN: `127.0.0.1:${center}`, HAETAE_GATEWAY__LISTEN: `127.0.0.1:${gw}`,
      HAETAE_GATEWAY__ADMIN_LISTEN: `127.0.0.1:${adm}`, HAETAE_ADMIN_PASSWORD: PASSWORD, HAETAE_LOG__LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${center}`;
  for (let i = 0; i < 600; i++) {
    try { if ((await fetch(`${base}/login`)).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  const proxy = await countingProxy(center);
  const via = `http://127.0.0.1:${proxy.port}`;
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];
  const agentBrowser = await chromium.launch({ executablePath: BROWSER, args });
  const customerBrowser = await chromium.launch({ executablePath: BROWSER, args: [...args, '--auto-accept-this-tab-capture'] });
  const agent = await (await agentBrowser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await agent.goto(`${via}/login`);
  await agent.fill('input[name=username]', 'admin');
  await agent.fill('input[name=password]', PASSWORD);
  await Promise.all([agent.waitForURL(`${via}/`), agent.click('button[type=submit]')]);

  const results = [];
  try {
    for (const [name, view, mode] of [
      ['counter 10/s', { width: 1280, height: 720 }, 100],
      ['counter every frame', { width: 1280, height: 720 }, 0],
      ['counter every frame', { width: 1920, height: 1080 }, 0],
      ['static page', { width: 1280, height: 720 }, 'static'],
      ['scrolling document', { width: 1280, height: 720 }, 'scroll'],
    ]) {
      const customer = await (await customerBrowser.newContext({ viewport: view })).newPage();
      await agent.goto(`${via}/remote`);
      await agent.click('#rs-issue');
      await agent.waitForFunction(() => document.getElementById('rs-code').dataset.code);
      const code = await agent.$eval('#rs-code', (el) => el.dataset.code);
      await customer.goto(`${base}/r/${code}`);
      await customer.check('#rs-agree');
      await customer.click('#rs-connect');
      await agent.waitForSelector('#rs-sas-box:not([hidden])');
      await agent.click('#rs-sas-ok');
      await customer.waitForSelector('#rs-step-share:not([hidden])');
      const blocks = blocksFor(view);
      await customer.evaluate(({ blocks, mode }) => {
        if (mode === 'scroll') {
          const doc = document.createElement('article');
          for (let i = 0; i < 400; i++) {
            const p = document.createElement('p');
            p.textContent = `${i}. 해태 원격지원 안내문 — 계좌 이체 한도 변경은 본인 확인 후 가능합니다. Remote support notice, paragraph ${i}.`;
            doc.append(p);
          }
          document.body.append(doc);
          return;
        }
        const cells = blocks.map((b) => {
          const d = document.createElement('div');
          Object.assign(d.style, { position: 'fixed', left: `${b.x}px`, top: `${b.y}px`, width: `${b.w}px`, height: `${b.h}px`, zIndex: 3001, background: '#000' });
          document.body.append(d);
          return d;
        });
        window.__shown = {};
        let n = 0;
        const show = () => {
          n = (n + 1) % (1 << blocks.length);
          cells.forEach((c, i) => { c.style.background = (n >> i) & 1 ? '#fff' : '#000'; });
          window.__shown[n] = Date.now();
        };
        window.__start = () => {
          if (mode === 'static') return;
          if (mode > 0) setInterval(show, mode);
          else { const loop = () => { show(); requestAnimationFrame(loop); }; loop(); }
        };
      }, { blocks, mode });
      await customer.click('#rs-share');
      await agent.waitForFunction(() => Number(document.getElementById('rs-screen').dataset.frames ?? 0) > 3, null, { timeout: 30000 });
      await new Promise((r) => setTimeout(r, 1500)); // let the encoder settle
      if (mode !== 'scroll') await customer.evaluate(() => window.__start());
      else await customer.evaluate(() => { const loop = () => { window.scrollBy(0, 3); if (window.scrollY + innerHeight >= document.body.scrollHeight) window.scrollTo(0, 0); requestAnimationFrame(loop); }; loop(); });
      await agent.evaluate(({ blocks, view }) => {
        const canvas = document.getElementById('rs-screen');
        const ctx = canvas.getContext('2d', { willReadFrequently: true });
        window.__seen = {};
        window.__reading = true;
        const read = () => {
          if (!window.__reading) return;
          const sx = canvas.width / view.width;
          const sy = canvas.height / view.height;
          let v = 0;
          blocks.forEach((b, i) => {
            const px = ctx.getImageData(Math.round((b.x + b.w / 2) * sx) - 2, Math.round((b.y + b.h / 2) * sy) - 2, 4, 4).data;
            let lum = 0;
            for (let k = 0; k < px.length; k += 4) lum += (px[k] + px[k + 1] + px[k + 2]) / 3;
            if (lum / (px.length / 4) > 128) v |= 1 << i;
          });
          if (!(v in window.__seen)) window.__seen[v] = Date.now();
          requestAnimationFrame(read);
        };
        requestAnimationFrame(read);
      }, { blocks, view });
      const frames0 = Number(await agent.$eval('#rs-screen', (c) => c.dataset.frames));
      const bytes0 = proxy.state.bytes;
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      const bytes = proxy.state.bytes - bytes0;
      const frames = Number(await agent.$eval('#rs-screen', (c) => c.dataset.frames)) - frames0;
      const seen = await agent.evaluate(() => { window.__reading = false; return window.__seen; });
      const shown = await customer.evaluate(() => window.__shown ?? {});
      const lat = Object.keys(seen).filter((v) => v in shown).map((v) => seen[v] - shown[v]).filter((d) => d >= 0 && d < 5000).sort((a, b) => a - b);
      const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
      const row = {
        scenario: name, resolution: `${view.width}x${view.height}`, seconds: SECONDS, fps: +(frames / SECONDS).toFixed(1),
        kbit_s: Math.round((bytes * 8) / SECONDS / 1000), values: lat.length, p50_ms: pct(0.5), p95_ms: pct(0.95),
      };
      console.log(JSON.stringify(row));
      results.push(row);
      await agent.click('#rs-end');
      await customer.close();
    }
  } finally {
    await agentBrowser.close();
    await customerBrowser.close();
    proxy.server.close();
    up.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
