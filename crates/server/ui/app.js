// The driftless web UI: plain DOM, no framework, no third-party code, served from the binary.
//
// Why it is written this way:
// - Text from repositories and the cluster (names, messages, diffs) is hostile: it only ever
//   reaches the page through textContent, never innerHTML, and the server's CSP forbids inline
//   and foreign scripts.
// - The token lives in sessionStorage and travels in the Authorization header; no cookie is ever
//   set, so another site cannot make the browser act on the user's behalf (no CSRF).
// - EventSource cannot send headers, so live updates read /api/v1/stream with fetch.
'use strict';

const TOKEN_KEY = 'driftless.token';
const state = {
  apps: new Map(),
  rows: new Map(),
  filters: { q: '', sync: '', health: '' },
  whoami: null,
  view: null,
  stream: null,
  reloadTimer: null,
  // Every load takes a ticket; a newer one (another load, navigation, sign-out) makes an older
  // load's answer stale, and it is dropped instead of painted over the newer view.
  ticket: 0,
  // The stream was live before: a reconnect reloads what is shown (events were missed).
  streamed: false,
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  const text = await response.text();
  let payload = null;
  if (text) {
    try { payload = JSON.parse(text); } catch { payload = text; }
  }
  if (response.status === 401) {
    signOut('The server refused the token: sign in again.');
    throw new ApiError(401, 'signed out');
  }
  if (!response.ok) {
    const message = payload && payload.error ? payload.error : `the server answered ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return payload;
}

// el('td', {class: 'x'}, 'text', child…): strings become text nodes, never markup.
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badgeClass(value) {
  switch (value) {
    case 'Synced': case 'Healthy': case 'succeeded': return 'ok';
    case 'OutOfSync': case 'Progressing': case 'Suspended': case 'running': return 'warn';
    case 'Degraded': case 'Missing': case 'failed': case 'interrupted': case 'Error': return 'bad';
    default: return 'unknown';
  }
}

function badge(value, kind) {
  return el('span', { class: `badge ${badgeClass(value)}`, 'data-badge': kind }, value);
}

function syncOf(status) {
  return (status && status.sync) || 'Unknown';
}

function healthOf(status) {
  return (status && status.health && status.health.state) || 'Unknown';
}

function messageOf(status) {
  if (!status) return '';
  return status.error || status.drift || status.self_heal_backoff || (status.health && status.health.message) || '';
}

function shortRevision(revision) {
  return revision ? revision.slice(0, 10) : '—';
}

function when(millis) {
  if (!millis) return el('span', { class: 'muted' }, 'never');
  const seconds = Math.max(0, Math.round((Date.now() - millis) / 1000));
  let text;
  if (seconds < 60) text = `${seconds} s ago`;
  else if (seconds < 3600) text = `${Math.round(seconds / 60)} min ago`;
  else if (seconds < 86400) text = `${Math.round(seconds / 3600)} h ago`;
  else text = new Date(millis).toISOString().slice(0, 10);
  return el('time', { datetime: new Date(millis).toISOString(), title: new Date(millis).toISOString() }, text);
}

function showBanner(message, kind) {
  const banner = document.getElementById('banner');
  banner.className = kind === 'info' ? 'banner info' : 'banner';
  banner.textContent = message;
  banner.hidden = !message;
}

function setConnection(text) {
  document.getElementById('connection').textContent = text;
}

function mount(...children) {
  const main = document.getElementById('main');
  main.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== false));
}

function canOperate() {
  return state.whoami && (state.whoami.role === 'operator' || state.whoami.role === 'admin');
}

// ---- signing in ---------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.ticket += 1;
  state.view = null;
  state.streamed = false;
  clearTimeout(state.reloadTimer);
  if (state.stream) state.stream.abort();
  state.stream = null;
  state.whoami = null;
  document.getElementById('sign-out').hidden = true;
  setConnection('');
  renderSignIn(message);
}

function renderSignIn(message) {
  const input = el('input', {
    id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'dlt_…', required: true,
  });
  const error = el('p', { id: 'sign-in-error', class: 'banner', role: 'alert', hidden: !message }, message || '');
  const form = el('form', { class: 'sign-in', onsubmit: async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      state.whoami = await api('GET', '/api/v1/whoami');
    } catch (err) {
      if (err.status !== 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        error.textContent = err.message;
        error.hidden = false;
      }
      return;
    }
    started();
  } },
  el('h1', {}, 'Sign in'),
  el('p', { class: 'muted' }, 'Paste an API token. Create one with: driftless token create NAME --role viewer|operator|admin'),
  el('label', { for: 'token' }, 'Token'),
  input,
  error,
  el('button', { type: 'submit', class: 'action primary' }, 'Sign in'));
  showBanner('');
  mount(form);
  input.focus();
}

function started() {
  document.getElementById('sign-out').hidden = false;
  if (!state.stream) listen();
  route();
}

// ---- live updates ---------------------------------------------------------------------------

async function listen() {
  const controller = new AbortController();
  state.stream = controller;
  setConnection('connecting…');
  try {
    const response = await fetch('/api/v1/stream', {
      headers: { Authorization: `Bearer ${token()}`, Accept: 'text/event-stream' },
      signal: controller.signal,
      cache: 'no-store',
      credentials: 'omit',
    });
    if (response.status === 401) {
      signOut('The server refused the token: sign in again.');
      return;
    }
    if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
    setConnection('live');
    if (state.streamed) route();
    state.streamed = true;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // A CR at the end of a chunk may be the first half of a CRLF.
      const carry = buffer.endsWith('\r') ? '\r' : '';
      buffer = buffer.slice(0, buffer.length - carry.length).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
      buffer += carry;
    }
  } catch (err) {
    if (controller.signal.aborted) return;
  }
  if (state.stream !== controller) return;
  setConnection('reconnecting…');
  setTimeout(() => { if (state.stream === controller) listen(); }, 2000);
}

function dispatch(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (event === 'lagged') {
    route();
    return;
  }
  if (event !== 'status' || data.length === 0) return;
  let update;
  try { update = JSON.parse(data.join('\n')); } catch { return; }
  state.apps.set(update.application, update.status);
  if (state.view && state.view.kind === 'overview') {
    updateRow(update.application, update.status);
    updateCounts();
  } else if (state.view && state.view.kind === 'application' && state.view.name === update.application) {
    scheduleReload();
  }
}

// Several updates in a row reload the page once; leaving the page cancels it.
function scheduleReload() {
  clearTimeout(state.reloadTimer);
  const name = state.view.name;
  state.reloadTimer = setTimeout(() => {
    if (state.view && state.view.kind === 'application' && state.view.name === name) loadApplication(name, false);
  }, 250);
}

// ---- overview -----------------------------------------------------------------------------

function matches(name, status) {
  const { q, sync, health } = state.filters;
  if (q && !name.toLowerCase().includes(q)) return false;
  if (sync && syncOf(status) !== sync) return false;
  if (health && healthOf(status) !== health) return false;
  return true;
}

function rowCells(name, status) {
  const message = messageOf(status);
  return [
    el('td', {}, el('a', { href: `#/app/${encodeURIComponent(name)}`, 'data-app': name }, name)),
    el('td', {}, badge(syncOf(status), 'sync')),
    el('td', {}, badge(healthOf(status), 'health'),
      status && status.suspended ? [' ', el('span', { class: 'badge flag' }, 'suspended')] : null,
      status && status.pinned ? [' ', el('span', { class: 'badge flag' }, 'pinned')] : null),
    el('td', { class: 'hide-narrow' }, el('code', {}, shortRevision(status && status.revision))),
    el('td', { class: 'hide-narrow' }, when(status && status.reconciled_at)),
    el('td', { class: 'message' }, message),
  ];
}

