// haetae remote support, the agent console (/remote in the Control Center): issue a code at
// the relay, run the key agreement, compare the check number (SAS) with the customer on the
// phone ("matches" sends the first sealed frame; nothing else flows before it; "differs"
// aborts), then decode the customer's screen (WebCodecs VideoDecoder) onto a canvas, chat,
// point (normalised coordinates), draw over the customer's page, push a URL, ask for control
// and exchange files (direct grade), end. The event log beside the screen lists what happened.
//
// Central control: once the relay gives the session id, the console registers the session
// with the Center (POST /remote/session), which answers with the session policy it signed
// (grade, features, agent, session, expiry). The console forwards it right after the first
// sealed frame; the customer's page checks the signature and holds this console to it. The
// console also reports the session's history (chat, files, consent, control) to the Center.

import { AgentHandshake, allowedFrom, decodePeer, hex } from './proto.js';
import {
  END_TEXT, RelayLink, avcCodecFor, relayUrl, relayUrls,
} from './link.js';
import { Recorder } from './recording.js';

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
let policy = null; // the Center's answer to POST /remote/session
let historyQueue = Promise.resolve();
let recorder = null; // recording.js: the session's encrypted recording, when the Center asks for one
const FILE_CHUNK = 60 * 1024;
const SEND_HIGH_WATER = 1024 * 1024;
let nextFileId = 1;
const outgoing = new Map(); // id -> { name, size, sha256, data }
const incoming = new Map(); // id -> { name, size, sha256, parts, got }
const sentNames = new Map(); // id -> name, for the customer's scan verdicts

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? '';

