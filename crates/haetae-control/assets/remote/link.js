// haetae remote support: the connection to the relay (`/relay` on the page's own address,
// then any other relay the Center lists), relay messages in and out, a serial queue so that
// async handlers (WebCrypto) see messages in arrival order, and failover (RelayLink.resume).

import {
  MAX_UNACKED_BYTES, MAX_UNACKED_MESSAGES, decodePeer, decodeRelay, encodePeer, encodeRelay,
} from './proto.js';

export function relayUrl() {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/relay`;
}

/**
 * The relays this page may use, in order: the page's own `/relay` first, then those the
 * Center lists in `<body data-relays="wss://… wss://…">` (same origin only: the CSP's
 * `connect-src 'self'` refuses others).
 */
export function relayUrls() {
  const own = relayUrl();
  const listed = (document.body?.dataset.relays ?? '').split(/\s+/).filter(Boolean);
  const sameOrigin = listed.filter((u) => {
    try { return new URL(u).host === location.host; } catch { return false; }
  });
  return [own, ...sameOrigin.filter((u) => u !== own)];
}

const RESUMABLE = new Set(['PeerLeft', 'Shutdown']);
const GIVE_UP_MS = 45000;
const CONNECT_MS = 3000;
const ACK_MS = 500;
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

/**
 * One session's connection to the relay: relay messages in and out, a serial queue so that
 * async handlers (WebCrypto) see messages in arrival order, and — once the channel is open
 * and attached — failover: when the socket drops (or the relay says the other side's did, or
 * that it is shutting down) it reconnects (the relay it was on, then the next ones, with
 * bounded backoff), presents the single-use resume token the relay gave it, re-keys with the
 * other side inside the old session secret and retransmits what the other side did not get.
 * The page sees only the application's messages; acknowledgements are handled here.
 */
export class RelayLink {
  /** handler(msg) may be async; errors end the link through onFail(error). */
  constructor(urls, { role, onOpen, onMessage, onClose, onFail, onResuming, onResumed }) {
    this.urls = Array.isArray(urls) ? urls : [urls];
    this.current = 0;
    this.role = role;
    this.handlers = { onOpen, onMessage, onClose, onFail, onResuming, onResumed };
    this.closed = false;
    this.channel = null;
    this.token = null;
    this.sid = null;
    this.resuming = false;
    this.resumes = 0;
    this.queue = Promise.resolve();
    this.bytesIn = 0;
    this.bytesOut = 0;
    this.ackTimer = null;
    this.ws = this.open(this.urls[0]);
    this.ws.onopen = () => onOpen?.();
  }

  open(url) {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => this.onSocketMessage(ws, ev);
    ws.onclose = () => this.onSocketClose(ws);
    return ws;
  }

  onSocketMessage(ws, ev) {
    if (this.closed || ws !== this.ws) return;
    if (typeof ev.data === 'string') { this.fail(new Error('text message from the relay')); return; }
    const bytes = new Uint8Array(ev.data);
    this.bytesIn += bytes.length;
    this.queue = this.queue.then(async () => {
      if (this.closed || ws !== this.ws) return;
      const msg = decodeRelay(bytes);
      if (msg.type === 'ResumeToken') { this.token = msg.token; return; }
      if (msg.type === 'Paired') this.sid = msg.sid;
      if (this.channel && (msg.type === 'PeerGone' || msg.type === 'Bye') && RESUMABLE.has(msg.reason)) {
        this.lost(ws);
        return;
      }
      await this.handlers.onMessage(msg);
      if (msg.type === 'Peer') await this.ack(false);
    }).catch((e) => this.fail(e));
  }

  onSocketClose(ws) {
    if (ws !== this.ws) return;
    if (this.channel && !this.closed) { this.lost(ws); return; }
    const was = this.closed;
    this.closed = true;
    this.stopAcks();
    if (!was) this.handlers.onClose?.();
  }

  fail(e) {
    if (this.closed) return;
    this.handlers.onFail?.(e);
  }

  /** The channel is open (SAS confirmed): from now on a lost connection is resumed. */
  attach(channel) {
    this.channel = channel;
    this.stopAcks();
    this.ackTimer = setInterval(() => { this.queue = this.queue.then(() => this.ack(true)).catch((e) => this.fail(e)); }, ACK_MS);
  }

  stopAcks() {
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.ackTimer = null;
  }

  async ack(force) {
    if (!this.channel || this.resuming) return;
    try {
      const frame = await this.channel.takeAck(force);
      if (frame) this.sendPeer(frame);
    } catch (e) {
      if (e.fatal) throw e;
    }
  }

  get bufferedAmount() { return this.ws.bufferedAmount; }

  /** Whether senders of bulk data (files) should wait: half the retransmission buffer is in use. */
  get backlogged() {
    return Boolean(this.channel) && (this.resuming
      || this.channel.unacknowledgedBytes > MAX_UNACKED_BYTES / 2 || this.channel.unacknowledged > MAX_UNACKED_MESSAGES / 2);
  }

  send(msg) {
    if (this.closed || this.resuming || this.ws.readyState !== WebSocket.OPEN) return false;
    const bytes = encodeRelay(msg);
    this.bytesOut += bytes.length;
    this.ws.send(bytes);
    return true;
  }

  /** Sends a sealed frame; null (a message kept for after a resume) sends nothing. */
  sendPeer(peer) { return peer ? this.send({ type: 'Peer', bytes: encodePeer(peer) }) : false; }

  /**
   * Seals and sends an application message through the attached channel; during a resume a
   * reliable message is kept and sent once the session is back, others are dropped.
   */
  async sendApp(app) {
    const sealed = await this.channel.sendOrQueue(app).catch((e) => {
      if (e.kind === 'resuming') return null;
      throw e;
    });
    this.sendPeer(sealed);
  }

  lost(ws) {
    if (this.resuming || this.closed) return;
    try { ws.onclose = null; ws.onmessage = null; ws.close(); } catch { /* already closed */ }
    this.resume();
  }

  async resume() {
    this.resuming = true;
    this.handlers.onResuming?.();
    const deadline = Date.now() + GIVE_UP_MS;
    const n = this.urls.length;
    let backoff = 200;
    let outcome = 'retry';
    for (let attempt = 0; Date.now() < deadline && !this.closed; attempt++) {
      if (attempt > 0 && attempt % n === 0) {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
      const index = (this.current + attempt) % n;
      try {
        outcome = await this.tryResume(index, deadline);
      } catch (e) {
        this.resuming = false;
        this.fail(e);
        return;
      }
      if (outcome === 'ok') {
        this.current = index;
        this.resuming = false;
        this.resumes += 1;
        this.handlers.onResumed?.(this.urls[index]);
        return;
      }
      if (outcome === 'final') break;
    }
    this.resuming = false;
    if (this.closed) return;
    this.closed = true;
    this.stopAcks();
    this.handlers.onClose?.();
  }

  /** One attempt on urls[index]: resolves 'ok', 'retry' or 'final'; channel errors throw. */
  tryResume(index, deadline) {
    return new Promise((resolve, reject) => {
      if (!this.token || !this.sid) { resolve('final'); return; }
      const token = this.token;
      let step = 'connect';
      let done = false;
      let queue = Promise.resolve();
      const ws = new WebSocket(this.urls[index]);
      ws.binaryType = 'arraybuffer';
      let timer = setTimeout(() => finish('retry'), Math.min(CONNECT_MS, Math.max(0, deadline - Date.now())));
      const finish = (result, error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (result === 'ok') {
          ws.onerror = null;
          ws.onmessage = (ev) => this.onSocketMessage(ws, ev);
          ws.onclose = () => this.onSocketClose(ws);
          this.ws = ws;
          resolve('ok');
          return;
        }
        ws.onmessage = null;
        ws.onclose = null;
        ws.onerror = null;
        try { ws.close(); } catch { /* closing */ }
        if (error) reject(error); else resolve(result);
      };
      const sendPeer = (peer) => { ws.send(encodeRelay({ type: 'Peer', bytes: encodePeer(peer) })); };
      ws.onopen = () => {
        ws.send(encodeRelay({ type: 'Resume', sid: this.sid, role: this.role, token }));
        step = 'token';
      };
      ws.onclose = () => finish('retry');
      // A refused connection: browsers follow 'error' with 'close', Node's WebSocket may not.
      ws.onerror = () => finish('retry');
      ws.onmessage = (ev) => {
        if (typeof ev.data === 'string') { finish('final'); return; }
        const bytes = new Uint8Array(ev.data);
        queue = queue.then(async () => {
          if (done) {
            // Arrived behind the other side's Resume: the session's, in order.
            if (this.ws === ws) this.onSocketMessage(ws, ev);
            return;
          }
          const msg = decodeRelay(bytes);
          if (msg.type === 'ResumeToken') {
            this.token = msg.token;
            step = 'paired';
            // The other side may take a while to come back: wait up to the deadline.
            clearTimeout(timer);
            timer = setTimeout(() => finish('retry'), Math.max(0, deadline - Date.now()));
            return;
          }
          if (msg.type === 'Refused') {
            finish(msg.reason === 'InvalidOrExpired' || msg.reason === 'NotAllowed' ? 'final' : 'retry');
            return;
          }
          if (msg.type === 'PeerGone' || msg.type === 'Bye') { finish(RESUMABLE.has(msg.reason) ? 'retry' : 'final'); return; }
          if (msg.type === 'Paired' && step === 'paired') {
            step = 'rekey';
            sendPeer(await this.channel.startRekey());
            return;
          }
          if (msg.type !== 'Peer') { finish('final'); return; }
          const peer = decodePeer(msg.bytes);
          if (step === 'rekey') {
            sendPeer(await this.channel.onRekey(peer));
            step = 'resume';
            return;
          }
          if (step === 'resume') {
            const app = await this.channel.open(peer);
            if (app.type !== 'Resume') throw new Error('a message before Resume');
            for (const frame of await this.channel.retransmit()) sendPeer(frame);
            finish('ok');
          }
        }).catch((e) => finish('final', e));
      };
    });
  }

  /** Says goodbye (with an end reason) and closes. */
  close(reason = 'Normal') {
    if (this.closed) return;
    this.send({ type: 'Bye', reason });
    this.closed = true;
    this.stopAcks();
    try { this.ws.close(1000); } catch { /* already closing */ }
  }
}

/** The H.264 Constrained Baseline codec string whose level fits width x height. */
export function avcCodecFor(width, height) {
  const mbs = Math.ceil(width / 16) * Math.ceil(height / 16);
  if (mbs <= 3600) return 'avc1.42E01F'; // level 3.1: 1280x720
  if (mbs <= 8192) return 'avc1.42E028'; // level 4.0: 1920x1080
  return 'avc1.42E033'; // level 5.1
}

export const END_TEXT = {
  Normal: '세션이 종료되었습니다 / The session ended',
  Idle: '오래 사용하지 않아 종료되었습니다 / Ended after inactivity',
  PeerLeft: '상대방이 나갔습니다 / The other side left',
  Protocol: '프로토콜 오류로 종료되었습니다 / Ended: protocol error',
  TooLarge: '너무 큰 데이터로 종료되었습니다 / Ended: frame too large',
  PairTimeout: '접속 번호가 만료되었습니다 / The code expired',
  Shutdown: '중계 서버가 종료되었습니다 / The relay is shutting down',
  SasMismatch: '확인 번호가 달라 중단되었습니다 / Aborted: the check numbers differ',
  Integrity: '보안 검증 실패로 종료되었습니다 / Ended: a frame failed its integrity check',
};
