// haetae remote support, the customer's page (/r, /r/CODE): code, consent, key agreement and
// check number (SAS), then screen sharing (getDisplayMedia + WebCodecs VideoEncoder, H.264
// Constrained Baseline, realtime), chat, and the agent's pointer over the page. Every
// message after the key agreement is sealed with AES-256-GCM (proto.js); a frame that fails
// to open ends the session (fail closed). No inline script: the Center's CSP applies.

import { CustomerHandshake, MAX_CHUNK, allowedFrom, decodePeer } from './proto.js';
import { END_TEXT, RelayLink, avcCodecFor, relayUrl } from './link.js';

const $ = (id) => document.getElementById(id);
const HIGH_WATER = 512 * 1024; // bytes queued on the WebSocket before frames are dropped
const KEY_INTERVAL_MS = 2000;
// A still screen produces no new frames; the last one is encoded again after this long (a
// near-empty delta frame), so the agent gets a requested key frame and the relay's idle
// timeout does not end a quiet session.
const REPEAT_MS = 1000;

let link = null;
let state = 'code';
let hs = null;
let pending = null;
let channel = null;
let chatId = 0n;
let capture = null;

function status(text, isError = false) {
  const el = $('rs-status');
  el.textContent = text;
  el.className = isError ? 'rs-status error' : 'rs-status';
}

