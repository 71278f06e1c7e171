// haetae remote support, the agent console (/remote in the Control Center): issue a code at
// the relay, run the key agreement, compare the check number (SAS) with the customer on the
// phone ("matches" sends the first sealed frame; nothing else flows before it; "differs"
// aborts), then decode the customer's screen (WebCodecs VideoDecoder) onto a canvas, chat,
// point (normalised coordinates), end. The event log beside the screen lists what happened.

import { AgentHandshake, allowedFrom, decodePeer } from './proto.js';
import { END_TEXT, RelayLink, avcCodecFor, relayUrl } from './link.js';

const $ = (id) => document.getElementById(id);
const MAX_FRAME_BYTES = 16 * 1024 * 1024; // one encoded screen frame
const KEY_REQUEST_GAP_MS = 1000;
const MAX_DECODE_QUEUE = 8;

let link = null;
let state = 'idle';
let hs = null;
let pending = null;
let channel = null;
let chatId = 0n;
let video = null;
let expiryTimer = null;

function log(text, isError = false) {
  const li = document.createElement('li');
  if (isError) li.className = 'error';
  li.textContent = `${new Date().toLocaleTimeString('ko-KR', { hour12: false })} ${text}`;
  $('rs-log').prepend(li);
}

function setState(s, text) {
  state = s;
  $('rs-agent').dataset.state = s;
  $('rs-state').textContent = text ?? '';
}

