// haetae remote support, the customer's page (/r, /r/CODE): code, consent, key agreement and
// check number (SAS), then screen sharing (getDisplayMedia + WebCodecs VideoEncoder, H.264
// Constrained Baseline, realtime), chat, the agent's pointer and drawings over the page, URLs
// the customer accepts or refuses, and files in either direction with the customer's consent
// (received files are checked against their SHA-256 and scanned by the Center before they are
// offered for saving). Every message after the key agreement is sealed with AES-256-GCM
// (proto.js); a frame that fails to open ends the session (fail closed). No inline script: the
// Center's CSP applies.
//
// The agent's grade: the page fetches the Center's public key from its own origin before
// joining; the agent console forwards the policy the Center signed for this session; until a
// valid one arrives only chat and the screen flow, and afterwards only what it grants. A bad
// policy ends the session; a message the grade does not allow is refused (never acted on).

import {
  CustomerHandshake, MAX_CHUNK, allowedFrom, decodePeer, hex, noPolicy, policyAllows, unhex, verifyPolicy,
} from './proto.js';
import {
  END_TEXT, RelayLink, avcCodecFor, relayUrls,
} from './link.js';

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
let centerKey = null; // the Center's Ed25519 public key (from /remote/policy-key)
let sid = null;
let policy = noPolicy();
let policyReceived = false;
const FILE_CHUNK = 60 * 1024;
const SEND_HIGH_WATER = 1024 * 1024;
const incoming = new Map(); // transfers the agent offered: id -> { name, size, sha256, state, parts, got }
const outgoing = new Map(); // files this page offered: id -> { name, data }
let nextFileId = 0x80000000; // the agent numbers from 1; the customer from 2^31
let shapes = [];

async function fetchCenterKey() {
  const r = await fetch('/remote/policy-key', { cache: 'no-store', credentials: 'omit' });
  const body = await r.json();
  if (!r.ok || body.alg !== 'Ed25519' || !/^[0-9a-f]{64}$/.test(body.key)) throw new Error('no policy key');
  return unhex(body.key);
}

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
  $('rs-url-box').hidden = true;
  $('rs-send-file-box').hidden = true;
  for (const el of document.querySelectorAll('.rs-file-offer button')) el.disabled = true;
  clearDrawings();
  incoming.clear();
  outgoing.clear();
  document.body.dataset.state = 'ended';
  document.body.dataset.endReason = reason;
  status(`${END_TEXT[reason] ?? reason}${detail ? ` (${detail})` : ''}`, reason !== 'Normal');
}

