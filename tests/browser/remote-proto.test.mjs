// The browser's remote-support protocol (crates/haetae-control/assets/remote/proto.js) against
// the shared test vectors that the Rust implementation regenerates byte for byte
// (crates/haetae-remote/testdata/vectors.json): key agreement, SAS, keys, handshake frames,
// sealed frames, every application and relay message, and the frames every decoder refuses.
// Then the fail-closed rules: replayed, reordered, altered, retyped and reflected frames.
// Needs only Node 20 (WebCrypto X25519, HKDF, AES-GCM); no browser.
//
// Run: node --test tests/browser/remote-proto.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as P from '../../crates/haetae-control/assets/remote/proto.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const V = JSON.parse(readFileSync(resolve(ROOT, 'crates/haetae-remote/testdata/vectors.json'), 'utf8'));
const h = V.handshake;
const u = P.unhex;
const sid = u(h.sid);
const agentFixed = { secret: u(h.agent_secret), public: u(h.agent_public), nonce: u(h.agent_nonce) };
const customerFixed = { secret: u(h.customer_secret), public: u(h.customer_public), nonce: u(h.customer_nonce) };

/** The handshake of the vectors, run through the JS classes; returns both pending channels. */
async function vectorHandshake() {
  const [customer, commit] = await P.CustomerHandshake.start(sid, customerFixed);
  const agent = await P.AgentHandshake.start(sid, agentFixed);
  const agentKey = agent.onCommit(P.decodePeer(P.encodePeer(commit)));
  const [customerKey, customerPending] = await customer.onAgentKey(P.decodePeer(P.encodePeer(agentKey)));
  const agentPending = await agent.onCustomerKey(P.decodePeer(P.encodePeer(customerKey)));
  return { commit, agentKey, customerKey, agentPending, customerPending };
}

/** Both channels open, after the agent confirmed (frame a->c 0 consumed). */
async function openPair() {
  const { agentPending, customerPending } = await vectorHandshake();
  const [agent, first] = await agentPending.confirmSas();
  const customer = await customerPending.onConfirmation(first);
  return { agent, customer };
}

describe('test vectors shared with the Rust implementation', () => {
  it('handshake: commitment, frames, transcript, SAS, keys', async () => {
    const { commit, agentKey, customerKey, agentPending, customerPending } = await vectorHandshake();
    assert.equal(P.hex(commit.commit), h.commit);
    assert.equal(P.hex(P.encodePeer(commit)), h.frames.commit);
    assert.equal(P.hex(P.encodePeer(agentKey)), h.frames.agent_key);
    assert.equal(P.hex(P.encodePeer(customerKey)), h.frames.customer_key);
    for (const pending of [agentPending, customerPending]) {
      const s = pending.secrets;
      assert.equal(P.hex(s.transcript), h.transcript);
      assert.equal(pending.sas, h.sas);
      assert.equal(P.hex(s.keyA2c), h.key_a2c);
      assert.equal(P.hex(s.keyC2a), h.key_c2a);
      assert.equal(P.hex(s.resume), h.resume_secret);
    }
    // The shared secret itself, through deriveSecrets with the vector's value.
    const again = await P.deriveSecrets(sid, u(h.commit), agentFixed, customerFixed, u(h.shared));
    assert.equal(again.sas, h.sas);
  });

  it('sealed frames: the same bytes as Rust, and they open on the other side', async () => {
    const { agentPending, customerPending } = await vectorHandshake();
    const [agent, first] = await agentPending.confirmSas();
    assert.equal(P.hex(P.encodePeer(first)), V.sealed[0].frame);
    const customer = await customerPending.onConfirmation(P.decodePeer(u(V.sealed[0].frame)));
    const chat = await agent.seal({ type: 'Chat', id: 1n, text: '안녕하세요, 상담원입니다' });
    assert.equal(P.hex(P.encodePeer(chat)), V.sealed[1].frame);
    const fromCustomer = await customer.seal({ type: 'Chat', id: 1n, text: 'hello' });
    assert.equal(P.hex(P.encodePeer(fromCustomer)), V.sealed[2].frame);
    const got = await customer.open(P.decodePeer(u(V.sealed[1].frame)));
    assert.deepEqual(got, { type: 'Chat', id: 1n, text: '안녕하세요, 상담원입니다' });
    const back = await agent.open(P.decodePeer(u(V.sealed[2].frame)));
    assert.deepEqual(back, { type: 'Chat', id: 1n, text: 'hello' });
    for (const s of V.sealed) {
      assert.equal(P.hex(P.frameNonce(BigInt(s.seq))), s.nonce);
      assert.equal(P.hex(P.frameAad(sid, s.direction === 'a->c' ? 0 : 1, BigInt(s.seq), s.type)), s.aad);
    }
  });

  it(`every application message (${V.messages.length}) decodes and re-encodes to the same bytes`, () => {
    for (const m of V.messages) {
      const msg = P.decodeAppBody(m.type, u(m.body));
      assert.equal(P.MessageType.byte(msg.type), m.type, m.name);
      assert.equal(P.hex(P.encodeAppBody(msg)), m.body, m.name);
    }
  });

  it(`every relay message (${V.relay.length}) decodes and re-encodes to the same bytes`, () => {
    for (const m of V.relay) {
      const msg = P.decodeRelay(u(m.frame));
      assert.ok(m.name.startsWith(msg.type), `${m.name} decoded as ${msg.type}`);
      assert.equal(P.hex(P.encodeRelay(msg)), m.frame, m.name);
    }
    assert.deepEqual(P.decodeRelay(u(V.relay[1].frame)).code, '012345678');
  });

  it(`frames every decoder must refuse (${V.invalid.length}) are refused`, () => {
    for (const m of V.invalid) {
      assert.throws(() => P.decodePeer(u(m.frame)), P.DecodeError, m.why);
    }
  });
});