function updateRow(name, status) {
  const row = state.rows.get(name);
  // Not listed (yet): the overview loading now, or an application declared since, shown by the
  // next load. Reloading here would turn a burst of events into a burst of list requests.
  if (!row) return;
  row.replaceChildren(...rowCells(name, status));
  row.hidden = !matches(name, status);
}

function applyFilters() {
  for (const [name, row] of state.rows) row.hidden = !matches(name, state.apps.get(name));
  updateCounts();
}

function updateCounts() {
  const counts = document.getElementById('counts');
  const none = document.getElementById('no-match');
  if (!counts) return;
  let outOfSync = 0;
  let degraded = 0;
  let shown = 0;
  for (const [name, status] of state.apps) {
    if (syncOf(status) === 'OutOfSync') outOfSync += 1;
    if (healthOf(status) === 'Degraded') degraded += 1;
    if (matches(name, status)) shown += 1;
  }
  counts.textContent = `${state.apps.size} applications · ${outOfSync} out of sync · ${degraded} degraded · ${shown} shown`;
  if (none) none.hidden = shown !== 0 || state.apps.size === 0;
}

function filterSelect(id, label, key, options) {
  return el('select', {
    id, 'aria-label': label,
    onchange: (event) => { state.filters[key] = event.target.value; applyFilters(); },
  }, el('option', { value: '' }, label), options.map((option) => el('option', {
    value: option, selected: state.filters[key] === option,
  }, option)));
}

