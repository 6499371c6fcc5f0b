// The Switchyard console: plain modern JavaScript, no build step, nothing loaded from elsewhere.
// Data: the node's /admin/* endpoints (Authorization: Bearer <ADMIN_API_KEY>), polled; live job
// progress and channel events: the public WebSocket protocol, like any client.

const KEY_STORAGE = 'switchyard.adminKey';
const POLL_MS = 2000;
const MAX_EVENTS_SHOWN = 50;
/** Job channels followed at once (a connection may hold MAX_SUBSCRIPTIONS_PER_CONNECTION). */
const MAX_JOB_SUBSCRIPTIONS = 60;
const FINAL = new Set(['completed', 'failed', 'cancelled']);
/** What each job event says about the job's state. */
const STATE_OF_EVENT = {
  'job.queued': 'queued',
  'job.started': 'running',
  'job.progress': 'running',
  'job.retrying': 'retrying',
  'job.stalled': 'stalled',
  'job.completed': 'completed',
  'job.failed': 'failed',
  'job.cancelled': 'cancelled',
};

const $ = (id) => document.getElementById(id);

class Unauthorized extends Error {}

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) ?? '',
  jobs: new Map(),
  followed: '',
  pollTimer: undefined,
  socket: undefined,
  reconnectTimer: undefined,
  reconnectDelay: 1000,
  subscribed: new Set(),
  lastEventSeq: 0,
};

// ───────────────────────────── HTTP ─────────────────────────────

async function admin(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { authorization: `Bearer ${state.key}`, ...(init.headers ?? {}) } });
  if (res.status === 401) throw new Unauthorized('unauthorized');
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `${path} answered ${res.status}`);
  return body;
}

// ───────────────────────────── sign-in ─────────────────────────────

function showLogin(message = '') {
  stopAll();
  $('app').hidden = true;
  $('signout').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message;
  $('summary').textContent = '';
  $('key').focus();
}

async function signIn(key) {
  state.key = key;
  try {
    await admin('/admin/nodes');
  } catch (err) {
    state.key = '';
    sessionStorage.removeItem(KEY_STORAGE);
    showLogin(err instanceof Unauthorized ? 'That key was not accepted.' : `The node did not answer: ${err.message}`);
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $('login-view').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  await poll();
  connectLive();
}

function stopAll() {
  clearTimeout(state.pollTimer);
  clearTimeout(state.reconnectTimer);
  state.pollTimer = undefined;
  state.reconnectTimer = undefined;
  const ws = state.socket;
  state.socket = undefined;
  if (ws !== undefined) ws.close(1000);
  state.subscribed.clear();
  setLive('off');
}

// ───────────────────────────── polling ─────────────────────────────

async function poll() {
  clearTimeout(state.pollTimer);
  try {
    const [nodes, channels, jobs, dead] = await Promise.all([
      admin('/admin/nodes'),
      admin('/admin/channels'),
      admin('/admin/jobs?limit=50'),
      admin('/admin/dead-letters'),
    ]);
    renderNodes(nodes.nodes);
    renderChannels(channels.channels);
    mergeJobs(jobs);
    renderDead(dead);
  } catch (err) {
    if (err instanceof Unauthorized) {
      sessionStorage.removeItem(KEY_STORAGE);
      showLogin('The admin key is no longer accepted.');
      return;
    }
    $('nodes-note').textContent = `update failed: ${err.message}`;
  }
  if (!$('app').hidden) state.pollTimer = setTimeout(poll, POLL_MS);
}

// ───────────────────────────── rendering ─────────────────────────────

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/** Keeps one element per key in `parent`, in the order of `items`; elements are reused so CSS transitions run. */
function syncChildren(parent, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of parent.children) existing.set(child.dataset.key, child);
  const wanted = new Set();
  let before = parent.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    wanted.add(key);
    let node = existing.get(key);
    if (node === undefined) {
      node = create(item);
      node.dataset.key = key;
    }
    update(node, item);
    if (node !== before) parent.insertBefore(node, before);
    else before = before.nextElementSibling;
  }
  for (const [key, node] of existing) if (!wanted.has(key)) node.remove();
}

const fmt = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