function send(app) {
  if (!channel || !link || state !== 'open') return Promise.resolve();
  // Through the link: during a relay failover reliable messages wait and are sent after it.
  return link.sendApp(app).catch((e) => {
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
      sid = msg.sid;
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
    link.attach(channel);
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
  if (app.type === 'Policy') { await onPolicy(app); return; }
  if (!policyAllows(policy, app.type)) { refuse(app); return; }
  onApp(app);
}

async function onPolicy(app) {
  if (policyReceived) { end('Protocol', 'a second session policy'); return; }
  policyReceived = true;
  try {
    policy = await verifyPolicy(centerKey, app.payload, app.signature, sid, Math.floor(Date.now() / 1000));
  } catch (e) {
    end('Protocol', `상담원의 권한 정보가 올바르지 않습니다 / the agent's session policy is invalid: ${e.message}`);
    return;
  }
  document.body.dataset.grade = policy.grade;
  document.body.dataset.agent = policy.agent;
  $('rs-agent-name').textContent = `${policy.agent} (${policy.grade === 'direct' ? '직접 지원 / direct' : '간접 지원 / indirect'})`;
  $('rs-send-file-box').hidden = !policy.features.files;
}

/** A message the agent's grade does not allow: dropped, the agent told, the customer too. */
function refuse(app) {
  if (app.type === 'Pointer' && !policyReceived) return; // moved before the policy arrived
  document.body.dataset.refused = app.type;
  if (app.type === 'FileChunk' || app.type === 'FileDone') return;
  const what = app.type === 'ControlRequest' ? '원격 제어 요청 / a control request' : app.type;
  status(`상담원 등급에서 허용되지 않아 거부했습니다: ${what} / Refused: not allowed for this agent's grade`, true);
  if (app.type === 'FileOffer') send({ type: 'FileRefuse', id: app.id });
  else send({ type: 'Error', code: 403, message: `${app.type} is not allowed by the agent's grade` });
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
    case 'Drawing': addDrawing(app); break;
    case 'DrawingClear': clearDrawings(); break;
    case 'UrlPush': offerUrl(app.url); break;
    case 'FileOffer': onFileOffer(app); break;
    case 'FileChunk': onFileChunk(app); break;
    case 'FileDone': onFileDone(app.id); break;
    case 'FileAccept': sendFile(app.id); break;
    case 'FileRefuse': onFileRefuse(app.id); break;
    default: break; // Ack
  }
}

// ---- drawings over the page ----

function redraw() {
  const c = $('rs-draw');
  const w = window.innerWidth;
  const h = window.innerHeight;
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const g = c.getContext('2d');
  g.clearRect(0, 0, w, h);
  const px = (p) => [(p[0] / 65535) * w, (p[1] / 65535) * h];
  for (const d of shapes) {
    const col = d.color >>> 0;
    g.strokeStyle = `rgba(${col >>> 24}, ${(col >>> 16) & 255}, ${(col >>> 8) & 255}, ${(col & 255) / 255})`;
    g.lineWidth = d.width;
    g.lineCap = 'round';
    g.lineJoin = 'round';
    g.beginPath();
    const s = d.shape;
    if (s.kind === 'Path') {
      s.points.forEach((p, i) => { const [x, y] = px(p); if (i === 0) g.moveTo(x, y); else g.lineTo(x, y); });
    } else {
      const [x0, y0] = px(s.from);
      const [x1, y1] = px(s.to);
      if (s.kind === 'Line') { g.moveTo(x0, y0); g.lineTo(x1, y1); }
      else if (s.kind === 'Rect') g.rect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
      else g.ellipse((x0 + x1) / 2, (y0 + y1) / 2, Math.abs(x1 - x0) / 2, Math.abs(y1 - y0) / 2, 0, 0, 2 * Math.PI);
    }
    g.stroke();
  }
  $('rs-draw').hidden = shapes.length === 0;
  document.body.dataset.drawings = String(shapes.length);
}

function addDrawing(d) {
  if (shapes.length >= 256) shapes.shift();
  shapes.push(d);
  redraw();
}

function clearDrawings() {
  shapes = [];
  redraw();
}

// ---- URLs the agent sends: the customer decides ----

function offerUrl(text) {
  let url;
  try { url = new URL(text); } catch { return; }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return; // the decoder already refuses others
  $('rs-url-text').textContent = url.href;
  $('rs-url-box').dataset.url = url.href;
  $('rs-url-box').hidden = false;
}

function decideUrl(open) {
  const box = $('rs-url-box');
  const url = box.dataset.url;
  box.hidden = true;
  delete box.dataset.url;
  if (!url) return;
  if (open) window.open(url, '_blank', 'noopener,noreferrer');
  document.body.dataset.urlDecision = open ? 'opened' : 'refused';
  chatLine('me', open ? `[주소를 열었습니다 / opened ${url}]` : `[주소를 열지 않았습니다 / did not open ${url}]`);
  send({ type: 'Chat', id: ++chatId, text: open ? `[URL opened: ${url}]` : `[URL refused: ${url}]` });
}

// ---- files ----

const sizeText = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);

