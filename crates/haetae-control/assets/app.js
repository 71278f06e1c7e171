// haetae Control Center: the UI's only script (an ES module, no third-party code).
// Every change goes through the JSON API with the session's CSRF token; pages then reload.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

function flash(text, isError) {
  const el = document.getElementById('flash');
  if (!el) return;
  el.textContent = text;
  el.className = isError ? 'flash error' : 'flash';
  el.hidden = false;
}

async function api(method, url, body) {
  const headers = { 'X-CSRF-Token': csrf, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(url, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    const e = data && data.error;
    const where = e && e.field ? ` [${e.field}]` : '';
    throw new Error(e ? `${e.message}${where}` : `HTTP ${resp.status}`);
  }
  return data;
}

// Turns a form into the JSON body its API expects.
const shapes = {
  plain: (f) => Object.fromEntries(new FormData(f)),
  service: (f) => {
    const d = Object.fromEntries(new FormData(f));
    const s = { id: d.id, name: d.name || '', upstream: d.upstream };
    if (d.path_prefix) s.match = [{ path_prefix: d.path_prefix }];
    return s;
  },
  filter: (f) => {
    const d = Object.fromEntries(new FormData(f));
    let config;
    try { config = JSON.parse(d.config || '{}'); } catch (e) { throw new Error(`config: ${e.message}`); }
    return { id: d.id, kind: d.kind, mode: d.mode, failure: d.failure, budget_ms: Number(d.budget_ms || 50), config };
  },
  list: (f) => {
    const d = Object.fromEntries(new FormData(f));
    const entries = (d.entries || '').split('\n').map((s) => s.trim()).filter(Boolean);
    return { kind: d.kind, entries, description: d.description || '' };
  },
  requirements: (f) => ({ controls: new FormData(f).getAll('controls') }),
  publish: (f) => ({ comment: new FormData(f).get('comment') || '' }),
  alertRule: (f) => {
    const d = Object.fromEntries(new FormData(f));
    const condition = { type: d.type };
    if (d.type === 'threshold') { condition.count = Number(d.count); condition.minutes = Number(d.minutes); }
    if (d.type === 'gateway-silent') condition.minutes = Number(d.minutes);
    const filter = {};
    for (const k of ['action', 'outcome', 'service']) if (d[k]) filter[k] = d[k];
    const notify = (d.notify || '').split(',').map((s) => s.trim()).filter(Boolean);
    return { id: d.id, name: d.name || '', severity: d.severity, condition, filter, group_by: d.group_by, quiet_minutes: Number(d.quiet_minutes || 0), notify };
  },
  notifier: (f) => {
    const d = Object.fromEntries(new FormData(f));
    const n = { id: d.id, kind: d.kind, forward_events: d.forward_events === 'true' };
    if (d.kind === 'syslog') { n.address = d.address; n.transport = d.transport; n.format = d.format; } else { n.url = d.url; }
    if (d.secret) n.secret = d.secret;
    if (n.forward_events) n.min_severity = d.min_severity;
    return n;
  },
};

function fillUrl(template, form) {
  const data = new FormData(form);
  return template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(data.get(k) ?? ''));
}

for (const form of document.querySelectorAll('form[data-api]')) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const body = shapes[form.dataset.shape || 'plain'](form);
      const result = await api(form.dataset.method || 'POST', fillUrl(form.dataset.api, form), body);
      if (form.dataset.show && result && result[form.dataset.show]) {
        flash(result[form.dataset.show], false);
        return;
      }
      location.reload();
    } catch (e) {
      flash(e.message, true);
    }
  });
}

for (const button of document.querySelectorAll('button[data-call]')) {
  button.addEventListener('click', async () => {
    try {
      await api(button.dataset.call, button.dataset.url, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
      location.reload();
    } catch (e) {
      flash(e.message, true);
    }
  });
}

// Wasm modules: the file goes to the API as the raw request body (application/wasm).
for (const form of document.querySelectorAll('form[data-wasm-upload]')) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    const file = d.get('file');
    const name = String(d.get('name') || '');
    if (!(file instanceof File) || !name) return;
    const headers = { 'X-CSRF-Token': csrf, Accept: 'application/json', 'Content-Type': 'application/wasm' };
    const sig = String(d.get('signature') || '').trim();
    if (sig) headers['X-Module-Signature'] = sig;
    const desc = String(d.get('description') || '');
    const url = `/api/v1/wasm-modules/${encodeURIComponent(name)}` + (desc ? `?description=${encodeURIComponent(desc)}` : '');
    try {
      const resp = await fetch(url, { method: 'POST', headers, credentials: 'same-origin', body: await file.arrayBuffer() });
      const data = await resp.json().catch(() => null);
      if (!resp.ok) {
        const e = data && data.error;
        throw new Error(e ? e.message : `HTTP ${resp.status}`);
      }
      location.reload();
    } catch (e) {
      flash(e.message, true);
    }
  });
}