async function renderOverview() {
  state.view = { kind: 'overview' };
  const ticket = ++state.ticket;
  mount(el('p', { class: 'muted' }, 'Loading applications…'));
  let list;
  try {
    list = await api('GET', '/api/v1/applications');
  } catch (err) {
    if (err.status !== 401 && ticket === state.ticket) mount(el('div', { class: 'empty', id: 'load-error' }, `Could not load the applications: ${err.message}`));
    return;
  }
  if (ticket !== state.ticket) return;
  state.apps = new Map(Object.entries(list));
  state.rows = new Map();
  const search = el('input', {
    id: 'search', type: 'search', placeholder: 'Search applications', value: state.filters.q, 'aria-label': 'Search applications',
    oninput: (event) => { state.filters.q = event.target.value.trim().toLowerCase(); applyFilters(); },
  });
  const body = el('tbody');
  const fragment = document.createDocumentFragment();
  for (const [name, status] of state.apps) {
    const row = el('tr', { 'data-row': name }, rowCells(name, status));
    row.hidden = !matches(name, status);
    state.rows.set(name, row);
    fragment.append(row);
  }
  body.append(fragment);
  const empty = state.apps.size === 0
    ? el('div', { class: 'empty', id: 'no-apps' }, 'No applications yet. Declare one in driftless.yaml (see the README), or ask for a token that may see some.')
    : null;
  mount(
    el('h1', {}, 'Applications'),
    el('div', { class: 'toolbar' }, search,
      filterSelect('filter-sync', 'All sync states', 'sync', ['Synced', 'OutOfSync', 'Unknown']),
      filterSelect('filter-health', 'All health states', 'health', ['Healthy', 'Progressing', 'Suspended', 'Degraded', 'Missing', 'Unknown']),
      el('span', { id: 'counts', class: 'counts' })),
    empty || el('table', { id: 'applications' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', {}, 'Sync'), el('th', {}, 'Health'),
        el('th', { class: 'hide-narrow' }, 'Revision'), el('th', { class: 'hide-narrow' }, 'Reconciled'), el('th', {}, 'Message'))),
      body),
    el('div', { class: 'empty', id: 'no-match', hidden: true }, 'No application matches the search and filters.'),
  );
  updateCounts();
}

// ---- one application ------------------------------------------------------------------------

function objectName(object) {
  const kind = object.group ? `${object.kind}.${object.group}` : object.kind;
  return `${kind} ${object.name}`;
}

function objectSync(diff) {
  if (diff === 'Unchanged') return 'Synced';
  if (diff && diff.Missing) return 'Missing';
  return 'OutOfSync';
}

function objectKey(object) {
  return `${object.group}/${object.kind}/${object.namespace || ''}/${object.name}`;
}

// What the cluster made from `object` (ReplicaSets, Pods), indented below it, depth first.
function descendantRows(object, below, depth) {
  const rows = [];
  for (const child of below.get(objectKey(object)) || []) {
    // Through the CSSOM: the CSP refuses style attributes.
    const kind = el('td', {}, `↳ ${child.object.kind}`);
    kind.style.paddingLeft = `${1.6 + depth * 1.2}rem`;
    rows.push(el('tr', { class: 'child', 'data-child': objectName(child.object) },
      kind,
      el('td', {}, child.object.name),
      el('td', {}, ''),
      el('td', {}, badge(child.health.state, 'child-health')),
      el('td', { class: 'message' }, child.health.message)));
    rows.push(...descendantRows(child.object, below, depth + 1));
  }
  return rows;
}

