// haetae remote support, browser side: the wire protocol (docs/remote.md, the same bytes as
// crates/haetae-remote/src/{codec,protocol}.rs) and the end-to-end channel (as
// crates/haetae-remote/src/channel.rs): commitment key agreement over X25519, SAS,
// HKDF-SHA-256, AES-256-GCM per direction with counter nonces. WebCrypto only; no
// third-party code. Runs in the browser and in Node 20 (globalThis.crypto.subtle), where
// tests/browser/remote-proto.test.mjs checks it against crates/haetae-remote/testdata/vectors.json.
//
// Every decoder checks each length before it reads and throws a DecodeError; a channel that
// sees a bad frame (wrong sequence number, failed tag, malformed body) closes for good.

const subtle = globalThis.crypto.subtle;
const VERSION = 1;
const FRAME_HEADER = 6;

export const MAX_CHAT = 4096;
export const MAX_CHUNK = 64 * 1024;
export const MAX_SEALED = MAX_CHUNK + 256;
export const MAX_PEER_FRAME = MAX_SEALED + 64;
export const MAX_RELAY_FRAME = MAX_PEER_FRAME + 16;
export const MAX_FILE_NAME = 255;
export const MAX_URL = 2048;
export const MAX_PATH_POINTS = 1024;
export const MAX_AGENT_ID = 64;
export const MAX_ERROR_TEXT = 512;
export const MAX_KEY_CODE = 32;
export const MAX_POLICY = 1024;

/** A frame or field that does not decode: names the field and its byte offset. */
export class DecodeError extends Error {
  constructor(what, at, why) {
    super(`${what} at byte ${at}: ${why}`);
    this.name = 'DecodeError';
    this.what = what;
    this.at = at;
  }
}

/** A failure of the end-to-end channel; `fatal` ones close it. */
export class ChannelError extends Error {
  constructor(kind, message, fatal = true) {
    super(message);
    this.name = 'ChannelError';
    this.kind = kind;
    this.fatal = fatal;
  }
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const U64_MAX = (1n << 64n) - 1n;

export class Writer {
  constructor() { this.parts = []; this.len = 0; }
  push(a) { this.parts.push(a); this.len += a.length; return this; }
  u8(v) { return this.push(Uint8Array.of(v & 0xff)); }
  u16(v) { return this.push(Uint8Array.of((v >>> 8) & 0xff, v & 0xff)); }
  i16(v) { return this.u16(v & 0xffff); }
  u32(v) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0); return this.push(b); }
  u64(v) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(v)); return this.push(b); }
  bool(v) { return this.u8(v ? 1 : 0); }
  raw(a) { return this.push(a instanceof Uint8Array ? a : Uint8Array.from(a)); }
  bytes16(a) { return this.u16(a.length).raw(a); }
  bytes32(a) { return this.u32(a.length).raw(a); }
  string(s) { return this.bytes16(utf8.encode(s)); }
  bytes() { return concat(this.parts); }
}