// Mapping matrix: a click toggles the cell in the draft.
for (const cell of document.querySelectorAll('button.cell')) {
  cell.addEventListener('click', async () => {
    const { service, filter, mapped } = cell.dataset;
    try {
      await api('PUT', `/api/v1/matrix/${encodeURIComponent(service)}/${encodeURIComponent(filter)}`, { mapped: mapped !== 'true' });
      location.reload();
    } catch (e) {
      flash(e.message, true);
    }
  });
}

// Mapping matrix: the mode of one mapped cell (inherit = the filter instance's own mode).
for (const select of document.querySelectorAll('select.cell-mode')) {
  select.addEventListener('change', async () => {
    const { service, filter } = select.dataset;
    try {
      await api('PUT', `/api/v1/matrix/${encodeURIComponent(service)}/${encodeURIComponent(filter)}`, { mapped: true, mode: select.value });
      location.reload();
    } catch (e) {
      flash(e.message, true);
    }
  });
}

// Account: TOTP enrolment. The secret is shown once; the recovery codes after confirming.
const totpStart = document.getElementById('totp-start');
if (totpStart) {
  totpStart.addEventListener('click', async () => {
    try {
      const e = await api('POST', '/api/v1/account/totp');
      document.getElementById('totp-secret').textContent = e.secret;
      document.getElementById('totp-uri').textContent = e.otpauth_uri;
      // The server draws the QR code; a data: image is allowed by the CSP (img-src) and an
      // SVG shown through <img> cannot run script.
      document.getElementById('totp-qr').src =
        `data:image/svg+xml;charset=utf-8,${encodeURIComponent(e.qr_svg)}`;
      document.getElementById('totp-enrol').hidden = false;
      totpStart.hidden = true;
    } catch (e) {
      flash(e.message, true);
    }
  });
  document.getElementById('totp-confirm').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const code = new FormData(ev.target).get('code');
      const r = await api('POST', '/api/v1/account/totp/confirm', { code });
      document.getElementById('totp-codes').textContent = r.recovery_codes.join('\n');
      document.getElementById('totp-recovery').hidden = false;
      document.getElementById('totp-enrol').hidden = true;
      const st = document.getElementById('totp-state');
      st.textContent = '✓';
      st.className = 'ok';
    } catch (e) {
      flash(e.message, true);
    }
  });
}

// Security-check requirements: the boxes show the chosen service's current controls.
const reqForm = document.getElementById('requirements');
if (reqForm) {
  const select = reqForm.querySelector('select[name=service]');
  const sync = () => {
    const required = (select.selectedOptions[0]?.dataset.required ?? '').split(' ');
    for (const box of reqForm.querySelectorAll('input[name=controls]')) box.checked = required.includes(box.value);
  };
  select.addEventListener('change', sync);
  sync();
}

// Policy diff.
const diffForm = document.getElementById('diff-form');
if (diffForm) {
  diffForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const d = new FormData(diffForm);
    const out = document.getElementById('diff-result');
    try {
      const changes = await api('GET', `/api/v1/policy/diff?from=${encodeURIComponent(d.get('from'))}&to=${encodeURIComponent(d.get('to'))}`);
      out.replaceChildren();
      const ul = document.createElement('ul');
      ul.className = 'changes';
      for (const c of changes) {
        const li = document.createElement('li');
        li.className = `change-${c.op}`;
        li.textContent = `${c.op} ${c.kind} ${c.id}`;
        ul.append(li);
      }
      out.append(changes.length ? ul : document.createTextNode('—'));
    } catch (e) {
      flash(e.message, true);
    }
  });
}

// Audit verification.
const verify = document.getElementById('verify-audit');
if (verify) {
  verify.addEventListener('click', async () => {
    const out = document.getElementById('verify-result');
    try {
      const v = await api('GET', '/api/v1/audit/verify');
      out.textContent = v.intact ? `OK: ${v.rows}` : `TAMPERED at #${v.first_bad_seq}: ${v.problem}`;
      out.className = v.intact ? 'ok' : 'bad';
    } catch (e) {
      flash(e.message, true);
    }
  });
}

// Dashboard: the SVG chart, refreshed figures, and live events over Server-Sent Events.
const SVG = 'http://www.w3.org/2000/svg';

