// haetae remote support: encrypted session recording in the agent console, and the format
// functions the auditor's player shares (docs/remote.md, "Recording"; the Rust side is
// crates/haetae-control/src/recording.rs and must agree byte for byte).
//
// Each recording has a fresh AES-256-GCM key made here. It is wrapped to the organisation's
// recording public key (ECDH P-256 with an ephemeral key, HKDF-SHA-256, AES-256-GCM), so the
// Center stores only ciphertext and the wrapped key; auditors unwrap with the private key.
// The console records what it receives and sends: every complete screen frame (as encoded,
// with its timestamps) and the session's events (chat, pointer, drawings, URLs, control,
// file decisions, end). Records are gathered into chunks (~1 MiB or 5 s), each sealed under
// nonce 0^32 || index and uploaded with PUT (idempotent per index; a failed upload is retried
// with the same ciphertext, never re-encrypted).

import { concat, hex, unhex } from './proto.js';

const utf8 = new TextEncoder();
const KEK_SALT = utf8.encode('haetae-recording-v1');
const WRAP_AAD = utf8.encode('haetae-recording-key-v1');
const CHUNK_AAD = utf8.encode('haetae-recording-chunk-v1');
export const ALG = 'ECDH-P256+HKDF-SHA256+AES-256-GCM';
export const CODEC = { H264: 1, VP8: 2 };
const CODEC_NAME = { 1: 'H264', 2: 'VP8' };
const CHUNK_TARGET = 1024 * 1024;
const CHUNK_MS = 5000;
const MAX_BACKLOG = 48 * 1024 * 1024; // encrypted bytes waiting for upload
const RETRIES = 6;
const subtle = () => globalThis.crypto.subtle;

function u64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

function chunkParams(index, last) {
  const iv = new Uint8Array(12);
  iv.set(u64(index), 4);
  return { name: 'AES-GCM', iv, additionalData: concat([CHUNK_AAD, u64(index), Uint8Array.of(last ? 1 : 0)]) };
}

async function kek(shared, ephemeral, recipient, usage) {
  const ikm = await subtle().importKey('raw', shared, 'HKDF', false, ['deriveKey']);
  return subtle().deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: KEK_SALT, info: concat([ephemeral, recipient]) },
    ikm, { name: 'AES-GCM', length: 256 }, false, [usage]);
}

/** Wraps the 32 raw key bytes to the recording public key (65-byte SEC1 point, hex). */
export async function wrapKey(raw, publicHex, keyId) {
  const recipient = unhex(publicHex);
  const peer = await subtle().importKey('raw', recipient, { name: 'ECDH', namedCurve: 'P-256' }, false, []);
  const eph = await subtle().generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
  const ephemeral = new Uint8Array(await subtle().exportKey('raw', eph.publicKey));
  const shared = await subtle().deriveBits({ name: 'ECDH', public: peer }, eph.privateKey, 256);
  const key = await kek(shared, ephemeral, recipient, 'encrypt');
  const wrapped = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: new Uint8Array(12), additionalData: WRAP_AAD }, key, raw));
  return { alg: ALG, key_id: keyId, ephemeral: hex(ephemeral), wrapped: hex(wrapped) };
}

const b64urlDecode = (s) => {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]+$/.test(s)) throw new Error('not base64url');
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
};

/** Reads the auditor's key file (from `haetae remote keygen`): a JSON Web Key for ECDH P-256.
 * The private key is imported non-extractable; it stays in this page. */
export async function importPrivateKey(text) {
  let jwk;
  try { jwk = JSON.parse(text); } catch { throw new Error('the key file is not JSON (expected the file from `haetae remote keygen`)'); }
  if (jwk?.kind !== 'haetae-recording-private-key' || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d) {
    throw new Error('not a haetae recording private key file');
  }
  const x = b64urlDecode(jwk.x);
  const y = b64urlDecode(jwk.y);
  if (x.length !== 32 || y.length !== 32) throw new Error('the key file has a malformed public half');
  const key = await subtle().importKey('jwk', { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, d: jwk.d, ext: false },
    { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
  return { key, publicRaw: concat([Uint8Array.of(4), x, y]), keyId: jwk.key_id };
}

/** Unwraps a recording key; throws a clear error for another key or an altered wrap. */
export async function unwrapKey(priv, wrapped) {
  if (wrapped.alg !== ALG) throw new Error(`unknown key wrapping ${wrapped.alg}`);
  const ephemeral = unhex(wrapped.ephemeral);
  const peer = await subtle().importKey('raw', ephemeral, { name: 'ECDH', namedCurve: 'P-256' }, false, []);
  const shared = await subtle().deriveBits({ name: 'ECDH', public: peer }, priv.key, 256);
  const key = await kek(shared, ephemeral, priv.publicRaw, 'decrypt');
  let raw;
  try {
    raw = new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: new Uint8Array(12), additionalData: WRAP_AAD }, key, unhex(wrapped.wrapped)));
  } catch {
    throw new Error(`this key does not open the recording (the recording needs key ${wrapped.key_id}; this file is ${priv.keyId ?? 'another key'})`);
  }
  const aes = await subtle().importKey('raw', raw, 'AES-GCM', false, ['decrypt']);
  raw.fill(0);
  return aes;
}