export class Reader {
  constructor(bytes, base = 0) { this.b = bytes; this.pos = 0; this.base = base; }
  offset() { return this.base + this.pos; }
  remaining() { return this.b.length - this.pos; }
  take(n, what) {
    if (n > this.remaining()) throw new DecodeError(what, this.offset(), `needs ${n} bytes, ${this.remaining()} left`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  array(n, what) { return Uint8Array.from(this.take(n, what)); }
  view(n, what) { const a = this.take(n, what); return new DataView(a.buffer, a.byteOffset, n); }
  u8(what) { return this.take(1, what)[0]; }
  u16(what) { return this.view(2, what).getUint16(0); }
  i16(what) { return this.view(2, what).getInt16(0); }
  u32(what) { return this.view(4, what).getUint32(0); }
  u64(what) { return this.view(8, what).getBigUint64(0); }
  bool(what) {
    const at = this.offset();
    const v = this.u8(what);
    if (v > 1) throw new DecodeError(what, at, 'a boolean must be 0 or 1');
    return v === 1;
  }
  bounded(len, max, at, what) {
    if (len > max) throw new DecodeError(what, at, `${len} bytes, at most ${max}`);
    return this.take(len, what);
  }
  bytes16(max, what) { const at = this.offset(); return this.bounded(this.u16(what), max, at, what); }
  bytes32(max, what) { const at = this.offset(); return this.bounded(this.u32(what), max, at, what); }
  string(max, what) {
    const at = this.offset();
    const raw = this.bytes16(max, what);
    try { return utf8Strict.decode(raw); } catch { throw new DecodeError(what, at + 2, 'not UTF-8'); }
  }
  finish() {
    if (this.remaining() !== 0) throw new DecodeError('frame', this.offset(), `${this.remaining()} trailing bytes`);
  }
}

export function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function hex(a) { return Array.from(a, (x) => x.toString(16).padStart(2, '0')).join(''); }
export function unhex(s) {
  if (s.length % 2 !== 0 || /[^0-9a-f]/i.test(s)) throw new Error('not hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

/** `version | type | u32 length | body`. */
export function frame(ty, body) { return new Writer().u8(VERSION).u8(ty).bytes32(body).bytes(); }

export function unframe(bytes, maxBody) {
  const r = new Reader(bytes);
  const version = r.u8('frame version');
  if (version !== VERSION) throw new DecodeError('frame version', 0, `version ${version}, this side speaks ${VERSION}`);
  const ty = r.u8('frame type');
  const body = r.bytes32(maxBody, 'frame body');
  r.finish();
  return [ty, body];
}

function byteEnum(names, what) {
  const byName = new Map(Object.entries(names));
  const byValue = new Map(Object.entries(names).map(([k, v]) => [v, k]));
  return {
    byte(name) {
      const v = byName.get(name);
      if (v === undefined) throw new DecodeError(what, 0, `unknown ${what} ${name}`);
      return v;
    },
    read(r) {
      const at = r.offset();
      const v = r.u8(what);
      const n = byValue.get(v);
      if (n === undefined) throw new DecodeError(what, at, `unknown value ${v}`);
      return n;
    },
    has(v) { return byValue.has(v); },
    name(v) { return byValue.get(v); },
  };
}

export const RefuseReason = byteEnum({
  InvalidOrExpired: 1, TooManyAttempts: 2, NotAllowed: 3, Busy: 4, OtherRelay: 5, Protocol: 6, Unavailable: 7,
}, 'refuse reason');
export const EndReason = byteEnum({
  Normal: 0, Idle: 1, PeerLeft: 2, Protocol: 3, TooLarge: 4, PairTimeout: 5, Shutdown: 6, SasMismatch: 7, Integrity: 8,
}, 'end reason');
export const MessageType = byteEnum({
  SasConfirmed: 0x20, Chat: 0x21, Ack: 0x22, ScreenFrame: 0x23, ScreenChunk: 0x24, KeyFrameRequest: 0x25,
  Input: 0x26, ControlRequest: 0x27, ControlGrant: 0x28, ControlRevoke: 0x29, FileOffer: 0x2a, FileAccept: 0x2b,
  FileRefuse: 0x2c, FileChunk: 0x2d, FileDone: 0x2e, Pointer: 0x2f, Drawing: 0x30, DrawingClear: 0x31,
  UrlPush: 0x32, Bye: 0x33, Error: 0x34, Policy: 0x35, Resume: 0x36,
}, 'sealed message type');
export const Role = byteEnum({ agent: 0, customer: 1 }, 'role');

/** Acknowledged and retransmitted after a resume (as MessageType::is_reliable in protocol.rs). */
export function isReliable(type) {
  return !['ScreenFrame', 'ScreenChunk', 'KeyFrameRequest', 'Input', 'Pointer', 'Ack', 'Resume'].includes(type);
}
const VideoCodec = byteEnum({ H264: 1, VP8: 2, PNG: 3 }, 'video codec');
const MouseButton = byteEnum({ Left: 0, Middle: 1, Right: 2 }, 'mouse button');

// ---- relay messages (client <-> relay) ----

/** Encodes a relay message: {type:'AgentOpen', agent} | {type:'CustomerJoin', code} | {type:'Peer', bytes} | {type:'Bye', reason} | ... */
export function encodeRelay(m) {
  const w = new Writer();
  let ty;
  switch (m.type) {
    case 'AgentOpen': w.string(m.agent); ty = 1; break;
    case 'CodeIssued': w.raw(m.sid).string(m.code).u32(m.expiresInSecs); ty = 2; break;
    case 'CustomerJoin': w.string(m.code); ty = 3; break;
    case 'Paired': w.raw(m.sid); ty = 4; break;
    case 'Refused': w.u8(RefuseReason.byte(m.reason)).u32(m.retryAfterSecs); ty = 5; break;
    case 'Peer': w.raw(m.bytes); ty = 6; break;
    case 'PeerGone': w.u8(EndReason.byte(m.reason)); ty = 7; break;
    case 'Bye': w.u8(EndReason.byte(m.reason)); ty = 8; break;
    case 'Resume': w.raw(m.sid).u8(Role.byte(m.role)).raw(m.token); ty = 9; break;
    case 'ResumeToken': w.raw(m.token); ty = 10; break;
    default: throw new Error(`unknown relay message ${m.type}`);
  }
  return frame(ty, w.bytes());
}

export function decodeRelay(bytes) {
  const [ty, body] = unframe(bytes, MAX_RELAY_FRAME - FRAME_HEADER);
  const r = new Reader(body, FRAME_HEADER);
  let m;
  switch (ty) {
    case 1: m = { type: 'AgentOpen', agent: r.string(MAX_AGENT_ID, 'agent id') }; break;
    case 2: {
      const sid = r.array(16, 'session id');
      const at = r.offset();
      const code = r.string(9, 'access code');
      if (!/^[0-9]{6,9}$/.test(code)) throw new DecodeError('access code', at, 'an access code is 6 to 9 digits');
      m = { type: 'CodeIssued', sid, code, expiresInSecs: r.u32('code lifetime') };
      break;
    }
    case 3: m = { type: 'CustomerJoin', code: r.string(32, 'access code') }; break;
    case 4: m = { type: 'Paired', sid: r.array(16, 'session id') }; break;
    case 5: m = { type: 'Refused', reason: RefuseReason.read(r), retryAfterSecs: r.u32('retry after') }; break;
    case 6: {
      const rest = r.remaining();
      if (rest > MAX_PEER_FRAME) throw new DecodeError('peer frame', r.offset(), `${rest} bytes, at most ${MAX_PEER_FRAME}`);
      m = { type: 'Peer', bytes: Uint8Array.from(r.take(rest, 'peer frame')) };
      break;
    }
    case 7: m = { type: 'PeerGone', reason: EndReason.read(r) }; break;
    case 8: m = { type: 'Bye', reason: EndReason.read(r) }; break;
    case 9: m = { type: 'Resume', sid: r.array(16, 'session id'), role: Role.read(r), token: r.array(32, 'resume token') }; break;
    case 10: m = { type: 'ResumeToken', token: r.array(32, 'resume token') }; break;
    default: throw new DecodeError('relay message type', 1, `unknown value ${ty}`);
  }
  r.finish();
  return m;
}

// ---- peer messages (agent <-> customer, inside Peer) ----

export function encodePeer(m) {
  const w = new Writer();
  let ty;
  switch (m.type) {
    case 'Commit': w.raw(m.commit); ty = 0x10; break;
    case 'AgentKey': w.raw(m.public).raw(m.nonce); ty = 0x11; break;
    case 'CustomerKey': w.raw(m.public).raw(m.nonce); ty = 0x12; break;
    case 'Sealed': w.u64(m.seq).u8(m.kind).bytes32(m.ciphertext); ty = 0x13; break;
    case 'Abort': w.u8(EndReason.byte(m.reason)); ty = 0x14; break;
    case 'Rekey': w.u32(m.generation).raw(m.public).raw(m.nonce).raw(m.mac); ty = 0x15; break;
    default: throw new Error(`unknown peer message ${m.type}`);
  }
  return frame(ty, w.bytes());
}

export function decodePeer(bytes) {
  const [ty, body] = unframe(bytes, MAX_PEER_FRAME - FRAME_HEADER);
  const r = new Reader(body, FRAME_HEADER);
  let m;
  switch (ty) {
    case 0x10: m = { type: 'Commit', commit: r.array(32, 'commitment') }; break;
    case 0x11: m = { type: 'AgentKey', public: r.array(32, 'agent public key'), nonce: r.array(32, 'agent nonce') }; break;
    case 0x12: m = { type: 'CustomerKey', public: r.array(32, 'customer public key'), nonce: r.array(32, 'customer nonce') }; break;
    case 0x13: {
      const seq = r.u64('sequence number');
      const at = r.offset();
      const kind = r.u8('sealed message type');
      if (!MessageType.has(kind)) throw new DecodeError('sealed message type', at, `unknown value ${kind}`);
      m = { type: 'Sealed', seq, kind, ciphertext: Uint8Array.from(r.bytes32(MAX_SEALED, 'ciphertext')) };
      break;
    }
    case 0x14: m = { type: 'Abort', reason: EndReason.read(r) }; break;
    case 0x15:
      m = {
        type: 'Rekey', generation: r.u32('key generation'), public: r.array(32, 'rekey public key'),
        nonce: r.array(32, 'rekey nonce'), mac: r.array(32, 'rekey mac'),
      };
      break;
    default: throw new DecodeError('peer message type', 1, `unknown value ${ty}`);
  }
  r.finish();
  return m;
}

// ---- application messages (the plaintext of Sealed) ----

function checkFileName(name, at) {
  // eslint-disable-next-line no-control-regex
  if (name === '' || name === '.' || name === '..' || /[/\\:\u0000-\u001f\u007f-\u009f]/.test(name)) {
    throw new DecodeError('file name', at, "a file name is a bare name: not empty, no '/', '\\', ':' or control characters, not '.' or '..'");
  }
}

function checkUrl(url, at) {
  const lower = url.slice(0, 8).toLowerCase();
  // Rust's char::is_whitespace and is_control: Unicode White_Space and Cc.
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/.test(url);
  if (!(lower.startsWith('https://') || lower.startsWith('http://')) || bad) {
    throw new DecodeError('URL', at, 'only http:// and https:// URLs without spaces or control characters are sent');
  }
}

function writePoint(w, p) { w.u16(p[0]).u16(p[1]); }
function readPoint(r) { return [r.u16('x'), r.u16('y')]; }

/** The body bytes of an application message (what is encrypted). */
export function encodeAppBody(m) {
  const w = new Writer();
  switch (m.type) {
    case 'SasConfirmed': case 'KeyFrameRequest': case 'ControlRequest': case 'ControlGrant':
    case 'ControlRevoke': case 'DrawingClear': break;
    case 'Chat': w.u64(m.id).string(m.text); break;
    case 'Ack': w.u64(m.seq); break;
    case 'Resume': w.u64(m.received); break;
    case 'ScreenFrame':
      w.u32(m.frame).u16(m.width).u16(m.height).u8(VideoCodec.byte(m.codec)).bool(m.keyFrame)
        .u64(m.timestampUs).u32(m.totalLen).u16(m.chunks);
      break;
    case 'ScreenChunk': w.u32(m.frame).u16(m.index).bytes32(m.data); break;
    case 'Input': {
      const e = m.event;
      switch (e.kind) {
        case 'PointerMove': w.u8(1).u16(e.x).u16(e.y); break;
        case 'Button': w.u8(2).u8(MouseButton.byte(e.button)).bool(e.down).u16(e.x).u16(e.y); break;
        case 'Wheel': w.u8(3).i16(e.dx).i16(e.dy); break;
        case 'Key': w.u8(4).string(e.code).bool(e.down).u8(e.modifiers); break;
        default: throw new Error(`unknown input event ${e.kind}`);
      }
      break;
    }
    case 'FileOffer': w.u32(m.id).string(m.name).u64(m.size).raw(m.sha256); break;
    case 'FileAccept': case 'FileRefuse': case 'FileDone': w.u32(m.id); break;
    case 'FileChunk': w.u32(m.id).u64(m.offset).bytes32(m.data); break;
    case 'Pointer': w.u16(m.x).u16(m.y).bool(m.visible); break;
    case 'Drawing': {
      const s = m.shape;
      if (s.kind === 'Path') {
        w.u8(4).u16(s.points.length);
        for (const p of s.points) writePoint(w, p);
      } else {
        w.u8({ Line: 1, Rect: 2, Ellipse: 3 }[s.kind]);
        writePoint(w, s.from);
        writePoint(w, s.to);
      }
      w.u32(m.color).u8(m.width);
      break;
    }
    case 'UrlPush': w.string(m.url); break;
    case 'Bye': w.u8(EndReason.byte(m.reason)); break;
    case 'Error': w.u16(m.code).string(m.message); break;
    case 'Policy': w.string(m.payload).raw(m.signature); break;
    default: throw new Error(`unknown application message ${m.type}`);
  }
  return w.bytes();
}

/** Decodes the body of a message of type byte `kind`. */
export function decodeAppBody(kind, body) {
  const type = MessageType.name(kind);
  if (type === undefined) throw new DecodeError('sealed message type', 0, `unknown value ${kind}`);
  const r = new Reader(body);
  let m;
  switch (type) {
    case 'SasConfirmed': case 'KeyFrameRequest': case 'ControlRequest': case 'ControlGrant':
    case 'ControlRevoke': case 'DrawingClear': m = { type }; break;
    case 'Chat': m = { type, id: r.u64('chat id'), text: r.string(MAX_CHAT, 'chat text') }; break;
    case 'Ack': m = { type, seq: r.u64('acknowledged sequence number') }; break;
    case 'Resume': m = { type, received: r.u64('messages received') }; break;
    case 'ScreenFrame':
      m = {
        type, frame: r.u32('frame number'), width: r.u16('width'), height: r.u16('height'),
        codec: VideoCodec.read(r), keyFrame: r.bool('key frame'), timestampUs: r.u64('timestamp'),
        totalLen: r.u32('frame length'), chunks: r.u16('chunk count'),
      };
      break;
    case 'ScreenChunk':
      m = { type, frame: r.u32('frame number'), index: r.u16('chunk index'), data: Uint8Array.from(r.bytes32(MAX_CHUNK, 'screen chunk')) };
      break;
    case 'Input': {
      const at = r.offset();
      const k = r.u8('input event kind');
      let event;
      if (k === 1) event = { kind: 'PointerMove', x: r.u16('x'), y: r.u16('y') };
      else if (k === 2) event = { kind: 'Button', button: MouseButton.read(r), down: r.bool('button down'), x: r.u16('x'), y: r.u16('y') };
      else if (k === 3) event = { kind: 'Wheel', dx: r.i16('wheel dx'), dy: r.i16('wheel dy') };
      else if (k === 4) {
        const codeAt = r.offset();
        const code = r.string(MAX_KEY_CODE, 'key code');
        if (!/^[A-Za-z0-9]+$/.test(code)) throw new DecodeError('key code', codeAt, 'a key code is 1-32 ASCII letters and digits');
        const down = r.bool('key down');
        const modAt = r.offset();
        const modifiers = r.u8('modifiers');
        if (modifiers > 0x0f) throw new DecodeError('modifiers', modAt, 'only bits 0-3 (Shift, Control, Alt, Meta) are defined');
        event = { kind: 'Key', code, down, modifiers };
      } else throw new DecodeError('input event kind', at, `unknown value ${k}`);
      m = { type, event };
      break;
    }
    case 'FileOffer': {
      const id = r.u32('transfer id');
      const at = r.offset();
      const name = r.string(MAX_FILE_NAME, 'file name');
      checkFileName(name, at);
      m = { type, id, name, size: r.u64('file size'), sha256: r.array(32, 'file SHA-256') };
      break;
    }
    case 'FileAccept': case 'FileRefuse': case 'FileDone': m = { type, id: r.u32('transfer id') }; break;
    case 'FileChunk':
      m = { type, id: r.u32('transfer id'), offset: r.u64('file offset'), data: Uint8Array.from(r.bytes32(MAX_CHUNK, 'file chunk')) };
      break;
    case 'Pointer': m = { type, x: r.u16('x'), y: r.u16('y'), visible: r.bool('pointer visible') }; break;
    case 'Drawing': {
      const at = r.offset();
      const k = r.u8('shape kind');
      let shape;
      if (k >= 1 && k <= 3) shape = { kind: ['Line', 'Rect', 'Ellipse'][k - 1], from: readPoint(r), to: readPoint(r) };
      else if (k === 4) {
        const countAt = r.offset();
        const count = r.u16('point count');
        if (count < 2 || count > MAX_PATH_POINTS) throw new DecodeError('point count', countAt, 'a path has 2 to 1024 points');
        const points = [];
        for (let i = 0; i < count; i++) points.push(readPoint(r));
        shape = { kind: 'Path', points };
      } else throw new DecodeError('shape kind', at, `unknown value ${k}`);
      const color = r.u32('colour');
      const wAt = r.offset();
      const width = r.u8('line width');
      if (width < 1 || width > 32) throw new DecodeError('line width', wAt, 'a line is 1 to 32 pixels wide');
      m = { type, shape, color, width };
      break;
    }
    case 'UrlPush': {
      const at = r.offset();
      const url = r.string(MAX_URL, 'URL');
      checkUrl(url, at);
      m = { type, url };
      break;
    }
    case 'Bye': m = { type, reason: EndReason.read(r) }; break;
    case 'Error': m = { type, code: r.u16('error code'), message: r.string(MAX_ERROR_TEXT, 'error text') }; break;
    case 'Policy': m = { type, payload: r.string(MAX_POLICY, 'session policy'), signature: Uint8Array.from(r.array(64, 'policy signature')) }; break;
    default: throw new DecodeError('sealed message type', 0, `unknown value ${kind}`);
  }
  r.finish();
  return m;
}

/** Which side may send each message type (crates/haetae-remote/src/session.rs `allowed_from`). */
export function allowedFrom(role, type) {
  switch (type) {
    case 'SasConfirmed': case 'KeyFrameRequest': case 'Input': case 'ControlRequest': case 'Pointer':
    case 'Drawing': case 'DrawingClear': case 'UrlPush': case 'Policy': return role === 'agent';
    case 'ScreenFrame': case 'ScreenChunk': case 'ControlGrant': case 'ControlRevoke': return role === 'customer';
    default: return true;
  }
}

// ---- the Center-signed session policy (crates/haetae-remote/src/policy.rs) ----

export const POLICY_HEADER = 'haetae-remote-policy v1';
export const POLICY_CLOCK_LEEWAY_SECS = 300;
const FEATURES = ['pointer', 'drawing', 'url', 'control', 'files'];

/** What a session allows before any valid policy: chat and the screen only. */
export function noPolicy() {
  return { grade: null, features: { pointer: false, drawing: false, url: false, control: false, files: false }, maxFile: 0 };
}

export class PolicyError extends Error {}

function policyNumber(s) {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(s)) throw new PolicyError('the session policy is malformed: a number is not canonical decimal');
  const n = BigInt(s);
  if (n > 0xffffffffffffffffn) throw new PolicyError('the session policy is malformed: a number is out of range');
  return n;
}

/** Parses a policy text exactly as the Rust side does (after the signature was checked). */
export function parsePolicy(text) {
  const bad = (why) => new PolicyError(`the session policy is malformed: ${why}`);
  if (!text.endsWith('\n')) throw bad('the last line must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines[0] !== POLICY_HEADER) throw bad('the first line must be the header');
  const keys = ['sid', 'agent', 'grade', 'features', 'max_file', 'issued', 'expires'];
  if (lines.length !== keys.length + 1) throw bad('fields missing or extra lines');
  const f = {};
  keys.forEach((k, i) => {
    const line = lines[i + 1];
    if (!line.startsWith(`${k}=`)) throw bad('fields out of order or misspelt');
    f[k] = line.slice(k.length + 1);
  });
  if (!/^[0-9a-f]{32}$/.test(f.sid)) throw bad('sid must be 32 lower-case hex digits');
  const agentBytes = utf8.encode(f.agent).length;
  // eslint-disable-next-line no-control-regex
  if (agentBytes < 1 || agentBytes > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(f.agent)) throw bad('bad agent name');
  if (f.grade !== 'indirect' && f.grade !== 'direct') throw bad('unknown grade');
  const features = { pointer: false, drawing: false, url: false, control: false, files: false };
  let next = 0;
  if (f.features !== '') {
    for (const name of f.features.split(',')) {
      const pos = FEATURES.indexOf(name);
      if (pos < 0) throw bad('unknown feature');
      if (pos < next) throw bad('features repeated or out of order');
      features[name] = true;
      next = pos + 1;
    }
  }
  const maxFile = policyNumber(f.max_file);
  const issued = policyNumber(f.issued);
  const expires = policyNumber(f.expires);
  if (f.grade !== 'direct' && (features.control || features.files)) throw new PolicyError('the session policy grants more than the agent\'s grade allows');
  if (!features.files && maxFile !== 0n) throw bad('max_file without files');
  if (expires < issued) throw bad('expires before it was issued');
  return { sid: f.sid, agent: f.agent, grade: f.grade, features, maxFile: Number(maxFile), issued, expires };
}

/**
 * Checks a policy forwarded by the agent: Ed25519 signature by the Center's key (32 raw
 * bytes, fetched from this page's own origin) first, then format, session id and expiry.
 */
export async function verifyPolicy(centerKeyRaw, payload, signature, sid, nowUnix) {
  const key = await subtle.importKey('raw', centerKeyRaw, { name: 'Ed25519' }, false, ['verify']);
  const ok = await subtle.verify({ name: 'Ed25519' }, key, signature, utf8.encode(payload));
  if (!ok) throw new PolicyError('the session policy\'s signature is not the Control Center\'s');
  const p = parsePolicy(payload);
  if (p.sid !== hex(sid)) throw new PolicyError('the session policy was signed for another session');
  if (BigInt(nowUnix) > p.expires + BigInt(POLICY_CLOCK_LEEWAY_SECS)) throw new PolicyError('the session policy has expired');
  return p;
}

/** Whether the policy in force allows receiving a message of this type from the agent. */
export function policyAllows(policy, type) {
  switch (type) {
    case 'Pointer': return policy.features.pointer;
    case 'Drawing': case 'DrawingClear': return policy.features.drawing;
    case 'UrlPush': return policy.features.url;
    case 'ControlRequest': case 'ControlGrant': case 'Input': return policy.grade === 'direct' && policy.features.control;
    case 'FileOffer': case 'FileAccept': case 'FileChunk': case 'FileDone': return policy.grade === 'direct' && policy.features.files;
    default: return true;
  }
}

// ---- key agreement ----

/** SHA-256 over parts, each as a 4-byte big-endian length and its bytes. */
export async function hashParts(parts) {
  const w = new Writer();
  for (const p of parts) w.bytes32(typeof p === 'string' ? utf8.encode(p) : p);
  return new Uint8Array(await subtle.digest('SHA-256', w.bytes()));
}

export function commitment(sid, pub, nonce) { return hashParts(['haetae-commit', sid, pub, nonce]); }

function b64url(a) {
  let s = '';
  for (const x of a) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** An X25519 key pair: a fresh one, or (tests) from a fixed 32-byte secret and its public key. */
export async function x25519KeyPair(fixed) {
  if (fixed) {
    const privateKey = await subtle.importKey('jwk', {
      kty: 'OKP', crv: 'X25519', d: b64url(fixed.secret), x: b64url(fixed.public), ext: false,
    }, { name: 'X25519' }, false, ['deriveBits']);
    return { privateKey, public: Uint8Array.from(fixed.public) };
  }
  const kp = await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  return { privateKey: kp.privateKey, public: new Uint8Array(await subtle.exportKey('raw', kp.publicKey)) };
}

async function agree(privateKey, peerPublic) {
  let shared;
  try {
    const pub = await subtle.importKey('raw', peerPublic, { name: 'X25519' }, false, []);
    shared = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, privateKey, 256));
  } catch (e) {
    throw new ChannelError('crypto', `X25519 failed (small-order or invalid key): ${e.message}`);
  }
  if (shared.every((x) => x === 0)) throw new ChannelError('crypto', 'X25519 gave the all-zero secret (small-order key)');
  return shared;
}

function random32() { return globalThis.crypto.getRandomValues(new Uint8Array(32)); }

async function hkdf32(ikm, salt, info) {
  const key = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info: utf8.encode(info) }, key, 256));
}