function bytes(n) {
  if (typeof n !== 'number') return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${fmt.format(n)} ${units[i]}`;
}

function ago(iso) {
  if (!iso) return '–';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

function stat(name, label) {
  return el('div', { class: 'stat' }, el('span', { class: 'v', 'data-stat': name, text: '–' }), el('span', { class: 'k', text: label }));
}

function renderNodes(nodes) {
  let connections = 0;
  let sessions = 0;
  for (const n of nodes) {
    connections += n.connections ?? 0;
    sessions += n.sessions ?? 0;
  }
  const summary = $('summary');
  summary.replaceChildren(
    el('span', {}, el('b', { text: String(nodes.length) }), ` node${nodes.length === 1 ? '' : 's'}`),
    el('span', {}, el('b', { text: String(connections) }), ' connections'),
    el('span', {}, el('b', { text: String(sessions) }), ' sessions'),
  );
  $('nodes-note').textContent = 'from the cluster registry, refreshed every heartbeat';
  syncChildren(
    $('nodes'),
    nodes,
    (n) => n.id,
    (n) => {
      const card = el(
        'article',
        { class: 'node', 'data-node': n.id },
        el('div', { class: 'node-head' }, el('span', { class: 'dot' }), el('span', { class: 'id', text: n.id, title: n.id })),
        el('div', { class: 'stats' }, stat('connections', 'connections'), stat('sessions', 'sessions'), stat('subscriptions', 'subscriptions'), stat('cpu', 'cpu'), stat('memory', 'memory'), stat('uptime', 'up since')),
        el('div', { class: 'meter', title: 'CPU' }, el('i')),
      );
      if (n.self) card.querySelector('.node-head').append(el('span', { class: 'badge', text: 'this node' }));
      return card;
    },
    (card, n) => {
      card.dataset.draining = String(Boolean(n.draining));
      const head = card.querySelector('.node-head');
      const badge = head.querySelector('.badge.warn');
      if (n.draining && badge === null) head.append(el('span', { class: 'badge warn', text: 'draining' }));
      if (!n.draining && badge !== null) badge.remove();
      const set = (name, value) => (card.querySelector(`[data-stat="${name}"]`).textContent = value);
      set('connections', String(n.connections ?? 0));
      set('sessions', n.sessions === undefined ? '–' : String(n.sessions));
      set('subscriptions', n.subscriptions === undefined ? '–' : String(n.subscriptions));
      set('cpu', n.cpu_percent === undefined ? '–' : `${fmt.format(n.cpu_percent)}%`);
      set('memory', bytes(n.rss_bytes));
      set('uptime', n.started_at ? ago(n.started_at).replace(' ago', '') : '–');
      card.querySelector('.meter > i').style.width = `${Math.min(100, n.cpu_percent ?? 0)}%`;
    },
  );
}

function renderChannels(channels) {
  $('channels-empty').hidden = channels.length > 0;
  syncChildren(
    $('channels'),
    channels,
    (c) => c.channel,
    (c) => {
      const row = el('tr', { 'data-channel': c.channel }, el('td', { class: 'mono', text: c.channel }), el('td', { class: 'num' }), el('td', { class: 'num' }), el('td', { class: 'num' }));
      row.addEventListener('click', () => follow(c.channel));
      return row;
    },
    (row, c) => {
      const cells = row.children;
      cells[1].textContent = String(c.subscribers);
      cells[2].textContent = fmt.format(c.events_per_s);
      cells[3].textContent = String(c.seq);
      row.setAttribute('aria-selected', String(c.channel === state.followed));
    },
  );
}

function mergeJobs(reply) {
  $('jobs-note').textContent = reply.enabled ? 'live over the WebSocket' : 'this node runs no job queue';
  const seen = new Set();
  for (const job of reply.jobs) {
    seen.add(job.job_id);
    const known = state.jobs.get(job.job_id);
    // A live event may be newer than the poll that started before it arrived.
    if (known === undefined || !known.live || (job.updated_at ?? '') > (known.updated_at ?? '') || FINAL.has(job.state)) {
      state.jobs.set(job.job_id, { ...known, ...job, live: known?.live ?? false });
    }
  }
  for (const id of state.jobs.keys()) if (!seen.has(id) && FINAL.has(state.jobs.get(id).state)) state.jobs.delete(id);
  renderJobs();
  followJobs();
}

function renderJobs() {
  const jobs = [...state.jobs.values()].sort((a, b) => ((b.created_at ?? '') > (a.created_at ?? '') ? 1 : (b.created_at ?? '') < (a.created_at ?? '') ? -1 : 0));
  $('jobs-empty').hidden = jobs.length > 0;
  syncChildren(
    $('jobs'),
    jobs,
    (j) => j.job_id,
    (j) =>
      el(
        'tr',
        { 'data-job': j.job_id },
        el('td', {}, el('div', { class: 'mono', text: j.job_id }), el('div', { class: 'muted', text: j.sample_id ?? '' })),
        el('td', {}, el('span', { class: 'pill' })),
        el(
          'td',
          {},
          el(
            'div',
            { class: 'progress' },
            el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': `progress of ${j.job_id}` }, el('i')),
            el('span', { class: 'pct' }),
          ),
        ),
        el('td', { class: 'stage' }),
        el('td', { class: 'num attempts' }),
        el('td', { class: 'muted updated' }),
      ),
    (row, j) => {
      const pct = Math.round(Math.min(1, Math.max(0, j.state === 'completed' ? 1 : (j.progress ?? 0))) * 100);
      row.dataset.state = j.state;
      const pill = row.querySelector('.pill');
      pill.dataset.state = j.state;
      pill.textContent = j.state;
      const bar = row.querySelector('[role="progressbar"]');
      bar.setAttribute('aria-valuenow', String(pct));
      bar.firstElementChild.style.width = `${pct}%`;
      row.querySelector('.pct').textContent = `${pct}%`;
      row.querySelector('.stage').textContent = j.stage ?? (j.state === 'failed' ? (j.error ?? '') : '');
      row.querySelector('.attempts').textContent = String(j.attempts ?? 0);
      row.querySelector('.updated').textContent = ago(j.updated_at ?? j.created_at);
    },
  );
}

function renderDead(reply) {
  $('dead-empty').hidden = reply.dead_letters.length > 0;
  syncChildren(
    $('dead'),
    reply.dead_letters,
    (d) => d.job_id,
    (d) => el('tr', { 'data-dead': d.job_id }, el('td', { class: 'mono', text: d.job_id }), el('td', {}, el('span', { class: 'pill' })), el('td', { class: 'err' }), el('td', { class: 'num' }), el('td', { class: 'muted' })),
    (row, d) => {
      const pill = row.querySelector('.pill');
      pill.dataset.class = d.class ?? 'unknown';
      pill.textContent = d.class ?? 'unknown';
      row.children[2].textContent = d.error ?? '';
      row.children[2].title = d.error ?? '';
      row.children[3].textContent = String(d.attempts ?? 0);
      row.children[4].textContent = ago(d.failed_at);
    },
  );
}

// ───────────────────────────── channel events ─────────────────────────────

function eventItem(frame, fresh) {
  const time = frame.timestamp ? new Date(frame.timestamp).toLocaleTimeString() : '';
  return el(
    'li',
    { class: fresh ? 'fresh' : '', 'data-seq': String(frame.seq) },
    el('span', { class: 'seq mono', text: `#${frame.seq}` }),
    el('span', { class: 'name', text: frame.event, title: time }),
    el('span', { class: 'data mono', text: JSON.stringify(frame.data), title: JSON.stringify(frame.data, null, 2) }),
  );
}