export async function openChunk(key, index, last, data) {
  try {
    return new Uint8Array(await subtle().decrypt(chunkParams(index, last), key, data));
  } catch {
    throw new Error(`chunk ${index} does not decrypt: altered, moved or from another recording`);
  }
}

/** One record: kind u8 | t_us u64 | length u32 | body. */
function record(kind, tUs, body) {
  const head = new Uint8Array(13);
  const v = new DataView(head.buffer);
  v.setUint8(0, kind);
  v.setBigUint64(1, BigInt(Math.max(0, Math.round(tUs))));
  v.setUint32(9, body.length);
  return concat([head, body]);
}

/** Parses a chunk's plaintext: [{kind:'meta'|'event', t, json} | {kind:'frame', t, key, codec, width, height, timestampUs, data}] (t in µs). */
export function parseRecords(index, plain) {
  const out = [];
  const dv = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
  let at = 0;
  const bad = (why) => new Error(`chunk ${index}, offset ${at}: ${why}`);
  const text = new TextDecoder('utf-8', { fatal: true });
  while (at < plain.length) {
    if (at + 13 > plain.length) throw bad('truncated record header');
    const kind = dv.getUint8(at);
    const t = Number(dv.getBigUint64(at + 1));
    const len = dv.getUint32(at + 9);
    if (at + 13 + len > plain.length) throw bad('record longer than the chunk');
    const body = plain.subarray(at + 13, at + 13 + len);
    if (kind === 1 || kind === 3) {
      let json;
      try { json = JSON.parse(text.decode(body)); } catch { throw bad('not JSON'); }
      if (!json || typeof json !== 'object' || Array.isArray(json)) throw bad('not a JSON object');
      out.push({ kind: kind === 1 ? 'meta' : 'event', t, json });
    } else if (kind === 2) {
      if (len < 14 || body[0] > 1 || !CODEC_NAME[body[1]]) throw bad('malformed frame record');
      const b = new DataView(body.buffer, body.byteOffset, body.byteLength);
      out.push({
        kind: 'frame', t, key: body[0] === 1, codec: CODEC_NAME[body[1]], width: b.getUint16(2), height: b.getUint16(4),
        timestampUs: Number(b.getBigUint64(6)), data: body.subarray(14),
      });
    } else {
      throw bad('unknown record kind');
    }
    at += 13 + len;
  }
  return out;
}

/** A JSON-safe copy of an application message for the timeline (no file contents). */
const EVENT_TYPES = new Set(['Chat', 'Pointer', 'Drawing', 'DrawingClear', 'UrlPush', 'ControlRequest', 'ControlGrant',
  'ControlRevoke', 'Input', 'FileOffer', 'FileAccept', 'FileRefuse', 'FileDone', 'Bye', 'Error', 'Policy', 'SasConfirmed']);
function eventJson(dir, app) {
  const out = { dir, type: app.type };
  for (const [k, v] of Object.entries(app)) {
    if (k === 'type') continue;
    if (typeof v === 'bigint') out[k] = v.toString();
    else if (v instanceof Uint8Array) { if (v.length <= 64) out[k] = hex(v); } else out[k] = v;
  }
  return out;
}

/** The console's recorder for one session. */
export class Recorder {
  /** Starts a recording of `session` (the Center's id) to the organisation's key; resolves to
   * the recorder once the Center has the wrapped key. `post(url, body)` is the console's JSON
   * POST with its CSRF token; `onStatus(text, isError)` reports to the console's log. */
  static async start({ session, agent, key, csrf, post, onStatus, statusEl }) {
    const raw = globalThis.crypto.getRandomValues(new Uint8Array(32));
    let aes;
    let wrapped;
    try {
      aes = await subtle().importKey('raw', raw, 'AES-GCM', false, ['encrypt']);
      wrapped = await wrapKey(raw, key.key, key.key_id);
    } finally {
      raw.fill(0);
    }
    const r = await post(`/remote/session/${session}/recording`, wrapped);
    const rec = new Recorder(r.recording, aes, csrf, onStatus, statusEl, Math.min(r.max_chunk ?? 4194304, 4194304));
    rec.add(1, utf8.encode(JSON.stringify({ v: 1, session, agent, recording: r.recording, started: new Date().toISOString(), key_id: key.key_id })));
    return rec;
  }

