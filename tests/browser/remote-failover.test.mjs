// Relay failover with the browser pages' own code (crates/haetae-control/assets/remote/
// link.js RelayLink and proto.js) against two real `haetae relay` processes that share NATS
// JetStream KV: an agent and a customer pair on relay A by code, compare the SAS, chat; A is
// killed with SIGKILL; both ends reconnect to B with their resume tokens, re-key, and every
// chat sent around the failure arrives once, in order, within 10 s. No browser is needed
// (Node's WebSocket and WebCrypto run the same modules); the two-browser story stays in
// remote.test.mjs.
//
// Run: cargo build -p haetae && HAETAE_UP_BINARY=target/debug/haetae \
//   HAETAE_TEST_NATS=nats://127.0.0.1:4222 node --experimental-websocket --test tests/browser/remote-failover.test.mjs

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as P from '../../crates/haetae-control/assets/remote/proto.js';
import { RelayLink } from '../../crates/haetae-control/assets/remote/link.js';

const HAETAE = process.env.HAETAE_UP_BINARY;
const NATS = process.env.HAETAE_TEST_NATS;
const SKIP = !HAETAE ? 'HAETAE_UP_BINARY not set (run .ci/suites/50-remote.sh)'
  : !NATS ? 'HAETAE_TEST_NATS not set (two relay processes share NATS JetStream KV)'
    : typeof WebSocket === 'undefined' ? 'no WebSocket in this Node (run with --experimental-websocket)' : false;

function freePort() {
  return new Promise((done) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

const relays = [];
const dirs = [];

async function startRelay(id) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `haetae-relay-${id}-`));
  dirs.push(dataDir);
  const proc = spawn(HAETAE, ['relay', '--listen', `127.0.0.1:${port}`, '--relay-id', id], {
    env: {
      ...process.env,
      HAETAE_DATA_DIR: dataDir,
      HAETAE_BUS__BACKEND: 'nats',
      HAETAE_BUS__NATS_URL: NATS,
      HAETAE_LOG__LEVEL: process.env.HAETAE_TEST_LOG ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  relays.push(proc);
  const url = `ws://127.0.0.1:${port}/`;
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`haetae relay exited with ${proc.exitCode}`);
    const up = await new Promise((res) => {
      const ws = new WebSocket(url);
      ws.onopen = () => { ws.close(); res(true); };
      ws.onerror = () => res(false);
    });
    if (up) return { proc, url };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`haetae relay ${id} did not listen on ${url}`);
}

/** One end: a RelayLink and a queue of what arrives (chats in order, and the end, if any). */
function end(role, urls, first) {
  const me = { role, chats: [], ended: null, resumed: 0, waiters: [] };
  const wake = () => { for (const w of me.waiters.splice(0)) w(); };
  me.link = new RelayLink(urls, {
    role,
    onOpen: () => me.link.send(first),
    onMessage: async (msg) => {
      if (msg.type !== 'Peer') { me.relay = msg; wake(); return; }
      const peer = P.decodePeer(msg.bytes);
      if (me.channel) {
        const app = await me.channel.open(peer);
        if (app.type === 'Chat') me.chats.push(app.text);
      } else {
        me.peer = peer;
      }
      wake();
    },
    onClose: () => { me.ended = me.ended ?? 'closed'; wake(); },
    onFail: (e) => { me.ended = `failed: ${e.message}`; wake(); },
    onResumed: () => { me.resumed += 1; wake(); },
  });
  me.until = async (pred, ms = 10000, what = 'condition') => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (me.ended) throw new Error(`${role} ended: ${me.ended}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${role}: no ${what} within ${ms} ms`);
      await new Promise((r) => { me.waiters.push(r); setTimeout(r, Math.min(left, 100)); });
    }
  };
  me.nextPeer = async () => {
    await me.until(() => me.peer, 10000, 'peer message');
    const p = me.peer;
    me.peer = null;
    return p;
  };
  me.chat = (id, text) => me.link.sendApp({ type: 'Chat', id: BigInt(id), text });
  return me;
}

describe('relay failover with the browser code and two haetae relay processes', { skip: SKIP }, () => {
  let a;
  let b;
  before(async () => {
    a = await startRelay(`fo-a-${process.pid}`);
    b = await startRelay(`fo-b-${process.pid}`);
  });
  after(() => {
    for (const p of relays) if (p.exitCode === null) p.kill('SIGTERM');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('relay A is killed mid-session; both ends go on through B, no chat lost or doubled', async () => {
    const urls = [a.url, b.url];
    const agent = end('agent', urls, { type: 'AgentOpen', agent: 'agent-kim' });
    await agent.until(() => agent.relay?.type === 'CodeIssued', 10000, 'code');
    const { code } = agent.relay;
    const customer = end('customer', urls, { type: 'CustomerJoin', code });
    await agent.until(() => agent.relay?.type === 'Paired', 10000, 'pairing');
    await customer.until(() => customer.relay?.type === 'Paired', 10000, 'pairing');
    const sid = agent.relay.sid;

    // Key agreement and SAS, with the pages' classes.
    const [chs, commit] = await P.CustomerHandshake.start(sid);
    customer.link.sendPeer(commit);
    const ahs = await P.AgentHandshake.start(sid);
    agent.link.sendPeer(ahs.onCommit(await agent.nextPeer()));
    const [reveal, customerPending] = await chs.onAgentKey(await customer.nextPeer());
    customer.link.sendPeer(reveal);
    const agentPending = await ahs.onCustomerKey(await agent.nextPeer());
    assert.equal(agentPending.sas, customerPending.sas);
    const [agentCh, first] = await agentPending.confirmSas();
    agent.link.sendPeer(first);
    agent.channel = agentCh;
    agent.link.attach(agentCh);
    customer.channel = await customerPending.onConfirmation(await customer.nextPeer());
    customer.link.attach(customer.channel);
    assert.ok(agent.link.token && customer.link.token, 'both ends hold a resume token');

    await agent.chat(1, 'a1');
    await customer.chat(1, 'c1');
    await customer.until(() => customer.chats.length === 1, 5000, 'a1');
    await agent.until(() => agent.chats.length === 1, 5000, 'c1');

    // Around the failure.
    await agent.chat(2, 'a2');
    await customer.chat(2, 'c2');
    const killed = Date.now();
    a.proc.kill('SIGKILL');
    await agent.chat(3, 'a3');
    await customer.chat(3, 'c3');
    await agent.chat(4, 'a4');

    await customer.until(() => customer.chats.length === 4, 10000, 'a2..a4 after the failover');
    await agent.until(() => agent.chats.length === 3, 10000, 'c2..c3 after the failover');
    const took = Date.now() - killed;
    console.log(`failover (JS ends, haetae relay processes on NATS): both ends back and caught up ${took} ms after SIGKILL`);
    assert.ok(took < 10000);
    assert.deepEqual(customer.chats, ['a1', 'a2', 'a3', 'a4']);
    assert.deepEqual(agent.chats, ['c1', 'c2', 'c3']);
    assert.equal(agent.resumed, 1);
    assert.equal(customer.resumed, 1);
    assert.equal(agent.link.urls[agent.link.current], b.url);
    assert.equal(customer.link.urls[customer.link.current], b.url);

    // And on through B.
    await customer.chat(4, 'c4 on B');
    await agent.until(() => agent.chats.length === 4, 5000, 'c4');
    assert.equal(agent.chats[3], 'c4 on B');
    agent.link.close('Normal');
    customer.link.close('Normal');
  });
});