/** transcript, SAS, the two direction keys and the resume secret (docs/remote.md, key agreement). */
export async function deriveSecrets(sid, commit, agent, customer, shared) {
  const transcript = await hashParts([sid, commit, agent.public, agent.nonce, customer.public, customer.nonce]);
  const sasHash = await hashParts(['haetae-sas', transcript, shared]);
  const first = new DataView(sasHash.buffer).getUint32(0);
  const sas = String(first % 1000000).padStart(6, '0');
  return {
    transcript,
    sas,
    keyA2c: await hkdf32(shared, transcript, 'haetae rs v1 a->c'),
    keyC2a: await hkdf32(shared, transcript, 'haetae rs v1 c->a'),
    resume: await hkdf32(shared, transcript, 'haetae rs v1 resume'),
  };
}

function unexpected(expected, got) {
  if (got.type === 'Abort') return new ChannelError('aborted', `the other side aborted the session: ${got.reason}`);
  return new ChannelError('unexpected', `key agreement: expected ${expected}, got ${got.type}`);
}

function ctEqual(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** The customer's half: commit first, reveal after the agent's key. */
export class CustomerHandshake {
  static async start(sid, fixed) {
    const hs = new CustomerHandshake();
    hs.sid = Uint8Array.from(sid);
    hs.kp = await x25519KeyPair(fixed);
    hs.nonce = fixed ? Uint8Array.from(fixed.nonce) : random32();
    hs.commit = await commitment(hs.sid, hs.kp.public, hs.nonce);
    return [hs, { type: 'Commit', commit: hs.commit }];
  }

  /** On AgentKey: returns [CustomerKey message, PendingChannel]. */
  async onAgentKey(msg) {
    if (msg.type !== 'AgentKey') throw unexpected('AgentKey', msg);
    const shared = await agree(this.kp.privateKey, msg.public);
    const secrets = await deriveSecrets(this.sid, this.commit, msg, { public: this.kp.public, nonce: this.nonce }, shared);
    return [{ type: 'CustomerKey', public: this.kp.public, nonce: this.nonce }, new PendingChannel('customer', this.sid, secrets)];
  }
}

/** The agent's half: reveals its key only after the customer's commitment. */
export class AgentHandshake {
  static async start(sid, fixed) {
    const hs = new AgentHandshake();
    hs.sid = Uint8Array.from(sid);
    hs.kp = await x25519KeyPair(fixed);
    hs.nonce = fixed ? Uint8Array.from(fixed.nonce) : random32();
    hs.commit = null;
    return hs;
  }

  onCommit(msg) {
    if (this.commit !== null) throw unexpected('CustomerKey', msg);
    if (msg.type !== 'Commit') throw unexpected('Commit', msg);
    this.commit = Uint8Array.from(msg.commit);
    return { type: 'AgentKey', public: this.kp.public, nonce: this.nonce };
  }

  async onCustomerKey(msg) {
    if (this.commit === null) throw unexpected('Commit', msg);
    if (msg.type !== 'CustomerKey') throw unexpected('CustomerKey', msg);
    const expected = await commitment(this.sid, msg.public, msg.nonce);
    if (!ctEqual(expected, this.commit)) {
      throw new ChannelError('commit-mismatch', "key agreement: the customer's key does not match its commitment (key substitution)");
    }
    const shared = await agree(this.kp.privateKey, msg.public);
    const secrets = await deriveSecrets(this.sid, this.commit, { public: this.kp.public, nonce: this.nonce }, msg, shared);
    return new PendingChannel('agent', this.sid, secrets);
  }
}

/** After the key agreement, before the people compared the SAS. */
export class PendingChannel {
  constructor(role, sid, secrets) { this.role = role; this.sid = sid; this.secrets = secrets; }
  get sas() { return this.secrets.sas; }

  /** Agent: the SAS matched. Returns [Channel, the first sealed frame (SasConfirmed)]. */
  async confirmSas() {
    if (this.role !== 'agent') throw new ChannelError('unexpected', 'only the agent confirms the SAS');
    const ch = await Channel.create('agent', this.sid, this.secrets);
    const first = await ch.seal({ type: 'SasConfirmed' });
    return [ch, first];
  }

  /** Customer: the agent's first frame must open and be SasConfirmed. */
  async onConfirmation(msg) {
    if (this.role !== 'customer') throw new ChannelError('unexpected', 'the agent confirms; it receives no confirmation');
    const ch = await Channel.create('customer', this.sid, this.secrets);
    const app = await ch.open(msg);
    if (app.type !== 'SasConfirmed') {
      ch.closed = true;
      throw new ChannelError('not-confirmed', `a ${app.type} frame arrived before the agent confirmed the short authentication string`);
    }
    return ch;
  }

  reject() { return { type: 'Abort', reason: 'SasMismatch' }; }
}

export function frameNonce(seq) {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, BigInt(seq));
  return n;
}