function onFileOffer(o) {
  const size = Number(o.size);
  if (size > policy.maxFile || incoming.has(o.id) || incoming.size >= 8) { send({ type: 'FileRefuse', id: o.id }); return; }
  incoming.set(o.id, { name: o.name, size, sha256: hex(o.sha256), state: 'offered', parts: [], got: 0 });
  const li = document.createElement('li');
  li.className = 'rs-file-offer';
  li.id = `rs-offer-${o.id}`;
  li.dataset.state = 'offered';
  const text = document.createElement('span');
  text.textContent = `상담원이 파일을 보내려 합니다 / The agent wants to send you a file: ${o.name} (${sizeText(size)}) `;
  const yes = document.createElement('button');
  yes.type = 'button';
  yes.className = 'rs-accept';
  yes.textContent = '받기 / Accept';
  const no = document.createElement('button');
  no.type = 'button';
  no.className = 'rs-refuse';
  no.textContent = '거절 / Refuse';
  yes.addEventListener('click', () => decideFile(o.id, true));
  no.addEventListener('click', () => decideFile(o.id, false));
  li.append(text, yes, no);
  $('rs-files').append(li);
  $('rs-files-box').hidden = false;
}

function fileState(id, st, text) {
  const li = $(`rs-offer-${id}`);
  if (!li) return null;
  li.dataset.state = st;
  for (const b of li.querySelectorAll('button')) b.remove();
  const span = document.createElement('span');
  span.className = 'rs-file-state';
  span.textContent = ` ${text}`;
  li.append(span);
  return li;
}

function decideFile(id, accept) {
  const f = incoming.get(id);
  if (!f || f.state !== 'offered' || state !== 'open') return;
  if (accept) {
    f.state = 'accepted';
    fileState(id, 'accepted', '받는 중 / receiving…');
    send({ type: 'FileAccept', id });
  } else {
    incoming.delete(id);
    fileState(id, 'refused', '거절함 / refused');
    send({ type: 'FileRefuse', id });
  }
}

function onFileChunk(c) {
  const f = incoming.get(c.id);
  if (!f) return;
  // Data before the customer accepted, out of order or past the size: the transfer is cancelled.
  if (f.state !== 'accepted' || Number(c.offset) !== f.got || f.got + c.data.length > f.size) {
    incoming.delete(c.id);
    fileState(c.id, 'cancelled', '전송 규칙 위반으로 취소 / cancelled: data out of order or before consent');
    send({ type: 'FileRefuse', id: c.id });
    return;
  }
  f.parts.push(c.data);
  f.got += c.data.length;
}

async function onFileDone(id) {
  const f = incoming.get(id);
  if (!f) return;
  incoming.delete(id);
  if (f.state !== 'accepted') return;
  const data = new Uint8Array(f.got);
  let at = 0;
  for (const p of f.parts) { data.set(p, at); at += p.length; }
  const digest = hex(new Uint8Array(await crypto.subtle.digest('SHA-256', data)));
  if (f.got !== f.size || digest !== f.sha256) {
    fileState(id, 'corrupt', '파일이 손상되어 버렸습니다 / the file was damaged and discarded');
    send({ type: 'Error', code: 460, message: `file ${id}: corrupt` });
    return;
  }
  fileState(id, 'scanning', '검사 중 / scanning…');
  let report;
  try {
    const r = await fetch(`/r/scan?name=${encodeURIComponent(f.name)}`, {
      method: 'POST', cache: 'no-store', credentials: 'omit',
      headers: { 'X-Haetae-Session': hex(sid), 'Content-Type': 'application/octet-stream' }, body: data,
    });
    report = await r.json();
    if (!r.ok) throw new Error(report?.error?.message || `HTTP ${r.status}`);
  } catch (e) {
    fileState(id, 'unscanned', `검사할 수 없어 버렸습니다 / could not be scanned, discarded (${e.message})`);
    send({ type: 'Error', code: 460, message: `file ${id}: unscanned` });
    return;
  }
  const li = $(`rs-offer-${id}`);
  li.dataset.verdict = report.verdict;
  li.querySelector('.rs-file-state')?.remove();
  if (report.verdict === 'vulnerable') {
    const why = report.findings.map((x) => `${x.code}: ${x.message}`).join('; ');
    fileState(id, 'refused-scan', `위험한 파일이라 받지 않았습니다 / Refused as dangerous — ${why}`);
    send({ type: 'Error', code: 460, message: `file ${id}: vulnerable (${report.findings.map((x) => x.code).join(', ')})`.slice(0, 500) });
    return;
  }
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([data]));
  a.download = f.name;
  a.className = 'rs-save';
  a.dataset.sha256 = digest;
  a.textContent = `저장 / Save (${report.verdict === 'clean' ? '검사 통과 / clean' : '주의: 활성 내용 포함 / caution: active content'})`;
  fileState(id, 'received', '').append(a);
}