function chatLine(who, text) {
  const li = document.createElement('li');
  li.className = who;
  li.textContent = `${who === 'me' ? '나 / Me' : '상담원 / Agent'}: ${text}`;
  $('rs-chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

/** Ends the session on this side, with a reason shown to the customer. */
function end(reason, detail) {
  if (state === 'ended') return;
  state = 'ended';
  stopCapture();
  if (link) link.close(reason);
  $('rs-banner').hidden = true;
  $('rs-pointer').hidden = true;
  $('rs-step-sas').hidden = true;
  $('rs-step-share').hidden = true;
  $('rs-chat-input').disabled = true;
  document.body.dataset.state = 'ended';
  document.body.dataset.endReason = reason;
  status(`${END_TEXT[reason] ?? reason}${detail ? ` (${detail})` : ''}`, reason !== 'Normal');
}

function send(app) {
  if (!channel || state !== 'open') return Promise.resolve();
  return channel.seal(app).then((sealed) => { link.sendPeer(sealed); }, (e) => {
    if (e.fatal) end('Integrity', e.message);
    else throw e;
  });
}

async function onRelay(msg) {
  switch (msg.type) {
    case 'Refused': {
      const text = msg.reason === 'TooManyAttempts'
        ? `시도가 너무 많습니다. ${msg.retryAfterSecs}초 후에 다시 시도하세요 / Too many attempts; try again in ${msg.retryAfterSecs} s`
        : '번호가 올바르지 않거나 만료되었습니다 / The code is invalid or expired';
      state = 'code';
      link.close();
      link = null;
      $('rs-connect').disabled = false;
      status(text, true);
      return;
    }
    case 'Paired': {
      state = 'agent-key';
      let commit;
      [hs, commit] = await CustomerHandshake.start(msg.sid);
      link.sendPeer(commit);
      status('상담원과 연결하는 중 / Connecting to the agent…');
      return;
    }
    case 'Peer': return onPeer(decodePeer(msg.bytes));
    case 'PeerGone': case 'Bye': end(msg.reason === 'Normal' ? 'Normal' : msg.reason); return;
    default: end('Protocol', `unexpected ${msg.type}`);
  }
}

async function onPeer(m) {
  if (m.type === 'Abort') { end(m.reason); return; }
  if (state === 'agent-key') {
    let reveal;
    [reveal, pending] = await hs.onAgentKey(m);
    hs = null;
    link.sendPeer(reveal);
    state = 'sas';
    $('rs-step-code').hidden = true;
    $('rs-sas').textContent = pending.sas;
    $('rs-step-sas').hidden = false;
    status('상담원이 확인 번호를 확인하고 있습니다 / The agent is checking the number…');
    return;
  }
  if (state === 'sas') {
    channel = await pending.onConfirmation(m);
    pending = null;
    state = 'open';
    $('rs-step-sas').hidden = true;
    $('rs-step-share').hidden = false;
    $('rs-chat-box').hidden = false;
    $('rs-banner').hidden = false;
    document.body.dataset.state = 'open';
    status('연결되었습니다 / Connected');
    return;
  }
  if (state !== 'open') return;
  const app = await channel.open(m);
  if (!allowedFrom('agent', app.type)) { end('Protocol', `${app.type} from the agent`); return; }
  onApp(app);
}

function onApp(app) {
  switch (app.type) {
    case 'Chat': chatLine('peer', app.text); break;
    case 'Pointer': movePointer(app); break;
    case 'KeyFrameRequest': if (capture) capture.needKey = true; break; // the next frame, or a repeat within 250 ms
    case 'Bye': end(app.reason === 'Normal' ? 'Normal' : app.reason); break;
    case 'Error': status(`상담원 측 오류 / Agent error ${app.code}: ${app.message}`, true); break;
    case 'ControlRequest':
      // Keyboard/mouse control needs the native helper (not built); the browser cannot grant it.
      chatLine('peer', '[원격 제어 요청: 이 페이지에서는 지원하지 않습니다 / control requested: not available in the browser]');
      break;
    case 'FileOffer':
      send({ type: 'FileRefuse', id: app.id });
      chatLine('peer', `[파일 ${app.name}: 이 페이지에서는 받을 수 없어 거절했습니다 / file refused: not available yet]`);
      break;
    default: break; // Ack, drawing and URLs are not shown on this page yet
  }
}

function movePointer({ x, y, visible }) {
  const p = $('rs-pointer');
  p.hidden = !visible;
  p.style.left = `${(x / 65535) * window.innerWidth}px`;
  p.style.top = `${(y / 65535) * window.innerHeight}px`;
  document.body.dataset.pointer = visible ? `${x},${y}` : 'hidden';
}

// ---- screen sharing ----

async function encoderConfig(width, height) {
  const base = { width, height, bitrate: 2_000_000, framerate: 30, latencyMode: 'realtime' };
  const avc = { ...base, codec: avcCodecFor(width, height), avc: { format: 'annexb' } };
  if ((await VideoEncoder.isConfigSupported(avc)).supported) return [avc, 'H264'];
  const vp8 = { ...base, codec: 'vp8' };
  if ((await VideoEncoder.isConfigSupported(vp8)).supported) return [vp8, 'VP8'];
  throw new Error('this browser cannot encode H.264 or VP8 video (WebCodecs)');
}

function stopCapture() {
  if (!capture) return;
  capture.stopped = true;
  clearInterval(capture.repeat);
  capture.last?.close();
  capture.stream.getTracks().forEach((t) => t.stop());
  try { capture.encoder?.close(); } catch { /* closed */ }
  capture = null;
  $('rs-share-state').textContent = '공유 중지됨 / Sharing stopped';
  $('rs-share').disabled = false;
}

async function startShare() {
  if (capture || state !== 'open') return;
  if (!('VideoEncoder' in window) || !('MediaStreamTrackProcessor' in window)) {
    status('이 브라우저는 화면 공유 인코딩(WebCodecs)을 지원하지 않습니다 / This browser lacks WebCodecs', true);
    return;
  }
  $('rs-share').disabled = true;
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 30, max: 30 } }, audio: false,
      preferCurrentTab: true, selfBrowserSurface: 'include', surfaceSwitching: 'exclude',
    });
  } catch (e) {
    $('rs-share').disabled = false;
    status(`화면 공유가 취소되었습니다 / Sharing was cancelled (${e.name})`, true);
    return;
  }
  const track = stream.getVideoTracks()[0];
  capture = {
    stream, encoder: null, codec: null, width: 0, height: 0, frame: 0, needKey: true, lastKey: 0,
    stopped: false, sent: 0, dropped: 0, configuring: false, last: null, lastInput: 0, repeated: 0,
  };
  const mine = capture;
  mine.repeat = setInterval(() => repeatLast(mine), 250);
  track.addEventListener('ended', () => { if (capture === mine) stopCapture(); });
  $('rs-share-state').textContent = '화면 공유 중 / Sharing';
  document.body.dataset.sharing = 'yes';
  const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
  for (;;) {
    const { value: frame, done } = await reader.read();
    if (done || mine.stopped) { frame?.close(); break; }
    try {
      await encodeFrame(mine, frame);
    } catch (e) {
      frame.close();
      status(`화면 인코딩 오류 / Encoding failed: ${e.message}`, true);
      stopCapture();
      break;
    }
  }
}

/** Encodes the last frame again when the screen has been still (see REPEAT_MS). */
function repeatLast(cap) {
  if (cap.stopped || !cap.encoder || cap.configuring || !cap.last || state !== 'open') return;
  const idle = performance.now() - cap.lastInput;
  if (idle < (cap.needKey ? 250 : REPEAT_MS)) return;
  const copy = new VideoFrame(cap.last, { timestamp: cap.last.timestamp + Math.round(idle * 1000) });
  cap.repeated += 1;
  document.body.dataset.framesRepeated = String(cap.repeated);
  encodeFrame(cap, copy, false).catch(() => copy.close());
}