export function frameAad(sid, direction, seq, kind) {
  const a = new Uint8Array(26);
  a.set(sid, 0);
  a[16] = direction;
  new DataView(a.buffer).setBigUint64(17, BigInt(seq));
  a[25] = kind;
  return a;
}

/** Reliable messages kept for retransmission until acknowledged (channel.rs). */
export const MAX_UNACKED_MESSAGES = 1024;
export const MAX_UNACKED_BYTES = 8 << 20;
/** An Ack goes out after this many reliable messages (and on a timer: takeAck(true)). */
export const ACK_EVERY = 8n;

function u32be(v) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0); return b; }

/** HMAC-SHA-256 under the resume secret over "haetae-rekey-mac" || sid || role || generation || public || nonce. */
export async function rekeyMac(resume, sid, role, generation, pub, nonce) {
  const w = new Writer();
  for (const p of [utf8.encode('haetae-rekey-mac'), sid, Uint8Array.of(Role.byte(role)), u32be(generation), pub, nonce]) w.bytes32(p);
  const key = await subtle.importKey('raw', resume, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', key, w.bytes()));
}

/** The traffic keys after a re-key (channel.rs `rekey_keys`); halves are {generation, public, nonce}. */
export async function rekeyKeys(sid, resume, agent, customer, shared) {
  const salt = await hashParts(['haetae-rekey', sid, resume, u32be(agent.generation), agent.public, agent.nonce,
    u32be(customer.generation), customer.public, customer.nonce]);
  return { keyA2c: await hkdf32(shared, salt, 'haetae rs v1 a->c'), keyC2a: await hkdf32(shared, salt, 'haetae rs v1 c->a') };
}

/**
 * The open channel: seal and open in order. Both are async (WebCrypto); calls are queued so
 * that frames leave and are delivered in sequence order even when many are in flight.
 *
 * It also carries the session across a lost relay (as channel.rs): reliable messages
 * (isReliable) are numbered per direction for the whole session and kept until the other
 * side acknowledges them; after a reconnect startRekey/onRekey agree fresh keys authenticated
 * by the resume secret, each side's first frame under them is Resume{received}, and
 * retransmit() seals again exactly what the other side lacks.
 */
export class Channel {
  static async create(role, sid, secrets) {
    const ch = new Channel();
    ch.role = role;
    ch.sid = sid;
    ch.resume = Uint8Array.from(secrets.resume);
    await ch.setKeys(secrets.keyA2c, secrets.keyC2a);
    ch.sendDir = role === 'agent' ? 0 : 1;
    ch.recvDir = role === 'agent' ? 1 : 0;
    ch.sendSeq = 0n;
    ch.recvSeq = 0n;
    ch.closed = false;
    ch.sendQueue = Promise.resolve();
    ch.recvQueue = Promise.resolve();
    ch.phase = 'open';
    ch.proposed = 0;
    ch.peerGeneration = 0;
    ch.rekeys = 0;
    ch.reliableSent = 0n;
    ch.peerAcked = 0n;
    ch.unacked = [];
    ch.unackedBytes = 0;
    ch.reliableReceived = 0n;
    ch.ackedSent = 0n;
    return ch;
  }

  async setKeys(a2c, c2a) {
    const [send, recv] = this.role === 'agent' ? [a2c, c2a] : [c2a, a2c];
    this.sendKey = await subtle.importKey('raw', send, 'AES-GCM', false, ['encrypt']);
    this.recvKey = await subtle.importKey('raw', recv, 'AES-GCM', false, ['decrypt']);
  }

  get isOpen() { return !this.closed && this.phase === 'open'; }
  get unacknowledged() { return this.unacked.length; }
  get unacknowledgedBytes() { return this.unackedBytes; }

  fail(e) { if (e.fatal) this.closed = true; return e; }

  encode(msg) {
    const body = encodeAppBody(msg);
    decodeAppBody(MessageType.byte(msg.type), body); // never send what the receiver must refuse
    return body;
  }

  keep(msg, size) {
    if (this.unacked.length >= MAX_UNACKED_MESSAGES || this.unackedBytes + size > MAX_UNACKED_BYTES) {
      return new ChannelError('backlog', `too many unacknowledged messages (${this.unacked.length}); wait for an acknowledgement`, false);
    }
    this.unacked.push({ msg, size });
    this.unackedBytes += size;
    this.reliableSent += 1n;
    return null;
  }

  sealFrame(type, body) {
    if (this.sendSeq === U64_MAX) return Promise.reject(this.fail(new ChannelError('exhausted', 'sequence numbers exhausted')));
    const seq = this.sendSeq;
    this.sendSeq += 1n;
    const kind = MessageType.byte(type);
    const aad = frameAad(this.sid, this.sendDir, seq, kind);
    const key = this.sendKey;
    const p = this.sendQueue.then(async () => {
      const ct = await subtle.encrypt({ name: 'AES-GCM', iv: frameNonce(seq), additionalData: aad, tagLength: 128 }, key, body);
      return { type: 'Sealed', seq, kind, ciphertext: new Uint8Array(ct) };
    });
    this.sendQueue = p.catch(() => {});
    return p;
  }

  /** Seals an application message; resolves to a Sealed peer message. */
  seal(msg) {
    if (this.closed) return Promise.reject(new ChannelError('closed', 'the channel is closed'));
    if (this.phase !== 'open') return Promise.reject(new ChannelError('resuming', 'the session is resuming', false));
    let body;
    try {
      body = this.encode(msg);
    } catch (e) {
      return Promise.reject(new ChannelError('encode', `message not sent: ${e.message}`, false));
    }
    if (isReliable(msg.type)) {
      const err = this.keep(msg, body.length);
      if (err) return Promise.reject(err);
    }
    return this.sealFrame(msg.type, body);
  }

  /** Seals when open; during a resume keeps a reliable message for retransmit() (resolves to null). */
  sendOrQueue(msg) {
    if (this.closed) return Promise.reject(new ChannelError('closed', 'the channel is closed'));
    if (this.phase === 'open') return this.seal(msg);
    if (!isReliable(msg.type)) return Promise.reject(new ChannelError('resuming', 'the session is resuming', false));
    let body;
    try {
      body = this.encode(msg);
    } catch (e) {
      return Promise.reject(new ChannelError('encode', `message not sent: ${e.message}`, false));
    }
    const err = this.keep(msg, body.length);
    return err ? Promise.reject(err) : Promise.resolve(null);
  }

  /** An Ack to send (or null): after ACK_EVERY reliable messages, or any when forced. */
  takeAck(force) {
    const waiting = this.reliableReceived - this.ackedSent;
    if (waiting === 0n || (!force && waiting < ACK_EVERY) || !this.isOpen) return Promise.resolve(null);
    const received = this.reliableReceived;
    this.ackedSent = received;
    return this.seal({ type: 'Ack', seq: received });
  }

  acknowledged(count) {
    if (count < this.peerAcked || count > this.reliableSent) {
      throw this.fail(new ChannelError('resume', 'resume: an acknowledgement of messages never sent (or going backwards)'));
    }
    while (this.peerAcked < count) {
      const done = this.unacked.shift();
      if (done) this.unackedBytes -= done.size;
      this.peerAcked += 1n;
    }
  }

  /** After a reconnect: this side's Rekey (fresh X25519 key and nonce, MAC'd with the resume secret). */
  async startRekey(fixed) {
    if (this.closed) throw new ChannelError('closed', 'the channel is closed');
    this.phase = 'rekeying';
    const generation = fixed ? fixed.generation : Math.max(this.proposed, this.peerGeneration) + 1;
    this.proposed = generation;
    const kp = await x25519KeyPair(fixed);
    const nonce = fixed ? Uint8Array.from(fixed.nonce) : random32();
    const mac = await rekeyMac(this.resume, this.sid, this.role, generation, kp.public, nonce);
    this.rekeyState = { kp, nonce, generation };
    return { type: 'Rekey', generation, public: kp.public, nonce, mac };
  }

  /** The other side's Rekey: check it, install the new keys, return this side's Resume frame. */
  async onRekey(msg) {
    if (this.closed) throw new ChannelError('closed', 'the channel is closed');
    if (msg.type !== 'Rekey') throw this.fail(unexpected('Rekey', msg));
    if (this.phase !== 'rekeying' || !this.rekeyState) throw this.fail(new ChannelError('unexpected', 'a Rekey while not re-keying'));
    const st = this.rekeyState;
    const peer = this.role === 'agent' ? 'customer' : 'agent';
    const expected = await rekeyMac(this.resume, this.sid, peer, msg.generation, msg.public, msg.nonce);
    if (!ctEqual(expected, msg.mac)) throw this.fail(new ChannelError('resume', "resume: the other side's re-key does not authenticate (not the session's key)"));
    if (msg.generation <= this.peerGeneration) throw this.fail(new ChannelError('resume', 'resume: a re-key replayed from an earlier resume'));
    let shared;
    try { shared = await agree(st.kp.privateKey, msg.public); } catch (e) { throw this.fail(e); }
    const mine = { generation: st.generation, public: st.kp.public, nonce: st.nonce };
    const theirs = { generation: msg.generation, public: msg.public, nonce: msg.nonce };
    const keys = this.role === 'agent'
      ? await rekeyKeys(this.sid, this.resume, mine, theirs, shared)
      : await rekeyKeys(this.sid, this.resume, theirs, mine, shared);
    await this.setKeys(keys.keyA2c, keys.keyC2a);
    this.rekeyState = null;
    this.peerGeneration = msg.generation;
    this.sendSeq = 0n;
    this.recvSeq = 0n;
    this.phase = 'awaiting-resume';
    const received = this.reliableReceived;
    this.ackedSent = received;
    return this.sealFrame('Resume', encodeAppBody({ type: 'Resume', received }));
  }

  /** After the other side's Resume: the reliable messages it lacks, sealed again in order. */
  retransmit() {
    if (this.closed) return Promise.reject(new ChannelError('closed', 'the channel is closed'));
    if (this.phase !== 'retransmit') return Promise.reject(this.fail(new ChannelError('unexpected', "retransmit before the other side's Resume")));
    const frames = this.unacked.map(({ msg }) => this.sealFrame(msg.type, encodeAppBody(msg)));
    this.phase = 'open';
    this.rekeys += 1;
    return Promise.all(frames);
  }

  afterOpen(app) {
    if (this.phase === 'awaiting-resume') {
      if (app.type !== 'Resume') throw this.fail(new ChannelError('resume', 'resume: the first frame after a re-key must be Resume'));
      this.acknowledged(app.received);
      this.phase = 'retransmit';
    } else if (app.type === 'Resume') {
      throw this.fail(new ChannelError('resume', 'resume: a Resume outside a re-key'));
    } else if (app.type === 'Ack') {
      this.acknowledged(app.seq);
    } else if (isReliable(app.type)) {
      this.reliableReceived += 1n;
    }
  }

  /** Opens the next frame from the other side; any failure closes the channel. */
  open(msg) {
    if (this.closed) return Promise.reject(new ChannelError('closed', 'the channel is closed'));
    if (this.phase === 'rekeying') return Promise.reject(this.fail(unexpected('Rekey', msg)));
    if (msg.type !== 'Sealed') return Promise.reject(this.fail(unexpected('Sealed', msg)));
    if (msg.seq !== this.recvSeq) {
      return Promise.reject(this.fail(new ChannelError('sequence',
        `frame ${msg.seq} arrived where frame ${this.recvSeq} was due (replayed, reordered or dropped)`)));
    }
    this.recvSeq += 1n;
    const { seq, kind, ciphertext } = msg;
    const aad = frameAad(this.sid, this.recvDir, seq, kind);
    const key = this.recvKey;
    const p = this.recvQueue.then(async () => {
      if (this.closed) throw new ChannelError('closed', 'the channel is closed');
      let body;
      try {
        body = new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: frameNonce(seq), additionalData: aad, tagLength: 128 }, key, ciphertext));
      } catch {
        throw this.fail(new ChannelError('integrity', `frame ${seq} failed to authenticate (altered in transit, or the keys differ)`));
      }
      let app;
      try {
        app = decodeAppBody(kind, body);
      } catch (e) {
        throw this.fail(new ChannelError('malformed', `frame ${seq}: ${e.message}`));
      }
      this.afterOpen(app);
      return app;
    });
    this.recvQueue = p.catch(() => {});
    return p;
  }
}