describe('the channel fails closed', () => {
  it('a replayed frame closes it', async () => {
    const { agent, customer } = await openPair();
    const a = await agent.seal({ type: 'Chat', id: 1n, text: 'one' });
    await customer.open(a);
    await assert.rejects(customer.open(a), (e) => e.kind === 'sequence');
    assert.ok(customer.closed);
    const b = await agent.seal({ type: 'Chat', id: 2n, text: 'two' });
    await assert.rejects(customer.open(b), (e) => e.kind === 'closed');
  });

  it('a reordered frame closes it', async () => {
    const { agent, customer } = await openPair();
    await agent.seal({ type: 'Chat', id: 1n, text: 'one' });
    const second = await agent.seal({ type: 'Chat', id: 2n, text: 'two' });
    await assert.rejects(customer.open(second), (e) => e.kind === 'sequence');
    assert.ok(customer.closed);
  });

  it('a flipped ciphertext bit closes it', async () => {
    const { agent, customer } = await openPair();
    const f = await agent.seal({ type: 'Pointer', x: 1, y: 2, visible: true });
    f.ciphertext[0] ^= 1;
    await assert.rejects(customer.open(f), (e) => e.kind === 'integrity');
    assert.ok(customer.closed);
  });

  it('a frame whose clear type byte was changed closes it', async () => {
    const { agent, customer } = await openPair();
    const f = await agent.seal({ type: 'Chat', id: 1n, text: 'x' });
    f.kind = P.MessageType.byte('UrlPush');
    await assert.rejects(customer.open(f), (e) => e.kind === 'integrity');
  });

  it('a frame reflected back to its sender fails (other key, other direction)', async () => {
    const { agent } = await openPair();
    const f = await agent.seal({ type: 'Chat', id: 1n, text: 'x' });
    // The agent expects customer frame 0; its own frame 1 reflected is refused either way.
    f.seq = 0n;
    await assert.rejects(agent.open(f), (e) => e.kind === 'integrity');
  });

  it('a substituted customer key is caught by the commitment', async () => {
    const [, commit] = await P.CustomerHandshake.start(sid, customerFixed);
    const agent = await P.AgentHandshake.start(sid, agentFixed);
    agent.onCommit(commit);
    const other = await P.x25519KeyPair();
    await assert.rejects(agent.onCustomerKey({ type: 'CustomerKey', public: other.public, nonce: customerFixed.nonce }),
      (e) => e.kind === 'commit-mismatch');
  });

  it('a relay in the middle with its own keys makes the two SAS differ', async () => {
    // The relay plays customer to the agent and agent to the customer.
    const [customer, commit] = await P.CustomerHandshake.start(sid);
    const agent = await P.AgentHandshake.start(sid);
    const [mitmC, mitmCommit] = await P.CustomerHandshake.start(sid);
    const mitmA = await P.AgentHandshake.start(sid);
    const toCustomer = mitmA.onCommit(commit);
    const [, customerPending] = await customer.onAgentKey(toCustomer);
    const agentKey = agent.onCommit(mitmCommit);
    const [mitmReveal] = await mitmC.onAgentKey(agentKey);
    const agentPending = await agent.onCustomerKey(mitmReveal);
    assert.notEqual(agentPending.sas, customerPending.sas);
    assert.deepEqual(agentPending.reject(), { type: 'Abort', reason: 'SasMismatch' });
  });

  it('the customer accepts nothing before SasConfirmed', async () => {
    const { agentPending, customerPending } = await vectorHandshake();
    const early = await P.Channel.create('agent', sid, agentPending.secrets);
    const chat = await early.seal({ type: 'Chat', id: 1n, text: 'too early' });
    await assert.rejects(customerPending.onConfirmation(chat), (e) => e.kind === 'not-confirmed');
  });

  it('a message the receiver would refuse is not sent, and the channel stays open', async () => {
    const { agent } = await openPair();
    await assert.rejects(agent.seal({ type: 'UrlPush', url: 'javascript:alert(1)' }), (e) => e.kind === 'encode' && !e.fatal);
    await assert.rejects(agent.seal({ type: 'Chat', id: 1n, text: 'x'.repeat(P.MAX_CHAT + 1) }), (e) => e.kind === 'encode');
    assert.ok(!agent.closed);
  });

  it('many frames sealed at once leave and open in order', async () => {
    const { agent, customer } = await openPair();
    const sealed = await Promise.all(Array.from({ length: 50 }, (_, i) => agent.seal({ type: 'Chat', id: BigInt(i), text: `m${i}` })));
    assert.deepEqual(sealed.map((s) => s.seq), Array.from({ length: 50 }, (_, i) => BigInt(i + 1)));
    const opened = await Promise.all(sealed.map((s) => customer.open(s)));
    assert.deepEqual(opened.map((m) => m.text), Array.from({ length: 50 }, (_, i) => `m${i}`));
  });
});