function resourceTree(comparison, children) {
  const groups = new Map();
  const add = (namespace, row) => {
    const key = namespace || '';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  };
  const below = new Map();
  for (const child of children) {
    const key = objectKey(child.parent);
    if (!below.has(key)) below.set(key, []);
    below.get(key).push(child);
  }
  for (const entry of comparison.objects) {
    const sync = objectSync(entry.diff);
    add(entry.object.namespace, el('tr', { class: 'child', 'data-object': objectName(entry.object) },
      el('td', {}, entry.object.group ? `${entry.object.kind}.${entry.object.group}` : entry.object.kind),
      el('td', {}, entry.object.name),
      el('td', {}, el('span', { class: `badge ${badgeClass(sync === 'Missing' ? 'OutOfSync' : sync)}` }, sync)),
      el('td', {}, badge(entry.health.state, 'object-health')),
      el('td', { class: 'message' }, entry.health.message, entry.changed_by ? ` (changed by ${entry.changed_by})` : '')));
    for (const row of descendantRows(entry.object, below, 1)) add(entry.object.namespace, row);
  }
  for (const object of comparison.to_prune) {
    add(object.namespace, el('tr', { class: 'child' },
      el('td', {}, object.kind), el('td', {}, object.name),
      el('td', {}, el('span', { class: 'badge warn' }, 'Prune')), el('td', {}),
      el('td', { class: 'message' }, 'left Git; removed by a sync with prune')));
  }
  if (groups.size === 0) return el('div', { class: 'empty' }, 'This application declares no objects.');
  const body = el('tbody');
  const keys = [...groups.keys()].sort();
  for (const key of keys) {
    body.append(el('tr', { class: 'group' }, el('td', { colspan: 5 }, key ? `namespace ${key}` : 'cluster-scoped')));
    body.append(...groups.get(key));
  }
  return el('table', { id: 'resources' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Kind'), el('th', {}, 'Name'), el('th', {}, 'Sync'), el('th', {}, 'Health'), el('th', {}, 'Message'))),
    body);
}

function diffLines(text) {
  const pre = el('pre');
  for (const line of text.split('\n')) {
    let kind = null;
    if (line.startsWith('@@')) kind = 'hunk';
    else if (line.startsWith('+') && !line.startsWith('+++')) kind = 'add';
    else if (line.startsWith('-') && !line.startsWith('---')) kind = 'del';
    pre.append(kind ? el('span', { class: kind }, line) : document.createTextNode(`${line}\n`));
  }
  return pre;
}

function diffView(comparison) {
  const blocks = [];
  for (const entry of comparison.objects) {
    if (entry.diff === 'Unchanged') continue;
    const title = `${objectName(entry.object)}${entry.object.namespace ? ` in ${entry.object.namespace}` : ''}`;
    if (entry.diff.Missing) {
      blocks.push(el('div', { class: 'diff' }, el('div', { class: 'diff-title' }, `${title}: not in the cluster, would be created`),
        diffLines(entry.diff.Missing.desired.split('\n').map((line) => (line ? `+${line}` : line)).join('\n'))));
    } else if (entry.diff.Changed) {
      blocks.push(el('div', { class: 'diff' }, el('div', { class: 'diff-title' }, title), diffLines(entry.diff.Changed.unified)));
    }
  }
  if (blocks.length === 0) return el('div', { class: 'empty', id: 'no-diff' }, 'No differences: the cluster matches Git.');
  return el('div', { id: 'diffs' }, blocks);
}

// The commit in the cluster: the newest successful sync's.
function deployedRevision(records) {
  const last = records.find((record) => record.result === 'succeeded');
  return last ? last.revision : null;
}

function historyView(name, records) {
  if (records.length === 0) return el('div', { class: 'empty' }, 'Never synced yet.');
  const body = el('tbody');
  const current = deployedRevision(records);
  for (const record of records) {
    const deployed = record.revision === current;
    const rollback = record.result === 'succeeded' && !deployed && canOperate()
      ? el('button', {
        type: 'button', class: 'action', 'data-rollback': record.revision,
        onclick: (event) => act(event.target, `Roll back to ${shortRevision(record.revision)}`, 'rollback', { revision: record.revision }, true),
      }, 'Rollback')
      : (deployed ? el('span', { class: 'muted' }, 'deployed') : null);
    body.append(el('tr', { 'data-sync': record.id },
      el('td', {}, `#${record.id}`),
      el('td', {}, el('code', { title: record.revision }, shortRevision(record.revision))),
      el('td', {}, badge(record.result, 'result')),
      el('td', { class: 'hide-narrow' }, record.trigger),
      el('td', {}, when(record.started_at)),
      el('td', { class: 'message' }, record.message),
      el('td', {}, rollback)));
  }
  return el('table', { id: 'history' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Sync'), el('th', {}, 'Revision'), el('th', {}, 'Result'),
      el('th', { class: 'hide-narrow' }, 'Trigger'), el('th', {}, 'Started'), el('th', {}, 'Message'), el('th', {}, ''))),
    body);
}