async function follow(channel) {
  $('follow-channel').value = channel;
  $('follow-error').textContent = '';
  const previous = state.followed;
  let page;
  try {
    page = await admin(`/admin/channels/${encodeURIComponent(channel)}/events?limit=${MAX_EVENTS_SHOWN}`);
  } catch (err) {
    $('follow-error').textContent = err.message;
    return;
  }
  if (previous !== '' && previous !== channel && !previous.startsWith('job:')) send({ type: 'unsubscribe', channel: previous });
  state.followed = channel;
  state.lastEventSeq = page.seq;
  $('events').replaceChildren(...page.events.slice().reverse().map((f) => eventItem(f, false)));
  for (const row of $('channels').children) row.setAttribute('aria-selected', String(row.dataset.channel === channel));
  // Live from here on; `since` closes the gap between the page read and the subscription.
  if (!channel.startsWith('job:') || !state.subscribed.has(channel)) send({ type: 'subscribe', channel, since: page.seq, ref: `follow:${channel}` });
}

function onChannelEvent(frame) {
  if (frame.channel !== state.followed || frame.seq <= state.lastEventSeq) return;
  state.lastEventSeq = frame.seq;
  const list = $('events');
  list.prepend(eventItem(frame, true));
  while (list.children.length > MAX_EVENTS_SHOWN) list.lastElementChild.remove();
}

