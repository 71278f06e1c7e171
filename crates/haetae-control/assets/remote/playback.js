// haetae remote support: the auditor's player (/remote/history/<session>/playback). The
// auditor loads the recording private key file here; it is imported into WebCrypto as a
// non-extractable key and never leaves this page. The page fetches the encrypted chunks from
// the Center, decrypts them in the browser, decodes the screen with WebCodecs VideoDecoder
// onto a canvas (play, pause, seek by chunk), draws the agent's pointer and drawings over it,
// and lists the session's events beside it.

import { importPrivateKey, openChunk, parseRecords, unwrapKey } from './recording.js';
import { avcCodecFor } from './link.js';

const $ = (id) => document.getElementById(id);
const root = () => $('rp');

const rec = { frames: [], events: [], chunkStart: [], duration: 0, complete: false };
let decoder = null;
let decoderConfig = '';
let pos = 0; // µs
let next = 0; // the next frame to decode
let playing = false;
let wallStart = 0;
let posStart = 0;
let eventsShown = 0;

function status(text, isError = false) {
  $('rp-status').textContent = text;
  $('rp-status').classList.toggle('error', isError);
}

function setState(s) { root().dataset.state = s; }

function timeText(us) {
  const s = Math.floor(us / 1e6);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

async function getJson(url) {
  const r = await fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(body?.error?.message ?? `HTTP ${r.status}`);
  return body;
}

async function load(file) {
  setState('loading');
  status('키 확인 중 / checking the key…');
  const id = root().dataset.recording;
  const meta = await getJson(`/api/v1/remote/recordings/${id}`);
  const priv = await importPrivateKey(await file.text());
  // The API names the sealed key `wrapped_key` (the recording's row); the wrap format calls it `wrapped`.
  const r0 = meta.recording;
  const key = await unwrapKey(priv, { alg: r0.alg, key_id: r0.key_id, ephemeral: r0.ephemeral, wrapped: r0.wrapped_key });
  Object.assign(rec, { frames: [], events: [], chunkStart: [], duration: 0, complete: false });
  let expected = 0;
  for (const c of meta.chunks) {
    if (c.index !== expected) break; // a gap: play what comes before it
    status(`복호화 중 / decrypting ${c.index + 1}/${meta.chunks.length}`);
    const r = await fetch(`/api/v1/remote/recordings/${id}/chunks/${c.index}`, { credentials: 'same-origin', cache: 'no-store' });
    if (!r.ok) throw new Error(`chunk ${c.index}: HTTP ${r.status}`);
    const plain = await openChunk(key, c.index, c.last, new Uint8Array(await r.arrayBuffer()));
    const records = parseRecords(c.index, plain);
    rec.chunkStart.push(records.length ? records[0].t : rec.duration);
    for (const x of records) {
      rec.duration = Math.max(rec.duration, x.t);
      if (x.kind === 'frame') rec.frames.push(x);
      else if (x.kind === 'event') rec.events.push(x);
      else if (x.kind === 'meta') rec.meta = x.json;
    }
    expected += 1;
    if (c.last) { rec.complete = true; break; }
  }
  if (rec.meta && String(rec.meta.session) !== root().dataset.session) {
    throw new Error(`the recording says it is of session ${rec.meta.session}, not ${root().dataset.session}`);
  }
  showEvents();
  const seek = $('rp-seek');
  seek.max = String(Math.max(0, rec.chunkStart.length - 1));
  seek.disabled = false;
  $('rp-play').disabled = false;
  root().dataset.frames = String(rec.frames.length);
  root().dataset.events = String(rec.events.length);
  status(`${rec.frames.length} 프레임, ${rec.events.length} 이벤트, ${timeText(rec.duration)}${rec.complete ? '' : ' — 불완전 / incomplete'}`
    + ` / ${rec.frames.length} frames, ${rec.events.length} events`, !rec.complete);
  setState('ready');
  seekTo(0);
}

function describe(e) {
  const j = e.json;
  const who = j.dir === 'agent' ? '상담원' : j.dir === 'customer' ? '고객' : j.dir;
  switch (j.type) {
    case 'Chat': return `${who}: ${j.text}`;
    case 'Pointer': return null;
    case 'Drawing': return `${who}: 그리기 / drawing`;
    case 'UrlPush': return `${who}: URL ${j.url}`;
    case 'FileOffer': return `${who}: 파일 / file ${j.name} (${j.size} B)`;
    default: return `${who}: ${j.type}${j.reason ? ` (${j.reason})` : ''}`;
  }
}

function showEvents() {
  const list = $('rp-events');
  list.replaceChildren();
  rec.events.forEach((e, i) => {
    const text = describe(e);
    if (text === null) return;
    const li = document.createElement('li');
    li.dataset.i = String(i);
    li.dataset.type = e.json.type;
    const t = document.createElement('time');
    t.textContent = timeText(e.t);
    li.append(t, ` ${text}`);
    li.addEventListener('click', () => { seekToTime(e.t); });
    list.append(li);
  });
}

function newDecoder(f) {
  if (decoder && decoder.state !== 'closed') decoder.close();
  decoder = new VideoDecoder({
    output: (frame) => {
      const c = $('rp-screen');
      if (c.width !== frame.displayWidth || c.height !== frame.displayHeight) {
        c.width = frame.displayWidth;
        c.height = frame.displayHeight;
        $('rp-overlay').width = c.width;
        $('rp-overlay').height = c.height;
      }
      c.getContext('2d').drawImage(frame, 0, 0);
      frame.close();
      c.dataset.frames = String(Number(c.dataset.frames ?? 0) + 1);
    },
    error: (e) => status(`디코더 오류 / decoder error: ${e.message}`, true),
  });
  decoder.configure({ codec: f.codec === 'H264' ? avcCodecFor(f.width, f.height) : 'vp8', codedWidth: f.width, codedHeight: f.height, optimizeForLatency: true });
  decoderConfig = `${f.codec}:${f.width}x${f.height}`;
}

function decodeFrame(f) {
  if (f.key && (`${f.codec}:${f.width}x${f.height}` !== decoderConfig || !decoder || decoder.state === 'closed')) newDecoder(f);
  if (!decoder || decoder.state !== 'configured') return;
  decoder.decode(new EncodedVideoChunk({ type: f.key ? 'key' : 'delta', timestamp: f.timestampUs, data: f.data }));
}

/** Decodes every frame up to the current position. */
function catchUp() {
  while (next < rec.frames.length && rec.frames[next].t <= pos) decodeFrame(rec.frames[next++]);
  drawOverlay();
  $('rp-time').textContent = `${timeText(pos)} / ${timeText(rec.duration)}`;
  let chunk = 0;
  while (chunk + 1 < rec.chunkStart.length && rec.chunkStart[chunk + 1] <= pos) chunk += 1;
  $('rp-seek').value = String(chunk);
  const shown = rec.events.filter((e) => e.t <= pos).length;
  if (shown !== eventsShown) {
    eventsShown = shown;
    for (const li of $('rp-events').children) li.classList.toggle('past', Number(li.dataset.i) < shown);
  }
}

function seekToTime(t) {
  pos = Math.max(0, Math.min(t, rec.duration));
  // Start decoding at the last key frame at or before the position.
  let k = -1;
  for (let i = 0; i < rec.frames.length && rec.frames[i].t <= pos; i++) if (rec.frames[i].key) k = i;
  if (k < 0) k = rec.frames.findIndex((f) => f.key);
  if (decoder && decoder.state !== 'closed') decoder.close();
  decoder = null;
  decoderConfig = '';
  next = k < 0 ? rec.frames.length : k;
  if (playing) { wallStart = performance.now(); posStart = pos; }
  catchUp();
}

function seekTo(chunk) { seekToTime(rec.chunkStart[chunk] ?? 0); }

function tick() {
  if (!playing) return;
  pos = posStart + (performance.now() - wallStart) * 1000;
  if (pos >= rec.duration) {
    pos = rec.duration;
    catchUp();
    pause();
    setState('ended');
    return;
  }
  catchUp();
  requestAnimationFrame(tick);
}

function play() {
  if (pos >= rec.duration) seekToTime(0);
  playing = true;
  wallStart = performance.now();
  posStart = pos;
  $('rp-play').textContent = '일시정지 / Pause';
  setState('playing');
  requestAnimationFrame(tick);
}

function pause() {
  playing = false;
  $('rp-play').textContent = '재생 / Play';
  if (root().dataset.state === 'playing') setState('paused');
}

/** The agent's pointer and drawings at the current position, over the video. */
function drawOverlay() {
  const c = $('rp-overlay');
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  let pointer = null;
  let shapes = [];
  for (const e of rec.events) {
    if (e.t > pos) break;
    const j = e.json;
    if (j.type === 'Pointer') pointer = j.visible ? j : null;
    else if (j.type === 'Drawing') shapes.push(j);
    else if (j.type === 'DrawingClear') shapes = [];
  }
  const px = (p) => [(p[0] / 65535) * c.width, (p[1] / 65535) * c.height];
  for (const s of shapes) {
    const pts = s.shape?.points ?? [s.shape?.a, s.shape?.b].filter(Boolean);
    if (pts.length < 2) continue;
    ctx.strokeStyle = `#${(s.color >>> 0).toString(16).padStart(8, '0')}`;
    ctx.lineWidth = Math.max(1, Math.min(32, Number(s.width) || 2));
    ctx.beginPath();
    ctx.moveTo(...px(pts[0]));
    for (const p of pts.slice(1)) ctx.lineTo(...px(p));
    ctx.stroke();
  }
  if (pointer) {
    const [x, y] = px([pointer.x, pointer.y]);
    ctx.fillStyle = 'rgba(229, 57, 53, 0.85)';
    ctx.beginPath();
    ctx.arc(x, y, 8, 0, 2 * Math.PI);
    ctx.fill();
  }
}

document.addEventListener('DOMContentLoaded', () => {
  if (!root()) return;
  if (typeof VideoDecoder === 'undefined') status('이 브라우저는 WebCodecs를 지원하지 않습니다 / this browser has no WebCodecs', true);
  $('rp-key').addEventListener('change', () => {
    const file = $('rp-key').files[0];
    $('rp-key').value = '';
    if (!file) return;
    pause();
    load(file).catch((e) => { setState('error'); status(e.message, true); });
  });
  $('rp-play').addEventListener('click', () => { if (playing) pause(); else play(); });
  $('rp-seek').addEventListener('input', () => seekTo(Number($('rp-seek').value)));
});