describe('decoders never throw anything but DecodeError', () => {
  it('on 20,000 random and mutated frames', () => {
    let seed = 12345;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    const seeds = [...V.relay.map((m) => u(m.frame)), ...V.sealed.map((m) => u(m.frame)), ...Object.values(h.frames).map(u)];
    for (let i = 0; i < 20000; i++) {
      const base = Uint8Array.from(seeds[rnd() % seeds.length]);
      for (let k = 0; k < 1 + (rnd() % 4); k++) base[rnd() % base.length] = rnd() & 0xff;
      const cut = base.subarray(0, rnd() % (base.length + 1));
      for (const dec of [P.decodeRelay, P.decodePeer]) {
        try { dec(cut); } catch (e) { assert.ok(e instanceof P.DecodeError, `${e}`); }
      }
      const kind = 0x20 + (rnd() % 21);
      try { P.decodeAppBody(kind, cut.subarray(6)); } catch (e) { assert.ok(e instanceof P.DecodeError, `${e}`); }
    }
  });
});

describe('the Center-signed session policy (Ed25519, signed by the Rust side)', () => {
  const pv = V.policy;
  const key = u(pv.center_public);
  const sig = u(pv.signature);

  it('verifies and parses exactly as Rust does', async () => {
    const p = await P.verifyPolicy(key, pv.payload, sig, sid, pv.valid_at);
    assert.equal(p.grade, 'indirect');
    assert.equal(p.agent, '김상담.agent');
    assert.deepEqual(p.features, { pointer: true, drawing: true, url: true, control: false, files: false });
    assert.equal(P.policyAllows(p, 'Pointer'), true);
    assert.equal(P.policyAllows(p, 'ControlRequest'), false);
    assert.equal(P.policyAllows(p, 'FileOffer'), false);
    assert.equal(P.policyAllows(P.noPolicy(), 'Drawing'), false);
    assert.equal(P.policyAllows(P.noPolicy(), 'Chat'), true);
  });

  it('refuses an escalated, foreign-session, expired or forged policy', async () => {
    const escalated = pv.payload.replace('grade=indirect', 'grade=direct')
      .replace('features=pointer,drawing,url', 'features=pointer,drawing,url,control,files');
    await assert.rejects(P.verifyPolicy(key, escalated, sig, sid, pv.valid_at), /signature/);
    await assert.rejects(P.verifyPolicy(key, pv.payload, sig, new Uint8Array(16), pv.valid_at), /another session/);
    await assert.rejects(P.verifyPolicy(key, pv.payload, sig, sid, pv.expired_at), /expired/);
    const flipped = Uint8Array.from(sig);
    flipped[10] ^= 1;
    await assert.rejects(P.verifyPolicy(key, pv.payload, flipped, sid, pv.valid_at), /signature/);
    assert.throws(() => P.parsePolicy(pv.payload.replace('grade=indirect\nfeatures=pointer,drawing,url', 'grade=indirect\nfeatures=pointer,control')), /grade/);
    assert.throws(() => P.parsePolicy(pv.payload.replace('\nmax_file=0', '\nmax_file=00')), /malformed/);
  });
});