  constructor(id, key, csrf, onStatus, statusEl, maxChunk) {
    Object.assign(this, { id, key, csrf, onStatus, statusEl, maxChunk });
    this.t0 = performance.now();
    this.parts = [];
    this.size = 0;
    this.index = 0;
    this.lastFlush = performance.now();
    this.uploads = Promise.resolve();
    this.backlog = 0;
    this.waitKey = true; // frames start at a key frame (again after a gap)
    this.stopped = false;
    this.frames = 0;
    this.uploaded = 0;
    this.timer = setInterval(() => { if (performance.now() - this.lastFlush >= CHUNK_MS && this.size > 0) this.flush(false); }, 1000);
    this.setStatus('recording');
  }

  setStatus(s) { if (this.statusEl) this.statusEl.dataset.recording = s; }

  now() { return (performance.now() - this.t0) * 1000; }

  add(kind, body) {
    if (this.stopped) return;
    const r = record(kind, this.now(), body);
    if (r.length + 16 > this.maxChunk) { this.onStatus?.(`녹화: 너무 큰 프레임을 건너뜀 / recording: skipped a frame of ${r.length} bytes`, true); this.waitKey = true; return; }
    if (this.size + r.length + 16 > this.maxChunk) this.flush(false);
    this.parts.push(r);
    this.size += r.length;
    if (this.size >= CHUNK_TARGET || performance.now() - this.lastFlush >= CHUNK_MS) this.flush(false);
  }

  /** One complete screen frame as received (head: the ScreenFrame message). */
  frame(head, data) {
    if (this.stopped) return;
    const codec = CODEC[head.codec];
    if (!codec) return;
    if (this.backlog > MAX_BACKLOG) { // the Center cannot keep up: drop frames, note the gap
      if (!this.waitKey) this.event('recorder', { type: 'Gap', reason: 'upload backlog' });
      this.waitKey = true;
      return;
    }
    if (this.waitKey && !head.keyFrame) return;
    this.waitKey = false;
    const h = new Uint8Array(14);
    const v = new DataView(h.buffer);
    v.setUint8(0, head.keyFrame ? 1 : 0);
    v.setUint8(1, codec);
    v.setUint16(2, head.width);
    v.setUint16(4, head.height);
    v.setBigUint64(6, BigInt(head.timestampUs));
    this.frames += 1;
    this.add(2, concat([h, data]));
  }

  /** An application message sent ('agent') or received ('customer'). */
  app(dir, app) {
    if (EVENT_TYPES.has(app.type)) this.event(dir, app);
  }

  event(dir, app) { this.add(3, utf8.encode(JSON.stringify(eventJson(dir, app)))); }

  flush(last) {
    const plain = concat(this.parts);
    this.parts = [];
    this.size = 0;
    this.lastFlush = performance.now();
    const index = this.index++;
    const sealed = subtle().encrypt(chunkParams(index, last), this.key, plain).then((c) => new Uint8Array(c));
    this.backlog += plain.length + 16;
    this.uploads = this.uploads.then(async () => {
      let data;
      try {
        data = await sealed;
      } catch (e) {
        this.failed = true;
        this.setStatus('failed');
        this.onStatus?.(`녹화 암호화 실패 / recording encryption failed: ${e.message}`, true);
        return;
      }
      try {
        if (!this.failed) await this.upload(index, last, data);
      } finally {
        this.backlog -= data.length;
      }
    });
    return this.uploads;
  }

  async upload(index, last, data) {
    for (let attempt = 0; ; attempt++) {
      let r;
      try {
        r = await fetch(`/remote/recording/${this.id}/chunk/${index}?last=${last ? 1 : 0}`, {
          method: 'PUT', credentials: 'same-origin', cache: 'no-store',
          headers: { 'Content-Type': 'application/octet-stream', 'X-CSRF-Token': this.csrf() }, body: data,
        });
      } catch (e) {
        r = { ok: false, status: 0, statusText: e.message };
      }
      if (r.ok) { this.uploaded += 1; return; }
      // 409/413/403/404 will not get better by retrying; 0 (network) and 5xx may.
      if ((r.status !== 0 && r.status < 500) || attempt >= RETRIES) {
        this.failed = true;
        this.setStatus('failed');
        this.onStatus?.(`녹화 업로드 실패 / recording upload failed (chunk ${index}): HTTP ${r.status}`, true);
        return;
      }
      await new Promise((res) => setTimeout(res, 250 * 2 ** attempt));
    }
  }

  /** Ends the recording: the rest goes in a chunk marked last. Resolves when uploaded. */
  async finish(reason) {
    if (this.stopped) return this.uploads;
    this.event('agent', { type: 'End', reason });
    this.stopped = true;
    clearInterval(this.timer);
    await this.flush(true);
    this.setStatus(this.failed ? 'failed' : 'done');
    this.onStatus?.(this.failed ? '녹화가 완전히 저장되지 않았습니다 / the recording is incomplete'
      : `녹화 저장됨 (${this.index}개 조각, ${this.frames} 프레임) / recording saved`, this.failed);
    return undefined;
  }
}