async function encodeFrame(cap, frame, live = true) {
  const width = frame.displayWidth & ~1;
  const height = frame.displayHeight & ~1;
  if (!cap.encoder || width !== cap.width || height !== cap.height) {
    if (!live) { frame.close(); return; } // a repeat of a frame from before a resize
    if (cap.encoder) cap.encoder.close();
    cap.encoder = null;
    cap.configuring = true;
    const [config, codec] = await encoderConfig(width, height).finally(() => { cap.configuring = false; });
    if (cap.stopped) { frame.close(); return; }
    cap.encoder = new VideoEncoder({
      output: (chunk) => sendChunk(cap, chunk),
      error: (e) => { status(`인코더 오류 / Encoder error: ${e.message}`, true); stopCapture(); },
    });
    cap.encoder.configure(config);
    Object.assign(cap, { codec, width, height, needKey: true });
  }
  // Back-pressure: while the socket or the encoder is backed up, frames are dropped before
  // encoding and the next one sent is a key frame.
  if (link.bufferedAmount > HIGH_WATER || cap.encoder.encodeQueueSize > 2) {
    frame.close();
    cap.dropped += 1;
    if (link.bufferedAmount > HIGH_WATER) cap.needKey = true;
    return;
  }
  const now = performance.now();
  if (live) {
    cap.last?.close();
    cap.last = frame.clone();
  }
  cap.lastInput = now;
  const keyFrame = cap.needKey || now - cap.lastKey > KEY_INTERVAL_MS;
  if (keyFrame) { cap.needKey = false; cap.lastKey = now; }
  cap.encoder.encode(frame, { keyFrame });
  frame.close();
}

function sendChunk(cap, chunk) {
  if (cap.stopped || state !== 'open') return;
  const key = chunk.type === 'key';
  if (!key && link.bufferedAmount > HIGH_WATER) { cap.needKey = true; cap.dropped += 1; return; }
  const data = new Uint8Array(chunk.byteLength);
  chunk.copyTo(data);
  cap.frame = (cap.frame + 1) >>> 0;
  const chunks = Math.max(1, Math.ceil(data.length / MAX_CHUNK));
  send({
    type: 'ScreenFrame', frame: cap.frame, width: cap.width, height: cap.height, codec: cap.codec,
    keyFrame: key, timestampUs: BigInt(Math.max(0, Math.round(chunk.timestamp))), totalLen: data.length, chunks,
  });
  for (let i = 0; i < chunks; i++) {
    send({ type: 'ScreenChunk', frame: cap.frame, index: i, data: data.subarray(i * MAX_CHUNK, (i + 1) * MAX_CHUNK) });
  }
  cap.sent += 1;
  document.body.dataset.framesSent = String(cap.sent);
}

// ---- wiring ----

function codeFromPath() {
  const m = /^\/r\/([0-9]{6,9})\/?$/.exec(location.pathname);
  return m ? m[1] : '';
}

document.addEventListener('DOMContentLoaded', () => {
  $('rs-code').value = codeFromPath();
  $('rs-code-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (link || state !== 'code') return;
    if (!$('rs-agree').checked) { status('동의가 필요합니다 / Please agree first', true); return; }
    const code = $('rs-code').value.replace(/[\s-]/g, '');
    $('rs-connect').disabled = true;
    state = 'joining';
    status('연결 중 / Connecting…');
    link = new RelayLink(relayUrl(), {
      onOpen: () => link.send({ type: 'CustomerJoin', code }),
      onMessage: onRelay,
      onClose: () => { if (state !== 'code') end('PeerLeft'); },
      onFail: (e) => end(e.kind === 'integrity' || e.kind === 'sequence' || e.kind === 'malformed' ? 'Integrity' : 'Protocol', e.message),
    });
  });
  $('rs-share').addEventListener('click', () => { startShare(); });
  $('rs-end').addEventListener('click', () => {
    send({ type: 'Bye', reason: 'Normal' }).finally(() => end('Normal'));
  });
  $('rs-chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('rs-chat-input').value.trim();
    if (!text || state !== 'open') return;
    chatId += 1n;
    send({ type: 'Chat', id: chatId, text }).then(() => chatLine('me', text), (e) => status(e.message, true));
    $('rs-chat-input').value = '';
  });
  window.addEventListener('resize', () => { $('rs-pointer').hidden = true; });
});
