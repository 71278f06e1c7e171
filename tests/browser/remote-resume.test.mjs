// Relay failover in the browser's protocol code (crates/haetae-control/assets/remote/proto.js),
// without a browser: the resume vectors that the Rust implementation writes
// (crates/haetae-remote/testdata/vectors.json, "resume": a chat lost with the relay, the
// re-key, both Resume frames and the retransmission) reproduced byte for byte, acks, and the
// re-key's fail-closed rules. Run: node --test tests/browser/remote-resume.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as P from '../../crates/haetae-control/assets/remote/proto.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const V = JSON.parse(readFileSync(resolve(ROOT, 'crates/haetae-remote/testdata/vectors.json'), 'utf8'));
const h = V.handshake;
const R = V.resume;
const u = P.unhex;
const sid = u(h.sid);
const agentFixed = { secret: u(h.agent_secret), public: u(h.agent_public), nonce: u(h.agent_nonce) };
const customerFixed = { secret: u(h.customer_secret), public: u(h.customer_public), nonce: u(h.customer_nonce) };

async function openPair() {
  const [customerHs, commit] = await P.CustomerHandshake.start(sid, customerFixed);
  const agentHs = await P.AgentHandshake.start(sid, agentFixed);
  const agentKey = agentHs.onCommit(commit);
  const [customerKey, customerPending] = await customerHs.onAgentKey(agentKey);
  const agentPending = await agentHs.onCustomerKey(customerKey);
  const [agent, first] = await agentPending.confirmSas();
  const customer = await customerPending.onConfirmation(first);
  return { agent, customer };
}

const chat = (id, text) => ({ type: 'Chat', id: BigInt(id), text });
const wire = (m) => P.decodePeer(P.encodePeer(m));

describe('resume vectors shared with the Rust implementation', () => {
  it('a lost chat, the re-key, both Resume frames and the retransmission: the same bytes', async () => {
    const { agent, customer } = await openPair();
    await customer.open(wire(await agent.seal(chat(1, '안녕하세요, 상담원입니다'))));
    await agent.open(wire(await customer.seal(chat(1, 'hello'))));
    const lost = await agent.seal(chat(2, 'lost with relay A'));
    assert.equal(P.hex(P.encodePeer(lost)), R.lost.frame);

    const agentPub = P.decodePeer(u(R.agent_rekey)).public;
    const customerPub = P.decodePeer(u(R.customer_rekey)).public;
    const agentRekey = await agent.startRekey({ secret: u(R.agent_secret), public: agentPub, nonce: u(R.agent_nonce), generation: R.generation });
    const customerRekey = await customer.startRekey({ secret: u(R.customer_secret), public: customerPub, nonce: u(R.customer_nonce), generation: R.generation });
    assert.equal(P.hex(P.encodePeer(agentRekey)), R.agent_rekey);
    assert.equal(P.hex(P.encodePeer(customerRekey)), R.customer_rekey);
    assert.equal(agent.isOpen, false, 'nothing is sealed while re-keying');
    await assert.rejects(agent.seal(chat(9, 'x')), (e) => e.kind === 'resuming' && !e.fatal);

    const agentResume = await agent.onRekey(wire(customerRekey));
    const customerResume = await customer.onRekey(wire(agentRekey));
    assert.equal(P.hex(P.encodePeer(agentResume)), R.agent_resume);
    assert.equal(P.hex(P.encodePeer(customerResume)), R.customer_resume);
    assert.deepEqual(await agent.open(wire(customerResume)), { type: 'Resume', received: 2n });
    assert.deepEqual(await customer.open(wire(agentResume)), { type: 'Resume', received: 1n });
    const resent = await agent.retransmit();
    assert.equal(resent.length, 1);
    assert.equal(P.hex(P.encodePeer(resent[0])), R.retransmitted);
    assert.deepEqual(await customer.retransmit(), []);
    assert.deepEqual(await customer.open(wire(resent[0])), chat(2, 'lost with relay A'));
    assert.ok(agent.isOpen && customer.isOpen);

    // The re-keyed keys are Rust's.
    const keys = await P.rekeyKeys(sid, u(h.resume_secret),
      { generation: 1, public: agentPub, nonce: u(R.agent_nonce) },
      { generation: 1, public: customerPub, nonce: u(R.customer_nonce) }, u(R.shared));
    assert.equal(P.hex(keys.keyA2c), R.key_a2c);
    assert.equal(P.hex(keys.keyC2a), R.key_c2a);
  });
});