function chatLine(who, text) {
  const li = document.createElement('li');
  li.className = who;
  li.textContent = `${who === 'me' ? '상담원' : '고객'}: ${text}`;
  $('rs-chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

function end(reason, detail) {
  if (state === 'ended' || state === 'idle') return;
  if (link) link.close(reason);
  link = null;
  channel = null;
  pending = null;
  hs = null;
  clearInterval(expiryTimer);
  resetVideo();
  $('rs-sas-box').hidden = true;
  $('rs-end').hidden = true;
  $('rs-chat-input').disabled = true;
  $('rs-issue').disabled = false;
  $('rs-agent').dataset.endReason = reason;
  setState('ended', END_TEXT[reason] ?? reason);
  log(`${END_TEXT[reason] ?? reason}${detail ? ` — ${detail}` : ''}`, reason !== 'Normal');
}

function send(app) {
  if (!channel || state !== 'open') return Promise.resolve();
  return channel.seal(app).then((sealed) => { link?.sendPeer(sealed); }, (e) => {
    if (e.fatal) end('Integrity', e.message);
    else throw e;
  });
}

function issue() {
  if (link) return;
  $('rs-issue').disabled = true;
  $('rs-code').textContent = '';
  $('rs-link').textContent = '';
  $('rs-chat-log').replaceChildren();
  delete $('rs-agent').dataset.endReason;
  setState('opening', '발급 중 / issuing…');
  const agent = ($('rs-agent').dataset.agent || 'agent').slice(0, 64);
  fetchTicket().then((ticket) => openLink(agent, ticket), (e) => {
    $('rs-issue').disabled = false;
    setState('ended', `발급 실패 / cannot issue: ${e.message}`);
  });
}

/** The Center's ticket that proves to the relay who this agent is (null: not required). */
async function fetchTicket() {
  const r = await fetch('/remote/ticket', { credentials: 'same-origin', cache: 'no-store' });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body.ticket ?? null;
}

function openLink(agent, ticket) {
  const url = ticket ? `${relayUrl()}?ticket=${encodeURIComponent(ticket)}` : relayUrl();
  link = new RelayLink(url, {
    onOpen: () => link.send({ type: 'AgentOpen', agent }),
    onMessage: onRelay,
    onClose: () => end('PeerLeft', '중계 연결이 끊어졌습니다 / the relay connection closed'),
    onFail: (e) => end(['integrity', 'sequence', 'malformed'].includes(e.kind) ? 'Integrity' : 'Protocol', e.message),
  });
}

async function onRelay(msg) {
  switch (msg.type) {
    case 'CodeIssued': {
      const code = msg.code;
      $('rs-code').textContent = code.replace(/(\d{3})(?=\d)/g, '$1 ');
      $('rs-code').dataset.code = code;
      $('rs-link').textContent = `${location.origin}/r/${code}`;
      let left = msg.expiresInSecs;
      clearInterval(expiryTimer);
      expiryTimer = setInterval(() => {
        left -= 1;
        if (state === 'waiting') $('rs-state').textContent = `고객 대기 중 / waiting for the customer (${left} s)`;
        if (left <= 0) clearInterval(expiryTimer);
      }, 1000);
      setState('waiting', `고객 대기 중 / waiting for the customer (${left} s)`);
      log(`접속 번호 발급 (${msg.expiresInSecs}초 유효) / code issued`);
      return;
    }
    case 'Refused':
      end('Protocol', `중계 서버가 거절했습니다 / the relay refused: ${msg.reason}`);
      return;
    case 'Paired':
      clearInterval(expiryTimer);
      hs = await AgentHandshake.start(msg.sid);
      setState('commit', '키 교환 중 / key agreement…');
      log('고객 접속, 키 교환 시작 / customer joined, key agreement');
      return;
    case 'Peer': return onPeer(decodePeer(msg.bytes));
    case 'PeerGone': case 'Bye': end(msg.reason === 'Normal' ? 'Normal' : msg.reason); return;
    default: end('Protocol', `unexpected ${msg.type}`);
  }
}

async function onPeer(m) {
  if (m.type === 'Abort') { end(m.reason, '고객 측에서 중단 / aborted by the customer'); return; }
  if (state === 'commit') {
    link.sendPeer(hs.onCommit(m));
    setState('customer-key', '키 교환 중 / key agreement…');
    return;
  }
  if (state === 'customer-key') {
    pending = await hs.onCustomerKey(m);
    hs = null;
    $('rs-sas').textContent = pending.sas;
    $('rs-sas-box').hidden = false;
    $('rs-end').hidden = false;
    setState('sas', '고객이 읽어 주는 확인 번호와 비교하세요 / compare with the number the customer reads out');
    log(`확인 번호 표시: ${pending.sas} / check number shown`);
    return;
  }
  if (state === 'sas') { end('Protocol', `${m.type} before the check number was confirmed`); return; }
  if (state !== 'open') return;
  const app = await channel.open(m);
  if (!allowedFrom('customer', app.type)) { end('Protocol', `${app.type} from the customer`); return; }
  onApp(app);
}

function onApp(app) {
  switch (app.type) {
    case 'Chat': chatLine('peer', app.text); log('채팅 수신 / chat received'); break;
    case 'ScreenFrame': onScreenFrame(app); break;
    case 'ScreenChunk': onScreenChunk(app); break;
    case 'Bye': end(app.reason === 'Normal' ? 'Normal' : app.reason, '고객이 종료 / ended by the customer'); break;
    case 'Error': log(`고객 측 오류 / customer error ${app.code}: ${app.message}`, true); break;
    case 'FileRefuse': log(`파일 ${app.id} 거절됨 / file refused`); break;
    case 'FileOffer': send({ type: 'FileRefuse', id: app.id }); log('파일 전송은 아직 지원하지 않습니다 / file transfer is not available yet'); break;
    default: break;
  }
}

async function sasMatches() {
  if (state !== 'sas' || !pending) return;
  const [ch, first] = await pending.confirmSas();
  pending = null;
  channel = ch;
  link.sendPeer(first);
  $('rs-sas-box').hidden = true;
  $('rs-chat-input').disabled = false;
  setState('open', '연결됨 / connected');
  log('확인 번호 일치 확인, 세션 시작 / check number confirmed, session open');
  video = newVideo();
}

function sasDiffers() {
  if (state !== 'sas' || !pending) return;
  link.sendPeer(pending.reject());
  end('SasMismatch', '상담원이 불일치를 선택 / the agent saw different numbers');
}

// ---- video ----

function newVideo() {
  return {
    decoder: null, codec: null, width: 0, height: 0, cur: null, awaitingKey: true, lastKeyRequest: 0,
    frames: 0, fpsFrames: 0, fpsSince: performance.now(), bytes: 0, skipped: 0,
  };
}

function resetVideo() {
  if (video?.decoder && video.decoder.state !== 'closed') video.decoder.close();
  video = null;
}

function requestKey(v) {
  v.awaitingKey = true;
  v.cur = null;
  const now = performance.now();
  if (now - v.lastKeyRequest < KEY_REQUEST_GAP_MS) return;
  v.lastKeyRequest = now;
  send({ type: 'KeyFrameRequest' });
}

function onScreenFrame(f) {
  const v = video;
  if (!v) return;
  if (f.totalLen > MAX_FRAME_BYTES || f.chunks === 0 || f.chunks > Math.ceil(f.totalLen / 65536) + 1 || f.width === 0 || f.height === 0) {
    log(`잘못된 화면 프레임 / bad screen frame ${f.frame}`, true);
    requestKey(v);
    return;
  }
  if (v.cur) requestKey(v); // the previous frame never completed
  v.cur = { head: f, parts: [], got: 0 };
}

function onScreenChunk(c) {
  const v = video;
  if (!v || !v.cur) return;
  const cur = v.cur;
  if (c.frame !== cur.head.frame || c.index !== cur.parts.length || cur.got + c.data.length > cur.head.totalLen) {
    requestKey(v);
    return;
  }
  cur.parts.push(c.data);
  cur.got += c.data.length;
  if (cur.parts.length < cur.head.chunks) return;
  v.cur = null;
  if (cur.got !== cur.head.totalLen) { requestKey(v); return; }
  const data = new Uint8Array(cur.got);
  let at = 0;
  for (const p of cur.parts) { data.set(p, at); at += p.length; }
  decode(v, cur.head, data);
}

function decode(v, head, data) {
  if (v.awaitingKey && !head.keyFrame) { requestKey(v); return; }
  if (head.keyFrame && (!v.decoder || v.decoder.state === 'closed' || head.codec !== v.codec || head.width !== v.width || head.height !== v.height)) {
    if (v.decoder && v.decoder.state !== 'closed') v.decoder.close();
    if (head.codec !== 'H264' && head.codec !== 'VP8') { log(`지원하지 않는 코덱 / unsupported codec ${head.codec}`, true); return; }
    v.decoder = new VideoDecoder({
      output: (frame) => draw(v, frame),
      error: (e) => { log(`디코더 오류 / decoder error: ${e.message}`, true); requestKey(v); },
    });
    v.decoder.configure({
      codec: head.codec === 'H264' ? avcCodecFor(head.width, head.height) : 'vp8',
      codedWidth: head.width, codedHeight: head.height, optimizeForLatency: true,
    });
    Object.assign(v, { codec: head.codec, width: head.width, height: head.height });
  }
  if (!v.decoder || v.decoder.state !== 'configured') { requestKey(v); return; }
  // Falling behind (a slow machine, a large screen): skip to the next key frame rather than
  // show an ever older picture.
  if (!head.keyFrame && v.decoder.decodeQueueSize > MAX_DECODE_QUEUE) { v.skipped += 1; requestKey(v); return; }
  v.awaitingKey = false;
  v.bytes += data.length;
  v.decoder.decode(new EncodedVideoChunk({ type: head.keyFrame ? 'key' : 'delta', timestamp: Number(head.timestampUs), data }));
}

function draw(v, frame) {
  if (video !== v) { frame.close(); return; }
  const canvas = $('rs-screen');
  if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
    canvas.width = frame.displayWidth;
    canvas.height = frame.displayHeight;
  }
  canvas.getContext('2d').drawImage(frame, 0, 0);
  frame.close();
  v.frames += 1;
  v.fpsFrames += 1;
  canvas.dataset.frames = String(v.frames);
  const now = performance.now();
  if (now - v.fpsSince >= 1000) {
    const fps = (v.fpsFrames * 1000) / (now - v.fpsSince);
    const kbps = (v.bytes * 8) / (now - v.fpsSince);
    $('rs-fps').textContent = `${v.codec} ${canvas.width}×${canvas.height} · ${fps.toFixed(1)} fps · ${kbps.toFixed(0)} kbit/s`;
    canvas.dataset.fps = fps.toFixed(1);
    canvas.dataset.codec = v.codec;
    v.fpsFrames = 0;
    v.bytes = 0;
    v.fpsSince = now;
  }
}

// ---- pointer ----

let lastPointer = 0;
let pointerTimer = null;
let pointerLatest = null;
function sendPointer() {
  pointerTimer = null;
  if (!pointerLatest || state !== 'open') return;
  lastPointer = performance.now();
  send(pointerLatest);
  pointerLatest = null;
}
/** At most ~30 updates a second; the last position inside a window is sent at its end. */
function pointerAt(ev, visible) {
  if (state !== 'open') return;
  const r = $('rs-screen').getBoundingClientRect();
  const clamp = (t) => Math.min(65535, Math.max(0, Math.round(t * 65535)));
  pointerLatest = { type: 'Pointer', x: clamp((ev.clientX - r.left) / r.width), y: clamp((ev.clientY - r.top) / r.height), visible };
  const wait = 33 - (performance.now() - lastPointer);
  if (!visible || wait <= 0) {
    clearTimeout(pointerTimer);
    sendPointer();
  } else if (!pointerTimer) {
    pointerTimer = setTimeout(sendPointer, wait);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('rs-issue').addEventListener('click', issue);
  $('rs-sas-ok').addEventListener('click', () => { sasMatches().catch((e) => end('Protocol', e.message)); });
  $('rs-sas-bad').addEventListener('click', sasDiffers);
  $('rs-end').addEventListener('click', () => {
    if (state === 'open') send({ type: 'Bye', reason: 'Normal' }).finally(() => end('Normal', '상담원이 종료 / ended by the agent'));
    else end('Normal', '상담원이 종료 / ended by the agent');
  });
  const canvas = $('rs-screen');
  canvas.addEventListener('mousemove', (ev) => pointerAt(ev, true));
  canvas.addEventListener('mouseleave', (ev) => pointerAt(ev, false));
  $('rs-chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('rs-chat-input').value.trim();
    if (!text || state !== 'open') return;
    chatId += 1n;
    send({ type: 'Chat', id: chatId, text }).then(() => { chatLine('me', text); log('채팅 전송 / chat sent'); }, (e) => log(e.message, true));
    $('rs-chat-input').value = '';
  });
});
