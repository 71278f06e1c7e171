// The recording format in the browser's implementation (crates/haetae-control/assets/remote/
// recording.js, run in Node's WebCrypto) against what the Rust side wrote
// (crates/haetae-control/testdata/recording-vector.json): the key file imports, the wrapped
// key unwraps, every chunk opens to the same records; a moved chunk, a flipped bit and
// another key are refused. And the other way round within JavaScript: a key wrapped here
// unwraps with the private key. (WebCrypto to Rust is covered by remote-recording.test.mjs,
// whose bundle `haetae remote export-recording` decrypts.)
//
// Run: node --test tests/browser/remote-recording-format.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const { importPrivateKey, openChunk, parseRecords, unwrapKey, wrapKey } = await import(
  resolve(ROOT, 'crates/haetae-control/assets/remote/recording.js'));
const vector = JSON.parse(readFileSync(resolve(ROOT, 'crates/haetae-control/testdata/recording-vector.json'), 'utf8'));

const unhex = (s) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));

function readBundle(bytes) {
  const magic = new TextEncoder().encode('haetae-recording v1\n');
  assert.deepEqual(bytes.subarray(0, magic.length), magic);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = magic.length;
  const len = dv.getUint32(at);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(at + 4, at + 4 + len)));
  at += 4 + len;
  const chunks = [];
  while (at < bytes.length) {
    const index = Number(dv.getBigUint64(at));
    const last = bytes[at + 8] === 1;
    const n = dv.getUint32(at + 9);
    chunks.push({ index, last, data: bytes.subarray(at + 13, at + 13 + n) });
    at += 13 + n;
  }
  return { header, chunks };
}

describe('the recording format, JavaScript against Rust', () => {
  it('opens the bundle Rust wrote to the same records', async () => {
    const { header, chunks } = readBundle(unhex(vector.bundle));
    const priv = await importPrivateKey(vector.key_file);
    const key = await unwrapKey(priv, header.key);
    const records = [];
    for (const c of chunks) records.push(...parseRecords(c.index, await openChunk(key, c.index, c.last, c.data)));
    assert.deepEqual(records.map((r) => r.kind), ['meta', 'frame', 'event']);
    assert.deepEqual(records[0].json, { session: 7, agent: 'kim' });
    assert.equal(records[1].codec, 'H264');
    assert.equal(records[1].key, true);
    assert.deepEqual([records[1].width, records[1].height, records[1].t], [1280, 720, 10000]);
    assert.deepEqual([...records[1].data.subarray(0, 5)], [0, 0, 0, 1, 0x67]);
    assert.equal(records[2].json.text, '계좌 확인');
    // Bound to index and last flag; a flipped bit fails.
    await assert.rejects(openChunk(key, 1, false, chunks[1].data), /chunk 1 does not decrypt/);
    await assert.rejects(openChunk(key, 0, false, chunks[1].data));
    const bad = Uint8Array.from(chunks[0].data);
    bad[3] ^= 1;
    await assert.rejects(openChunk(key, 0, false, bad));
  });

  it('refuses another key and malformed key files with a clear message', async () => {
    const { header } = readBundle(unhex(vector.bundle));
    const other = await globalThis.crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
    const jwk = await globalThis.crypto.subtle.exportKey('jwk', other.privateKey);
    const file = JSON.stringify({ kind: 'haetae-recording-private-key', key_id: 'other', ...jwk });
    const priv = await importPrivateKey(file);
    await assert.rejects(unwrapKey(priv, header.key), new RegExp(`needs key ${header.key.key_id}`));
    await assert.rejects(importPrivateKey('not json'), /not JSON/);
    await assert.rejects(importPrivateKey('{"kty":"EC"}'), /not a haetae recording private key/);
  });

  it('a key wrapped in JavaScript unwraps with the private key', async () => {
    const priv = await importPrivateKey(vector.key_file);
    const pubHex = Array.from(priv.publicRaw, (b) => b.toString(16).padStart(2, '0')).join('');
    const raw = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const wrapped = await wrapKey(Uint8Array.from(raw), pubHex, priv.keyId);
    assert.equal(wrapped.ephemeral.length, 130);
    assert.equal(wrapped.wrapped.length, 96);
    const key = await unwrapKey(priv, wrapped);
    const enc = await globalThis.crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt']);
    const iv = new Uint8Array(12);
    const ct = await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv }, enc, new Uint8Array([1, 2, 3]));
    const pt = new Uint8Array(await globalThis.crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, ct));
    assert.deepEqual([...pt], [1, 2, 3]);
  });
});
