// haetae e2e-fields client module, served by the gateway at /haetae/e2e.js.
//
// Written for haetae; no third-party code. Loaded as <script type="module"
// src="/haetae/e2e.js">, it needs no inline script (strict CSP: script-src 'self').
//
// - Forms marked `data-haetae-e2e` have their protected fields encrypted on submit: inputs
//   marked `data-haetae-e2e` (typed with the keyboard) and keypad fields (below). Each value
//   becomes `hte1.<kid>.A256GCM.<nonce>.<epk>.<iv>.<ct>`, which only the gateway can open.
// - Inputs marked `data-haetae-keypad` (normally `type="hidden"`) get a virtual keypad: the
//   key labels are drawn on a canvas in a random order chosen for each display, the digits
//   pressed live only in this module's memory (never in the DOM, not even the hidden
//   input, which receives the ciphertext at submit), and the display shows masked dots.
//
// Cryptography (WebCrypto only, keys non-extractable): per page, an ephemeral ECDH key
// (P-256, or X25519 when the gateway's key is X25519) agrees a secret with the gateway's
// public key; HKDF-SHA-256 (salt: the page's server nonce) derives an AES-256-GCM key.
// Browsers' WebCrypto has no ARIA or SEED; a JavaScript ARIA would not be constant-time
// and would hold the key in script memory, so the browser cipher is AES-256-GCM (app
// clients may use ARIA-256-GCM through the same protocol).

const SESSION_PATH = '/haetae/e2e/session';
const CIPHER_TAG = 'A256GCM';
const utf8 = new TextEncoder();

/** Base64url without padding. */
export function b64u(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Decodes base64url without padding. */
export function unb64u(text) {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i += 1) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * Opens a page session with the gateway: its public key and a single-use nonce. Returns
 * `{ kid, exp, used, seal(name, value) }`; `seal` encrypts one field value.
 */
export async function openSession() {
  const r = await fetch(SESSION_PATH, { credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) throw new Error(`e2e session: HTTP ${r.status}`);
  const s = await r.json();
  if (s.v !== 1 || typeof s.kid !== 'string' || typeof s.nonce !== 'string') {
    throw new Error('e2e session: unexpected answer');
  }
  const alg = s.crv === 'X25519' ? { name: 'X25519' } : { name: 'ECDH', namedCurve: 'P-256' };
  const server = await crypto.subtle.importKey('raw', unb64u(s.pub), alg, false, []);
  const pair = await crypto.subtle.generateKey(alg, false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: alg.name, public: server }, pair.privateKey, 256);
  const ikm = await crypto.subtle.importKey('raw', bits, 'HKDF', false, ['deriveKey']);
  const key = await crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: unb64u(s.nonce), info: utf8.encode(`haetae-e2e/v1|${s.kid}|${CIPHER_TAG}`) },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt'],
  );
  const epk = b64u(new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)));
  const session = {
    kid: s.kid,
    exp: s.exp,
    used: false,
    async seal(name, value) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = new Uint8Array(await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: utf8.encode(`haetae-e2e/v1|${name}`) },
        key,
        utf8.encode(value),
      ));
      return `hte1.${s.kid}.${CIPHER_TAG}.${s.nonce}.${epk}.${b64u(iv)}.${b64u(ct)}`;
    },
  };
  return session;
}

let pageSession = null;

/** The page's session, opened again when used (the nonce is single-use) or expiring. */
async function currentSession() {
  const now = Date.now() / 1000;
  if (pageSession) {
    const s = await pageSession.catch(() => null);
    if (s && !s.used && s.exp - 5 > now) return s;
  }
  pageSession = openSession();
  return pageSession;
}

/**
 * Encrypts several fields at once for a script that submits by itself (fetch): `{ name:
 * value }` in, `{ name: token }` out. One page nonce per call.
 */
export async function sealFields(values) {
  const s = await currentSession();
  s.used = true;
  const out = {};
  for (const [name, value] of Object.entries(values)) out[name] = await s.seal(name, value);
  return out;
}

// ---- the virtual keypad ---------------------------------------------------------------

const COLS = 3;
const ROWS = 4;
const CELL = 64;
export const KEYPAD_FONT = 'bold 26px sans-serif';
const BACK = '\u232b';
const CLEAR = '\u00d7';

/** Draws one key label centred in its cell (exported so a test can render references). */
export function drawKey(ctx, label, x, y) {
  ctx.fillStyle = '#f4f6f8';
  ctx.fillRect(x + 2, y + 2, CELL - 4, CELL - 4);
  ctx.fillStyle = '#1b2a3a';
  ctx.font = KEYPAD_FONT;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(label, x + CELL / 2, y + CELL / 2);
}