function eventsView(events) {
  if (events.length === 0) return el('div', { class: 'empty' }, 'Nothing noticed.');
  return el('table', { id: 'events' }, el('tbody', {}, events.map((event) => el('tr', {},
    el('td', {}, when(event.time)), el('td', {}, event.kind), el('td', { class: 'message' }, event.message)))));
}

async function act(button, label, action, body, confirmFirst) {
  const name = state.view.name;
  if (confirmFirst && !window.confirm(`${label} of ${name}?`)) return;
  const buttons = document.querySelectorAll('button.action');
  buttons.forEach((b) => { b.disabled = true; });
  showBanner(`${label}…`, 'info');
  try {
    const result = await api('POST', `/api/v1/applications/${encodeURIComponent(name)}/${action}`, body);
    const detail = result && result.message ? `: ${result.message}` : '';
    showBanner(`${label} done${detail}`, 'info');
  } catch (err) {
    if (err.status !== 401) showBanner(`${label} failed: ${err.message}`);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
  if (state.view && state.view.kind === 'application' && state.view.name === name) loadApplication(name, false);
}

function actions(detail) {
  if (!canOperate()) return el('p', { class: 'muted', id: 'read-only' }, 'Read-only: this token may look but not act.');
  const prune = el('input', { type: 'checkbox', id: 'prune' });
  const status = detail.status || {};
  return el('div', { class: 'actions' },
    el('button', { type: 'button', class: 'action primary', id: 'sync',
      onclick: (event) => act(event.target, 'Sync', 'sync', { prune: prune.checked }) }, 'Sync'),
    el('label', {}, prune, ' prune'),
    el('button', { type: 'button', class: 'action', id: 'refresh',
      onclick: (event) => act(event.target, 'Refresh', 'refresh') }, 'Refresh'),
    status.suspended
      ? el('button', { type: 'button', class: 'action', id: 'resume', onclick: (event) => act(event.target, 'Resume', 'resume') }, 'Resume')
      : el('button', { type: 'button', class: 'action', id: 'suspend', onclick: (event) => act(event.target, 'Suspend', 'suspend') }, 'Suspend'),
    status.pinned
      ? el('button', { type: 'button', class: 'action', id: 'unpin', onclick: (event) => act(event.target, 'Unpin', 'unpin') }, 'Unpin')
      : el('button', { type: 'button', class: 'action', id: 'pin', title: 'Stay at the deployed commit; new commits are not deployed',
        onclick: (event) => act(event.target, 'Pin', 'pin', undefined, true) }, 'Pin'));
}

function section(id, title, content) {
  return el('section', { id }, el('h2', {}, title), content);
}

async function loadApplication(name, fresh) {
  const ticket = ++state.ticket;
  const current = () => ticket === state.ticket;
  const path = `/api/v1/applications/${encodeURIComponent(name)}`;
  if (fresh) mount(el('p', { class: 'muted' }, `Loading ${name}…`));
  let detail;
  let records;
  let events;
  try {
    // The application first: when it does not exist, that is the one request that says so.
    detail = await api('GET', path);
    [records, events] = await Promise.all([api('GET', `${path}/history?limit=50`), api('GET', `${path}/events?limit=20`)]);
  } catch (err) {
    if (err.status === 401 || !current()) return;
    const message = err.status === 404
      ? `No application named “${name}” (or this token may not see it).`
      : `Could not load ${name}: ${err.message}`;
    mount(el('p', {}, el('a', { href: '#/' }, '← Applications')), el('div', { class: 'empty', id: 'load-error' }, message));
    return;
  }
  if (!current()) return;
  const status = detail.status || {};
  const resources = el('div', { id: 'resources-slot' }, el('p', { class: 'muted' }, 'Comparing with the cluster…'));
  const diffs = el('div', { id: 'diff-slot' }, el('p', { class: 'muted' }, 'Comparing with the cluster…'));
  mount(
    el('p', {}, el('a', { href: '#/' }, '← Applications')),
    el('h1', { id: 'app-name' }, name),
    el('div', { class: 'actions' }, badge(syncOf(status), 'sync'), badge(healthOf(status), 'health'),
      status.pinned ? el('span', { class: 'badge flag', id: 'pinned' }, `pinned`) : null,
      status.suspended ? el('span', { class: 'badge flag', id: 'suspended' }, 'suspended') : null),
    status.error ? el('div', { class: 'banner', id: 'app-error' }, status.error) : null,
    el('dl', { class: 'facts' },
      el('dt', {}, 'Repository'), el('dd', {}, detail.repoUrl),
      el('dt', {}, 'Revision'), el('dd', {}, detail.revision, ' at ', el('code', { id: 'compared', title: status.revision || '' }, shortRevision(status.revision))),
      el('dt', {}, 'Deployed'), el('dd', {}, el('code', { id: 'deployed' }, shortRevision(deployedRevision(records)))),
      el('dt', {}, 'Path'), el('dd', {}, detail.path || '.', ` (${detail.renderer})`),
      el('dt', {}, 'Destination'), el('dd', {}, detail.cluster, detail.namespace ? ` / ${detail.namespace}` : ''),
      el('dt', {}, 'Sync policy'), el('dd', {}, detail.automated ? 'automated' : 'manual'),
      el('dt', {}, 'Reconciled'), el('dd', {}, when(status.reconciled_at)),
      status.drift ? [el('dt', {}, 'Drift'), el('dd', {}, status.drift)] : null,
      // Argo CD or Flux fields this application syncs without (they only change how those behave).
      detail.conversionNotes && detail.conversionNotes.length
        ? [el('dt', {}, 'Unlike Argo CD or Flux'),
          el('dd', { id: 'conversion-notes' }, el('ul', {}, detail.conversionNotes.map((note) => el('li', {}, note))))]
        : null),
    actions(detail),
    section('tree', 'Resources', resources),
    section('diff', 'Diff', diffs),
    section('sync-history', 'History', historyView(name, records)),
    section('app-events', 'Events', eventsView(events)),
  );
  try {
    // The tree is extra: without it (no right to list Pods, say) the diff is still shown.
    const [comparison, children] = await Promise.all([
      api('GET', `${path}/diff`), api('GET', `${path}/tree`).catch(() => []),
    ]);
    if (!current()) return;
    resources.replaceChildren(resourceTree(comparison, children));
    diffs.replaceChildren(diffView(comparison));
  } catch (err) {
    if (err.status === 401) return;
    const failed = el('div', { class: 'empty', id: 'compare-error' }, `Could not compare with the cluster: ${err.message}`);
    resources.replaceChildren(failed);
    diffs.replaceChildren(el('div', { class: 'empty' }, 'No diff without a comparison.'));
  }
}

// ---- routing ------------------------------------------------------------------------------------

function route() {
  clearTimeout(state.reloadTimer);
  if (!token()) {
    renderSignIn();
    return;
  }
  const hash = window.location.hash || '#/';
  if (hash.startsWith('#/app/')) {
    let name;
    try {
      name = decodeURIComponent(hash.slice('#/app/'.length));
    } catch {
      name = hash.slice('#/app/'.length);
    }
    state.view = { kind: 'application', name };
    showBanner('');
    loadApplication(name, true);
  } else {
    showBanner('');
    renderOverview();
  }
}

window.addEventListener('hashchange', () => { if (token()) route(); });
document.addEventListener('DOMContentLoaded', async () => {
  document.getElementById('sign-out').addEventListener('click', () => signOut(''));
  if (!token()) {
    renderSignIn();
    return;
  }
  try {
    state.whoami = await api('GET', '/api/v1/whoami');
  } catch (err) {
    if (err.status !== 401) renderSignIn(err.message);
    return;
  }
  started();
});