function drawChart(perMinute) {
  const svg = document.getElementById('chart');
  if (!svg) return;
  svg.replaceChildren();
  const nowMin = Math.floor(Date.now() / 60000);
  const byMinute = new Map(perMinute.map((m) => [Math.floor(m.minute / 60e6), m]));
  const bars = [];
  for (let i = 59; i >= 0; i--) bars.push(byMinute.get(nowMin - i) ?? { total: 0, failures: 0 });
  const max = Math.max(1, ...bars.map((b) => b.total));
  const h = 120;
  const w = 1200 / 60;
  const axis = document.createElementNS(SVG, 'line');
  Object.entries({ x1: 0, y1: h, x2: 1200, y2: h, class: 'axis' }).forEach(([k, v]) => axis.setAttribute(k, v));
  svg.append(axis);
  bars.forEach((b, i) => {
    for (const [cls, value] of [['total', b.total], ['failures', b.failures]]) {
      if (!value) continue;
      const r = document.createElementNS(SVG, 'rect');
      const bh = (value / max) * h;
      Object.entries({ x: i * w + 1, y: h - bh, width: w - 2, height: bh, class: cls }).forEach(([k, v]) => r.setAttribute(k, v));
      const title = document.createElementNS(SVG, 'title');
      title.textContent = `${cls}: ${value}`;
      r.append(title);
      svg.append(r);
    }
  });
  for (const [x, label] of [[0, '-60m'], [600, '-30m'], [1170, 'now']]) {
    const t = document.createElementNS(SVG, 'text');
    t.setAttribute('x', x);
    t.setAttribute('y', 135);
    t.textContent = label;
    svg.append(t);
  }
}

async function refreshDashboard() {
  const d = await api('GET', '/api/v1/dashboard');
  drawChart(d.per_minute);
  const set = (id, v) => { const el = document.getElementById(id); if (el) el.textContent = v; };
  set('fig-events', d.events_24h);
  set('fig-blocked', d.blocked_24h);
  set('fig-gateways', `${d.gateways.filter((g) => g.online).length}/${d.gateways.length}`);
  set('fig-version', d.policy_version ? `v${d.policy_version}` : '—');
  const problems = document.querySelector('#filter-problems tbody');
  if (problems) {
    problems.replaceChildren(...(d.filter_problems.length ? d.filter_problems : [null]).map((f) => {
      const tr = document.createElement('tr');
      if (!f) {
        const td = document.createElement('td');
        td.className = 'muted';
        td.colSpan = 3;
        td.textContent = problems.closest('table').dataset.none;
        tr.append(td);
        return tr;
      }
      tr.className = `filter-${f.state}`;
      for (const [v, cls] of [[f.gateway, ''], [f.filter, ''], [f.state, 'bad']]) {
        const td = document.createElement('td');
        td.textContent = v;
        if (cls) td.className = cls;
        tr.append(td);
      }
      return tr;
    }));
  }
  for (const [id, rows] of [['top-users', d.top_users], ['top-devices', d.top_devices], ['top-filters', d.top_filters], ['top-services', d.top_services]]) {
    const table = document.getElementById(id);
    if (!table) continue;
    table.replaceChildren(...(rows.length ? rows : [null]).map((r) => {
      const tr = document.createElement('tr');
      const name = document.createElement('td');
      name.textContent = r ? r.value : table.dataset.none;
      if (!r) name.className = 'muted';
      tr.append(name);
      if (r) {
        const count = document.createElement('td');
        count.className = 'num';
        count.textContent = r.count;
        tr.append(count);
      }
      return tr;
    }));
  }
}

function timeText(us) {
  return new Date(us / 1000).toISOString().replace('T', ' ').slice(0, 19);
}

if (document.querySelector('[data-live-dashboard]')) {
  refreshDashboard().catch((e) => flash(e.message, true));
  let pending = null;
  const source = new EventSource('/api/v1/stream');
  source.addEventListener('open', () => { document.body.dataset.live = 'open'; });
  source.addEventListener('error', () => { document.body.dataset.live = 'reconnecting'; });
  source.addEventListener('events', (msg) => {
    const tbody = document.querySelector('#latest-events tbody');
    for (const e of JSON.parse(msg.data)) {
      const tr = document.createElement('tr');
      tr.className = `${e.outcome} fresh`;
      tr.dataset.eventId = e.id;
      for (const v of [timeText(e.ts), e.action, e.outcome, e.service, e.user, e.device, e.filter]) {
        const td = document.createElement('td');
        td.textContent = v ?? '';
        tr.append(td);
      }
      tbody.prepend(tr);
    }
    while (tbody.rows.length > 50) tbody.deleteRow(tbody.rows.length - 1);
    clearTimeout(pending);
    pending = setTimeout(() => refreshDashboard().catch(() => {}), 500);
  });
  source.addEventListener('alerts', (msg) => {
    const tbody = document.querySelector('#latest-alerts tbody');
    if (!tbody) return;
    for (const a of JSON.parse(msg.data)) {
      const tr = document.createElement('tr');
      tr.className = `sev-${a.severity} fresh`;
      tr.dataset.alertId = a.id;
      for (const v of [timeText(a.ts), a.severity, a.rule_id, a.summary, '']) {
        const td = document.createElement('td');
        td.textContent = v ?? '';
        tr.append(td);
      }
      tbody.prepend(tr);
    }
    while (tbody.rows.length > 10) tbody.deleteRow(tbody.rows.length - 1);
  });
  setInterval(() => refreshDashboard().catch(() => {}), 30000);
}