/** The keypad's geometry, for tests: columns, rows, cell size in canvas pixels. */
export const KEYPAD_GEOMETRY = Object.freeze({ cols: COLS, rows: ROWS, cell: CELL });

function shuffled(items) {
  const a = items.slice();
  const r = new Uint32Array(a.length);
  crypto.getRandomValues(r);
  for (let i = a.length - 1; i > 0; i -= 1) {
    const j = r[i] % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const keypadValues = new WeakMap();

/** Attaches a keypad to `input`; the digits pressed are readable only by this module. */
export function attachKeypad(input) {
  const max = Math.min(Number(input.dataset.haetaeLength) || 6, 64);
  const digits = [];
  let layout = [];
  const box = document.createElement('div');
  box.className = 'haetae-keypad';
  const dots = document.createElement('div');
  dots.className = 'haetae-keypad-dots';
  dots.setAttribute('role', 'status');
  dots.setAttribute('aria-live', 'polite');
  const canvas = document.createElement('canvas');
  canvas.width = COLS * CELL;
  canvas.height = ROWS * CELL;
  canvas.className = 'haetae-keypad-keys';
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', input.dataset.haetaeLabel || 'secure keypad');
  box.style.display = 'inline-block';
  box.style.userSelect = 'none';
  dots.style.font = '20px monospace';
  dots.style.minHeight = '1.5em';
  dots.style.letterSpacing = '0.3em';
  canvas.style.cursor = 'pointer';
  canvas.style.touchAction = 'manipulation';
  box.append(dots, canvas);
  input.after(box);

  const render = () => {
    dots.textContent = '\u25cf'.repeat(digits.length) + '\u25cb'.repeat(Math.max(0, max - digits.length));
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    layout.forEach((label, i) => drawKey(ctx, label, (i % COLS) * CELL, Math.floor(i / COLS) * CELL));
  };
  const reshuffle = () => {
    layout = shuffled(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', BACK, CLEAR]);
    render();
  };
  canvas.addEventListener('click', (ev) => {
    const rect = canvas.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) * canvas.width) / rect.width;
    const y = ((ev.clientY - rect.top) * canvas.height) / rect.height;
    const col = Math.floor(x / CELL);
    const row = Math.floor(y / CELL);
    if (col < 0 || col >= COLS || row < 0 || row >= ROWS) return;
    const label = layout[row * COLS + col];
    if (label === BACK) digits.pop();
    else if (label === CLEAR) { digits.length = 0; reshuffle(); return; }
    else if (digits.length < max) digits.push(label);
    render();
    input.dispatchEvent(new CustomEvent('haetae-keypad', { detail: { length: digits.length } }));
  });
  reshuffle();
  const handle = {
    get length() { return digits.length; },
    value: () => digits.join(''),
    clear: () => { digits.length = 0; reshuffle(); },
  };
  keypadValues.set(input, handle);
  return handle;
}

// ---- forms ------------------------------------------------------------------------------

async function sealForm(form) {
  const s = await currentSession();
  s.used = true;
  for (const input of form.querySelectorAll('[data-haetae-keypad]')) {
    const pad = keypadValues.get(input);
    if (!pad || !input.name) continue;
    input.value = await s.seal(input.name, pad.value());
    pad.clear();
  }
  for (const input of form.querySelectorAll('input[data-haetae-e2e]')) {
    if (!input.name) continue;
    const hidden = document.createElement('input');
    hidden.type = 'hidden';
    hidden.name = input.name;
    hidden.value = await s.seal(input.name, input.value);
    // The typed value leaves the DOM before the form is sent.
    input.removeAttribute('name');
    input.value = '';
    input.after(hidden);
  }
}

function protectForm(form) {
  let busy = false;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (busy) return;
    busy = true;
    sealForm(form)
      .then(() => HTMLFormElement.prototype.submit.call(form))
      .catch((err) => {
        busy = false;
        form.dispatchEvent(new CustomEvent('haetae-e2e-error', { detail: String(err) }));
      });
  });
}

function init() {
  for (const input of document.querySelectorAll('input[data-haetae-keypad]')) attachKeypad(input);
  const forms = document.querySelectorAll('form[data-haetae-e2e]');
  for (const form of forms) protectForm(form);
  if (forms.length > 0) currentSession().catch(() => {});
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
}