describe('resume: nothing lost, nothing twice, fail closed', () => {
  it('messages lost with the relay (and sent during the outage) arrive once, in order', async () => {
    const { agent, customer } = await openPair();
    await customer.open(wire(await agent.seal(chat(1, 'a1'))));
    const inFlight = [await agent.seal(chat(2, 'a2')), await agent.seal(chat(3, 'a3'))];
    await customer.open(wire(inFlight[0])); // a2 got through, a3 died with the relay
    // Sealed before anyone noticed the relay was gone: the frame is lost, the message kept.
    assert.ok(await agent.sendOrQueue(chat(4, 'a4')));
    const ar = await agent.startRekey();
    assert.equal(await agent.sendOrQueue(chat(5, 'a5')), null, 'kept while re-keying');
    await assert.rejects(agent.sendOrQueue({ type: 'Pointer', x: 1, y: 1, visible: true }), (e) => e.kind === 'resuming');
    const cr = await customer.startRekey();
    const agentResume = await agent.onRekey(wire(cr));
    const customerResume = await customer.onRekey(wire(ar));
    await agent.open(wire(customerResume));
    await customer.open(wire(agentResume));
    const got = [];
    for (const f of await agent.retransmit()) got.push((await customer.open(wire(f))).text);
    assert.deepEqual(got, ['a3', 'a4', 'a5']);
  });

  it('a re-key from someone without the session secret closes the channel', async () => {
    const { agent, customer } = await openPair();
    await agent.startRekey();
    const forged = await customer.startRekey();
    forged.mac[0] ^= 1;
    await assert.rejects(agent.onRekey(wire(forged)), (e) => e.kind === 'resume');
    assert.ok(agent.closed);
  });

  it('a re-key replayed from an earlier resume closes the channel', async () => {
    const { agent, customer } = await openPair();
    const a1 = await agent.startRekey();
    const c1 = await customer.startRekey();
    const ra = await agent.onRekey(wire(c1));
    const rc = await customer.onRekey(wire(a1));
    await agent.open(wire(rc));
    await customer.open(wire(ra));
    await agent.retransmit();
    await customer.retransmit();
    await agent.startRekey();
    await assert.rejects(agent.onRekey(wire(c1)), (e) => e.kind === 'resume');
    assert.ok(agent.closed);
  });

  it('the first frame after a re-key must be Resume', async () => {
    const { agent, customer } = await openPair();
    const ar = await agent.startRekey();
    const cr = await customer.startRekey();
    await agent.onRekey(wire(cr));
    await customer.onRekey(wire(ar));
    customer.phase = 'open'; // a modified customer skips its Resume
    customer.sendSeq = 0n;
    const early = await customer.seal(chat(1, 'too early'));
    await assert.rejects(agent.open(wire(early)), (e) => e.kind === 'resume');
    assert.ok(agent.closed);
  });

  it('acks let the sender forget; an ack of messages never sent closes the channel', async () => {
    const { agent, customer } = await openPair();
    for (let i = 1; i <= 8; i++) await customer.open(wire(await agent.seal(chat(i, `m${i}`))));
    assert.equal(agent.unacknowledged, 9); // SasConfirmed and 8 chats
    const ack = await customer.takeAck(false);
    assert.ok(ack, 'an Ack after 8 reliable messages');
    assert.deepEqual(await agent.open(wire(ack)), { type: 'Ack', seq: 9n });
    assert.equal(agent.unacknowledged, 0);
    assert.equal(await customer.takeAck(true), null, 'nothing new to acknowledge');
    const bogus = await agent.seal({ type: 'Ack', seq: 99n });
    await assert.rejects(customer.open(wire(bogus)), (e) => e.kind === 'resume');
  });
});
