// haetae remote support: one WebSocket to the relay (`/relay` on the page's own address),
// relay messages in and out, and a serial queue so that async handlers (WebCrypto) see
// messages in arrival order.

import { decodeRelay, encodePeer, encodeRelay } from './proto.js';

export function relayUrl() {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/relay`;
}

export class RelayLink {
  /** handler(msg) may be async; errors end the link through onFail(error). */
  constructor(url, { onOpen, onMessage, onClose, onFail }) {
    this.closed = false;
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'arraybuffer';
    this.queue = Promise.resolve();
    this.bytesIn = 0;
    this.bytesOut = 0;
    this.ws.onopen = () => onOpen?.();
    this.ws.onmessage = (ev) => {
      if (this.closed) return;
      if (typeof ev.data === 'string') { this.fail(onFail, new Error('text message from the relay')); return; }
      const bytes = new Uint8Array(ev.data);
      this.bytesIn += bytes.length;
      this.queue = this.queue.then(async () => {
        if (this.closed) return;
        await onMessage(decodeRelay(bytes));
      }).catch((e) => this.fail(onFail, e));
    };
    this.ws.onclose = () => {
      const was = this.closed;
      this.closed = true;
      if (!was) onClose?.();
    };
  }

  fail(onFail, e) {
    if (this.closed) return;
    onFail?.(e);
  }

  get bufferedAmount() { return this.ws.bufferedAmount; }

  send(msg) {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    const bytes = encodeRelay(msg);
    this.bytesOut += bytes.length;
    this.ws.send(bytes);
    return true;
  }

  sendPeer(peer) { return this.send({ type: 'Peer', bytes: encodePeer(peer) }); }

  /** Says goodbye (with an end reason) and closes. */
  close(reason = 'Normal') {
    if (this.closed) return;
    this.send({ type: 'Bye', reason });
    this.closed = true;
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