// ───────────────────────────── live (WebSocket) ─────────────────────────────

function setLive(mode) {
  const live = $('live');
  live.dataset.state = mode;
  live.textContent = mode === 'on' ? 'live' : mode === 'connecting' ? 'connecting…' : 'offline';
}

function send(frame) {
  const ws = state.socket;
  if (ws !== undefined && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
}

async function connectLive() {
  if (state.socket !== undefined || state.key === '') return;
  setLive('connecting');
  let token;
  try {
    ({ token } = await admin('/admin/token', { method: 'POST' }));
  } catch (err) {
    // Without a token (e.g. a node that verifies with a public key) the page still polls.
    setLive('off');
    $('live').title = `no live updates: ${err.message}`;
    return;
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(token)}`);
  state.socket = ws;
  ws.addEventListener('message', (e) => onFrame(JSON.parse(e.data)));
  ws.addEventListener('close', () => {
    if (state.socket !== ws) return;
    state.socket = undefined;
    state.subscribed.clear();
    setLive('connecting');
    const delay = Math.random() * state.reconnectDelay;
    state.reconnectDelay = Math.min(state.reconnectDelay * 2, 15000);
    state.reconnectTimer = setTimeout(connectLive, delay);
  });
}

function onFrame(frame) {
  switch (frame.type) {
    case 'auth_success':
      setLive('on');
      state.reconnectDelay = 1000;
      followJobs();
      if (state.followed !== '') void follow(state.followed);
      break;
    case 'subscription_result':
      if (frame.success === false) {
        state.subscribed.delete(frame.channel);
        if (frame.channel === state.followed) $('follow-error').textContent = `cannot follow ${frame.channel}: ${frame.error}`;
      }
      break;
    case 'snapshot':
      if (frame.channel.startsWith('job:') && frame.data && typeof frame.data === 'object') updateJob(frame.channel.slice(4), frame.data, undefined);
      break;
    case 'event':
      if (frame.channel.startsWith('job:')) updateJob(frame.channel.slice(4), frame.data ?? {}, frame.event, frame.timestamp);
      onChannelEvent(frame);
      break;
    case 'reconnect':
      // The node is draining: the close that follows reconnects us.
      break;
    default:
      break;
  }
}

/** Subscribes to the channels of jobs still moving; lets go of finished ones. */
function followJobs() {
  if (state.socket === undefined || state.socket.readyState !== WebSocket.OPEN) return;
  for (const [id, job] of state.jobs) {
    const channel = `job:${id}`;
    if (FINAL.has(job.state)) {
      if (state.subscribed.delete(channel) && channel !== state.followed) send({ type: 'unsubscribe', channel });
      continue;
    }
    if (state.subscribed.has(channel) || state.subscribed.size >= MAX_JOB_SUBSCRIPTIONS) continue;
    state.subscribed.add(channel);
    send({ type: 'subscribe', channel });
  }
}

function updateJob(id, data, event, timestamp) {
  const job = { ...(state.jobs.get(id) ?? { job_id: id, attempts: 0 }), live: true };
  if (event === undefined) Object.assign(job, data);
  else {
    // Job events are ordered per channel; a final state is never left again.
    if (FINAL.has(job.state)) return;
    job.state = STATE_OF_EVENT[event] ?? job.state;
    if (typeof data.progress === 'number') job.progress = data.progress;
    if (typeof data.stage === 'string') job.stage = data.stage;
    if (typeof data.attempt === 'number') job.attempts = Math.max(job.attempts ?? 0, data.attempt);
    if (typeof data.attempts === 'number') job.attempts = data.attempts;
    if (typeof data.error === 'string') job.error = data.error;
    if (event === 'job.completed') job.progress = 1;
    if (timestamp) job.updated_at = timestamp;
  }
  state.jobs.set(id, job);
  renderJobs();
  if (FINAL.has(job.state)) followJobs();
}

// ───────────────────────────── start ─────────────────────────────

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  void signIn($('key').value.trim());
});
$('signout').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = '';
  state.jobs.clear();
  showLogin();
});
$('follow').addEventListener('submit', (e) => {
  e.preventDefault();
  const channel = $('follow-channel').value.trim();
  if (channel !== '') void follow(channel);
});

if (state.key !== '') void signIn(state.key);
else showLogin();