async function offerOwnFile(file) {
  if (state !== 'open' || !policy.features.files) return;
  if (file.size > policy.maxFile) { status(`파일이 너무 큽니다 / The file is larger than ${sizeText(policy.maxFile)}`, true); return; }
  const data = new Uint8Array(await file.arrayBuffer());
  const id = nextFileId++;
  const name = file.name.replace(/[/\\:\u0000-\u001f\u007f]/g, '_').slice(0, 255) || 'file';
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  outgoing.set(id, { name, data });
  await send({ type: 'FileOffer', id, name, size: BigInt(data.length), sha256: digest });
  const li = document.createElement('li');
  li.id = `rs-mine-${id}`;
  li.dataset.state = 'offered';
  li.textContent = `→ ${name} (${sizeText(data.length)}): 보내는 중 / sending`;
  $('rs-files').append(li);
  $('rs-files-box').hidden = false;
}

async function sendFile(id) {
  const f = outgoing.get(id);
  if (!f || f.sending) return;
  f.sending = true;
  for (let off = 0; off < f.data.length; off += FILE_CHUNK) {
    while (link && (link.bufferedAmount > SEND_HIGH_WATER || link.backlogged)) await new Promise((r) => setTimeout(r, 20));
    if (state !== 'open') return;
    await send({ type: 'FileChunk', id, offset: BigInt(off), data: f.data.subarray(off, off + FILE_CHUNK) });
  }
  await send({ type: 'FileDone', id });
  outgoing.delete(id);
  const li = $(`rs-mine-${id}`);
  if (li) { li.dataset.state = 'sent'; li.textContent = `→ ${f.name}: 보냄 / sent`; }
}

function onFileRefuse(id) {
  if (outgoing.delete(id)) {
    const li = $(`rs-mine-${id}`);
    if (li) { li.dataset.state = 'refused'; li.textContent += ' — 거절됨 / refused'; }
  }
  if (incoming.delete(id)) fileState(id, 'cancelled', '상담원이 취소 / cancelled by the agent');
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
    fetchCenterKey().then((key) => { centerKey = key; join(code); }, () => {
      state = 'code';
      $('rs-connect').disabled = false;
      status('지원 센터에 연결할 수 없습니다 / Cannot reach the support centre', true);
    });
  });
  function join(code) {
    link = new RelayLink(relayUrls(), {
      role: 'customer',
      onResuming: () => { document.body.dataset.link = 'resuming'; status('연결이 끊어져 다시 연결하는 중 / Connection lost, reconnecting…', true); },
      onResumed: () => { document.body.dataset.link = 'resumed'; status('다시 연결되었습니다 / Reconnected'); },
      onOpen: () => link.send({ type: 'CustomerJoin', code }),
      onMessage: onRelay,
      onClose: () => { if (state !== 'code') end('PeerLeft'); },
      onFail: (e) => end(e.kind === 'integrity' || e.kind === 'sequence' || e.kind === 'malformed' ? 'Integrity' : 'Protocol', e.message),
    });
  }
  $('rs-url-open').addEventListener('click', () => decideUrl(true));
  $('rs-url-refuse').addEventListener('click', () => decideUrl(false));
  $('rs-send-file').addEventListener('change', () => {
    const file = $('rs-send-file').files[0];
    $('rs-send-file').value = '';
    if (file) offerOwnFile(file).catch((e) => status(e.message, true));
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
  window.addEventListener('resize', () => { $('rs-pointer').hidden = true; redraw(); });
});