async function postJson(url, body) {
  const r = await fetch(url, {
    method: 'POST', credentials: 'same-origin', cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf(), Accept: 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) throw new Error(data?.error?.message || data?.error || `HTTP ${r.status}`);
  return data;
}

/** One history record to the Center, in order; a failure is logged, never fatal. */
function history(kind, actor, detail) {
  const p = policy;
  if (!p) return;
  historyQueue = historyQueue.then(() => postJson(`/remote/session/${p.session}/history`, { kind, actor, detail }))
    .catch((e) => log(`기록 저장 실패 / history not saved: ${e.message}`, true));
}

function hexToBytes(h) {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

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
  if (policy) {
    history('end', 'agent', { reason, detail: detail ?? '' });
    const p = policy;
    historyQueue = historyQueue.then(() => postJson(`/remote/session/${p.session}/end`, { reason })).catch(() => {});
  }
  policy = null;
  if (recorder) { recorder.finish(reason); recorder = null; } // recording: the rest, marked last
  $('rs-tools').hidden = true;
  $('rs-agent').dataset.historyDone = '';
  historyQueue.then(() => { $('rs-agent').dataset.historyDone = 'yes'; });
  outgoing.clear();
  incoming.clear();
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
  if (!channel || !link || state !== 'open') return Promise.resolve();
  recorder?.app('agent', app);
  // Through the link: during a relay failover reliable messages wait and are sent after it.
  return link.sendApp(app).catch((e) => {
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
  $('rs-files').replaceChildren();
  delete $('rs-agent').dataset.endReason;
  delete $('rs-agent').dataset.session;
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
  link = new RelayLink([url, ...relayUrls().slice(1)], {
    role: 'agent',
    onResuming: () => { $('rs-agent').dataset.link = 'resuming'; log('중계 연결이 끊어져 다시 연결하는 중 / relay connection lost, resuming…', true); },
    onResumed: (u) => { $('rs-agent').dataset.link = 'resumed'; log(`세션 재개 / session resumed via ${u}`); },
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
      // The Center signs this session's policy (the link's queue holds later messages).
      try {
        policy = await postJson('/remote/session', { sid: hex(msg.sid) });
      } catch (e) {
        end('Protocol', `센터가 세션을 거절했습니다 / the Center refused the session: ${e.message}`);
        return;
      }
      $('rs-agent').dataset.session = String(policy.session);
      $('rs-grade').textContent = policy.grade;
      log(`세션 정책 서명됨 (${policy.grade}) / session policy signed`);
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
      history('consent', 'customer', { what: 'joined with the code after accepting the consent text' });
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
  recorder?.app('customer', app);
  switch (app.type) {
    case 'Chat': chatLine('peer', app.text); log('채팅 수신 / chat received'); history('chat', 'customer', { text: app.text }); break;
    case 'ScreenFrame': onScreenFrame(app); break;
    case 'ScreenChunk': onScreenChunk(app); break;
    case 'Bye': end(app.reason === 'Normal' ? 'Normal' : app.reason, '고객이 종료 / ended by the customer'); break;
    case 'Error': onCustomerError(app); break;
    case 'ControlGrant': log('고객이 제어를 허용 / control granted'); history('control', 'customer', { event: 'grant' }); break;
    case 'ControlRevoke': log('고객이 제어를 회수 / control revoked'); history('control', 'customer', { event: 'revoke' }); break;
    case 'FileAccept': sendFile(app.id); break;
    case 'FileRefuse': onFileRefuse(app.id); break;
    case 'FileOffer': onFileOffer(app); break;
    case 'FileChunk': onFileChunk(app); break;
    case 'FileDone': onFileDone(app.id); break;
    default: break;
  }
}

async function sasMatches() {
  if (state !== 'sas' || !pending) return;
  const [ch, first] = await pending.confirmSas();
  pending = null;
  channel = ch;
  link.sendPeer(first);
  link.attach(ch);
  $('rs-sas-box').hidden = true;
  $('rs-chat-input').disabled = false;
  setState('open', '연결됨 / connected');
  log('확인 번호 일치 확인, 세션 시작 / check number confirmed, session open');
  video = newVideo();
  history('sas', 'agent', { event: 'check number confirmed' });
  if (policy) {
    await send({ type: 'Policy', payload: policy.payload, signature: hexToBytes(policy.signature) });
    history('policy', 'agent', { grade: policy.grade });
    const direct = policy.grade === 'direct';
    $('rs-tools').hidden = false;
    for (const id of ['rs-control', 'rs-file-label']) $(id).hidden = !direct;
    if (policy.recording) startRecording(policy);
  }
}

/** recording.js: records the session encrypted to the organisation's key; it starts at a key frame. */
function startRecording(p) {
  Recorder.start({
    session: p.session, agent: $('rs-agent').dataset.agent, key: p.recording, csrf, post: postJson,
    onStatus: log, statusEl: $('rs-agent'),
  }).then((r) => {
    if (policy !== p) { r.finish('Normal'); return; }
    recorder = r;
    log(`세션 녹화 중 (키 ${p.recording.key_id}) / recording the session`);
    send({ type: 'KeyFrameRequest' });
  }, (e) => log(`녹화를 시작하지 못했습니다 / recording not started: ${e.message}`, true));
}

// ---- indirect control: drawing and URLs ----

let drawing = null;
function canvasPoint(ev) {
  const r = $('rs-screen').getBoundingClientRect();
  const clamp = (t) => Math.min(65535, Math.max(0, Math.round(t * 65535)));
  return [clamp((ev.clientX - r.left) / r.width), clamp((ev.clientY - r.top) / r.height)];
}
function drawStart(ev) {
  if (state !== 'open' || !$('rs-draw').checked) return;
  ev.preventDefault();
  drawing = [canvasPoint(ev)];
}
function drawMove(ev) {
  if (!drawing) return;
  const p = canvasPoint(ev);
  const last = drawing[drawing.length - 1];
  if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) > 64) drawing.push(p);
}
function drawEnd(ev) {
  if (!drawing) return;
  drawMove(ev);
  let points = drawing;
  drawing = null;
  if (points.length < 2) points = [points[0], points[0]];
  while (points.length > 1024) points = points.filter((_, i) => i % 2 === 0 || i === points.length - 1);
  send({ type: 'Drawing', shape: { kind: 'Path', points }, color: 0xff9800ff, width: 4 });
  log('그리기 전송 / drawing sent');
  history('drawing', 'agent', { points: points.length });
}

function pushUrl(ev) {
  ev.preventDefault();
  const text = $('rs-url').value.trim();
  let url;
  try { url = new URL(text); } catch { log('URL이 올바르지 않습니다 / not a URL', true); return; }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') { log('http/https 주소만 보낼 수 있습니다 / only http and https', true); return; }
  if (/[\s\u0000-\u001f\u007f]/.test(text) || text.length > 2048) { log('URL이 올바르지 않습니다 / not a URL', true); return; }
  send({ type: 'UrlPush', url: text }).then(() => {
    log(`URL 전송 / URL sent: ${text}`);
    history('url', 'agent', { url: text });
    $('rs-url').value = '';
  }, (e) => log(e.message, true));
}

// ---- files (direct grade; every transfer needs the customer's consent on its page) ----

function fileRow(id, dir, name) {
  let li = document.getElementById(`rs-file-${dir}-${id}`);
  if (!li) {
    li = document.createElement('li');
    li.id = `rs-file-${dir}-${id}`;
    $('rs-files').append(li);
  }
  li.textContent = `${dir === 'out' ? '→' : '←'} ${name}: `;
  return li;
}

async function sha256(data) { return new Uint8Array(await crypto.subtle.digest('SHA-256', data)); }

async function offerFile(file) {
  if (state !== 'open' || !policy || policy.grade !== 'direct') return;
  if (file.size > policy.max_file) { log(`파일이 너무 큽니다 / file larger than ${policy.max_file} bytes`, true); return; }
  const data = new Uint8Array(await file.arrayBuffer());
  const id = nextFileId++;
  const digest = await sha256(data);
  const name = file.name.replace(/[/\\:\u0000-\u001f\u007f]/g, '_').slice(0, 255) || 'file';
  outgoing.set(id, { name, size: data.length, sha256: hex(digest), data, offeredAt: new Date().toISOString() });
  await send({ type: 'FileOffer', id, name, size: BigInt(data.length), sha256: digest });
  const li = fileRow(id, 'out', name);
  li.append('고객 동의 대기 / waiting for the customer');
  li.dataset.state = 'offered';
  log(`파일 제안 / file offered: ${name} (${data.length} B)`);
}

async function sendFile(id) {
  const f = outgoing.get(id);
  if (!f || f.sending) return;
  f.sending = true;
  const li = fileRow(id, 'out', f.name);
  li.append('보내는 중 / sending');
  li.dataset.state = 'sending';
  const acceptedAt = new Date().toISOString();
  for (let off = 0; off < f.data.length; off += FILE_CHUNK) {
    while (link && (link.bufferedAmount > SEND_HIGH_WATER || link.backlogged)) await new Promise((r) => setTimeout(r, 20));
    if (state !== 'open') return;
    await send({ type: 'FileChunk', id, offset: BigInt(off), data: f.data.subarray(off, off + FILE_CHUNK) });
  }
  await send({ type: 'FileDone', id });
  outgoing.delete(id);
  sentNames.set(id, f.name);
  const done = fileRow(id, 'out', f.name);
  done.append('보냄 / sent');
  done.dataset.state = 'sent';
  log(`파일 전송 완료 / file sent: ${f.name}`);
  history('file', 'agent', { direction: 'agent-to-customer', name: f.name, size: f.size, sha256: f.sha256, consent: 'accepted', offered_at: f.offeredAt, decided_at: acceptedAt, scan: 'by the customer' });
}

function onFileRefuse(id) {
  const f = outgoing.get(id);
  if (f) {
    outgoing.delete(id);
    const li = fileRow(id, 'out', f.name);
    li.append('고객이 거절 / refused by the customer');
    li.dataset.state = 'refused';
    log(`파일 거절됨 / file refused: ${f.name}`);
    history('file', 'agent', { direction: 'agent-to-customer', name: f.name, size: f.size, sha256: f.sha256, consent: 'refused', offered_at: f.offeredAt, decided_at: new Date().toISOString() });
  }
  incoming.delete(id);
}

function onCustomerError(app) {
  // 460: the customer's scan refused a file this console sent.
  const m = /^file (\d+): (\w+)/.exec(app.message);
  if (app.code === 460 && m) {
    log(`고객 측 검사에서 파일 거부 / the customer's scan refused file ${m[1]}: ${app.message}`, true);
    const name = sentNames.get(Number(m[1])) ?? '';
    const row = fileRow(Number(m[1]), 'out', name);
    row.append(`고객 측 검사에서 거부 / refused by the customer's scan (${m[2]})`);
    row.dataset.state = 'refused-scan';
    history('file', 'customer', { direction: 'agent-to-customer', name, scan: m[2], detail: app.message });
    return;
  }
  log(`고객 측 오류 / customer error ${app.code}: ${app.message}`, true);
}

function onFileOffer(o) {
  if (!policy || policy.grade !== 'direct' || Number(o.size) > policy.max_file || incoming.has(o.id) || incoming.size >= 8) {
    send({ type: 'FileRefuse', id: o.id });
    return;
  }
  // The customer chose this file on its own page: that is its consent. The console accepts.
  incoming.set(o.id, { name: o.name, size: Number(o.size), sha256: hex(o.sha256), parts: [], got: 0, at: new Date().toISOString() });
  fileRow(o.id, 'in', o.name).append('받는 중 / receiving');
  send({ type: 'FileAccept', id: o.id });
  log(`고객이 파일을 보냄 / the customer sends ${o.name} (${o.size} B)`);
}

function onFileChunk(c) {
  const f = incoming.get(c.id);
  if (!f) return;
  if (Number(c.offset) !== f.got || f.got + c.data.length > f.size) { incoming.delete(c.id); send({ type: 'FileRefuse', id: c.id }); return; }
  f.parts.push(c.data);
  f.got += c.data.length;
}

async function onFileDone(id) {
  const f = incoming.get(id);
  if (!f) return;
  incoming.delete(id);
  const data = new Uint8Array(f.got);
  let at = 0;
  for (const p of f.parts) { data.set(p, at); at += p.length; }
  const li = fileRow(id, 'in', f.name);
  const record = { direction: 'customer-to-agent', name: f.name, size: f.size, sha256: f.sha256, consent: 'sent by the customer', offered_at: f.at };
  if (f.got !== f.size || hex(await sha256(data)) !== f.sha256) {
    li.append('무결성 오류, 버림 / integrity check failed, discarded');
    li.dataset.state = 'corrupt';
    history('file', 'customer', { ...record, scan: 'not scanned: SHA-256 mismatch' });
    return;
  }
  li.append('검사 중 / scanning');
  let report;
  try {
    const r = await fetch(`/remote/scan?name=${encodeURIComponent(f.name)}`, {
      method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf(), 'Content-Type': 'application/octet-stream' }, body: data,
    });
    report = await r.json();
    if (!r.ok) throw new Error(report?.error?.message || `HTTP ${r.status}`);
  } catch (e) {
    fileRow(id, 'in', f.name).append(`검사 실패, 버림 / scan failed, discarded: ${e.message}`);
    history('file', 'customer', { ...record, scan: 'failed' });
    return;
  }
  const row = fileRow(id, 'in', f.name);
  row.dataset.verdict = report.verdict;
  history('file', 'customer', { ...record, scan: report.verdict, findings: report.findings.map((x) => x.code) });
  if (report.verdict === 'vulnerable') {
    row.append(`위험한 파일이라 거부 / refused: ${report.findings.map((x) => `${x.code} ${x.message}`).join('; ')}`);
    row.dataset.state = 'refused';
    return;
  }
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([data]));
  a.download = f.name;
  a.textContent = `${report.verdict} — 저장 / save`;
  a.dataset.sha256 = f.sha256;
  row.append(a);
  row.dataset.state = 'received';
  log(`파일 수신 / file received: ${f.name} (${report.verdict})`);
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
  recorder?.frame(cur.head, data);
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
  canvas.addEventListener('mousemove', (ev) => { if (drawing) drawMove(ev); else if (!$('rs-draw').checked) pointerAt(ev, true); });
  canvas.addEventListener('mouseleave', (ev) => { drawEnd(ev); pointerAt(ev, false); });
  canvas.addEventListener('mousedown', drawStart);
  canvas.addEventListener('mouseup', drawEnd);
  $('rs-clear').addEventListener('click', () => {
    send({ type: 'DrawingClear' }).then(() => { log('그림 지움 / drawings cleared'); history('drawing', 'agent', { event: 'clear' }); });
  });
  $('rs-url-form').addEventListener('submit', pushUrl);
  $('rs-control').addEventListener('click', () => {
    send({ type: 'ControlRequest' }).then(() => { log('제어 요청 / control requested'); history('control', 'agent', { event: 'request' }); });
  });
  $('rs-file').addEventListener('change', () => {
    const file = $('rs-file').files[0];
    $('rs-file').value = '';
    if (file) offerFile(file).catch((e) => log(e.message, true));
  });
  $('rs-chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('rs-chat-input').value.trim();
    if (!text || state !== 'open') return;
    chatId += 1n;
    send({ type: 'Chat', id: chatId, text }).then(() => { chatLine('me', text); log('채팅 전송 / chat sent'); history('chat', 'agent', { text }); }, (e) => log(e.message, true));
    $('rs-chat-input').value = '';
  });
});
