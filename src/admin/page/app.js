/* global document, location, fetch, history */
// meshlb live page. Polls the replica's JSON (src/admin/page-server.ts) and
// renders it: the cell tree once a second (rates are the change between two
// answers), the selected cell's detail, flow control at the root (keys, rate
// keys and the oldest waiting tasks with why they wait), and dead letters. Plain browser
// JavaScript, no build step, no dependency; everything is set with textContent.
// The JSON is AdminService's (proto3 JSON: lowerCamelCase, zero values left out).

const POLL_MS = 1000;
const DEAD_LETTERS_MS = 2000;

const $ = (id) => document.getElementById(id);
const num = (v) => Number(v ?? 0);
const fmtRate = (r) => (r === undefined ? '–' : r >= 100 ? r.toFixed(0) : r.toFixed(1));
const healthName = (h) =>
  String(h ?? 'CELL_HEALTH_UNSPECIFIED')
    .replace('CELL_HEALTH_', '')
    .toLowerCase();
const depth = (path) => (path === '/' ? 0 : path.split('/').length - 1);

const state = {
  /** path -> the last status of that cell (for rates) */
  last: new Map(),
  /** path -> its table row */
  rows: new Map(),
  /** path -> latest problems */
  problems: new Map(),
  selected: decodeURIComponent((location.hash.match(/^#cell=(.*)$/) ?? [])[1] ?? ''),
  dlCell: '/',
  dlToken: '',
  paths: [],
};

async function getJSON(url) {
  const res = await fetch(url, { cache: 'no-store' });
  const body = await res.json().catch(() => ({ code: 'HTTP_' + res.status, message: res.statusText }));
  if (!res.ok) throw new Error(`${body.code}: ${body.message}`);
  return body;
}

function setConn(ok, text) {
  const el = $('connection');
  el.textContent = text;
  el.className = 'conn ' + (ok ? 'ok' : 'bad');
}

function td(row, cls, text, numeric) {
  let cell = row.querySelector('td.' + cls);
  if (!cell) {
    cell = document.createElement('td');
    cell.className = cls + (numeric ? ' num' : '');
    row.appendChild(cell);
  }
  if (cell.textContent !== text) cell.textContent = text;
  return cell;
}

function rowFor(path) {
  let row = state.rows.get(path);
  if (!row) {
    row = document.createElement('tr');
    row.dataset.cell = path;
    row.addEventListener('click', () => select(path));
    state.rows.set(path, row);
  }
  return row;
}

function renderMesh(s) {
  const cells = s.cells ?? [];
  const body = $('mesh-tree').querySelector('tbody');
  const paths = [];
  cells.forEach((c, i) => {
    const path = c.path;
    paths.push(path);
    const prev = state.last.get(path);
    const dt = prev ? (num(c.observedUnixMs) - num(prev.observedUnixMs)) / 1000 : 0;
    const rate = (field) => (prev && dt > 0 ? Math.max(0, (num(c[field]) - num(prev[field])) / dt) : undefined);
    const doneRate = rate('tasksCompleted');
    const failRate =
      prev && dt > 0
        ? Math.max(
            0,
            (num(c.tasksFailed) + num(c.tasksDeadLettered) - num(prev.tasksFailed) - num(prev.tasksDeadLettered)) / dt,
          )
        : undefined;
    state.last.set(path, c);
    state.problems.set(path, c.problems ?? []);
    const row = rowFor(path);
    const name = td(row, 'cell', path + (c.draining ? ' (draining)' : ''));
    name.style.paddingLeft = 0.6 + depth(path) * 1.2 + 'rem';
    name.classList.toggle('draining', Boolean(c.draining));
    const health = healthName(c.health);
    const h = td(row, 'health', health);
    h.className = 'health health-' + health;
    h.title = (c.problems ?? []).join('\n');
    td(row, 'leader', [c.leaderId, c.leaderAddress || c.address].filter(Boolean).join(' ') || '–');
    td(row, 'agents', `${num(c.healthyAgents)}/${num(c.agents)}`, true);
    td(row, 'slots', `${num(c.freeSlots)}/${num(c.totalSlots)}`, true);
    td(row, 'queue', String(num(c.queueDepth)), true);
    td(row, 'in-flight', String(num(c.inFlight)), true);
    td(row, 'done-rate', fmtRate(doneRate), true);
    td(row, 'fail-rate', fmtRate(failRate), true);
    td(row, 'completed', String(num(c.tasksCompleted)), true);
    td(row, 'dead-lettered', String(num(c.tasksDeadLettered)), true);
    row.classList.toggle('selected', path === state.selected);
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] ?? null);
  });
  for (const [path, row] of state.rows) {
    if (!paths.includes(path)) {
      row.remove();
      state.rows.delete(path);
      state.last.delete(path);
    }
  }
  $('answered-by').textContent = s.answeredBy ?? '-';
  $('updated').textContent = new Date(num(s.atUnixMs) || Date.now()).toLocaleTimeString();
  $('partial').hidden = !s.partial;
  $('partial').textContent = s.partial ?? '';
  if (paths.join() !== state.paths.join()) {
    state.paths = paths;
    const sel = $('dl-cell');
    sel.replaceChildren(
      ...paths.map((p) => {
        const o = document.createElement('option');
        o.value = p;
        o.textContent = p;
        return o;
      }),
    );
    sel.value = state.dlCell;
  }
}

async function pollMesh() {
  if ($('paused').checked) return;
  try {
    renderMesh(await getJSON('api/mesh'));
    setConn(true, 'live');
  } catch (err) {
    setConn(false, 'no answer: ' + err.message);
  }
}

function select(path) {
  state.selected = path;
  history.replaceState(null, '', path ? '#cell=' + encodeURIComponent(path) : '#');
  for (const [p, row] of state.rows) row.classList.toggle('selected', p === path);
  $('cell-detail').hidden = !path;
  if (path) void pollCell();
}

function field(dl, name, value) {
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dd.dataset.field = name;
  dl.append(dt, dd);
}

function kinds(summary) {
  const ks = summary?.kinds ?? [];
  if (ks.length === 0) return '–';
  return ks.map((k) => `${k.kind} ${num(k.freeSlots)}/${num(k.totalSlots)}`).join(', ');
}

function renderCell(path, d) {
  const c = d.cell ?? {};
  $('detail-path').textContent = path;
  const dl = $('detail-fields');
  dl.replaceChildren();
  field(dl, 'answered by', c.replicaId ?? '-');
  field(
    dl,
    'role',
    String(c.role ?? '')
      .replace('REPLICA_ROLE_', '')
      .toLowerCase(),
  );
  field(dl, 'leader', [c.leaderId, c.leaderAddress].filter(Boolean).join(' ') || '–');
  field(dl, 'term', String(num(c.term)));
  field(dl, 'commit / applied', `${num(c.commitIndex)} / ${num(c.appliedIndex)}`);
  field(dl, 'policy', (c.policy ?? '') + (c.policyOverridden ? ' (set by operator)' : ''));
  if (c.policyConfigJson) field(dl, 'policy config', c.policyConfigJson);
  field(dl, 'draining', c.draining ? 'yes' + (c.drainReason ? ': ' + c.drainReason : '') : 'no');
  field(dl, 'queue', String(num(c.queueDepth)));
  field(dl, 'in flight', String(num(c.inFlight)));
  field(dl, 'accepted', String(num(c.tasksAccepted)));
  field(dl, 'completed', String(num(c.tasksCompleted)));
  field(dl, 'failed', String(num(c.tasksFailed)));
  field(dl, 'cancelled', String(num(c.tasksCancelled)));
  field(dl, 'dead-lettered', String(num(c.tasksDeadLettered)));
  field(dl, 'dispatched', String(num(c.dispatched)));
  field(dl, 'waiting for a kind nobody serves', String(num(c.unplaceable)));
  field(dl, 'capacity', kinds(c.summary));
  const problems = state.problems.get(path) ?? [];
  $('detail-problems').replaceChildren(
    ...(problems.length ? problems : ['none']).map((p) => {
      const li = document.createElement('li');
      li.textContent = p;
      return li;
    }),
  );
  const row = (values) => {
    const tr = document.createElement('tr');
    for (const v of values) {
      const cell = document.createElement('td');
      cell.textContent = v;
      tr.appendChild(cell);
    }
    return tr;
  };
  $('detail-children')
    .querySelector('tbody')
    .replaceChildren(
      ...(c.children ?? []).map((ch) =>
        row([
          ch.cell,
          ch.connected ? 'yes' : 'no',
          kinds(ch.summary),
          String(num(ch.summary?.healthyAgents)),
          String(num(ch.summary?.activeTasks)),
          [ch.summary?.leaderId, ch.summary?.leaderAddress].filter(Boolean).join(' ') || '–',
        ]),
      ),
    );
  const agents = d.agents?.agents ?? [];
  const tbody = $('detail-agents').querySelector('tbody');
  tbody.replaceChildren(
    ...agents.map((a) => {
      const tr = row([
        a.agentId,
        (a.kinds ?? []).join(', '),
        `${num(a.inFlight)}/${num(a.slots)}`,
        num(a.cpu).toFixed(2),
        num(a.memory).toFixed(2),
        num(a.successEwma).toFixed(2),
        num(a.latencyEwmaMs).toFixed(1) + ' ms',
        a.cordoned ? 'cordoned' : a.draining ? 'draining' : 'taking work',
      ]);
      tr.dataset.agent = a.agentId;
      return tr;
    }),
  );
}

async function pollCell() {
  const path = state.selected;
  if (!path || $('paused').checked) return;
  try {
    const d = await getJSON('api/cell?path=' + encodeURIComponent(path));
    if (path === state.selected) renderCell(path, d);
  } catch (err) {
    $('detail-problems').replaceChildren(Object.assign(document.createElement('li'), { textContent: err.message }));
  }
}

async function pollDeadLetters(more) {
  if ($('paused').checked && !more) return;
  const cell = state.dlCell;
  const token = more ? state.dlToken : '';
  try {
    const page = await getJSON(
      'api/dead-letters?cell=' + encodeURIComponent(cell) + (token ? '&page_token=' + encodeURIComponent(token) : ''),
    );
    if (cell !== state.dlCell) return;
    const tbody = $('dl-table').querySelector('tbody');
    const rows = (page.tasks ?? []).map((t) => {
      const tr = document.createElement('tr');
      tr.dataset.task = t.id;
      const values = [
        t.id,
        t.kind ?? '',
        t.tenant ?? '',
        `${num(t.failures)}/${num(t.maxAttempts)}`,
        new Date(num(t.updatedUnixMs)).toLocaleTimeString(),
        t.reason ?? '',
      ];
      values.forEach((v, i) => {
        const c = document.createElement('td');
        c.textContent = v;
        if (i === 5) c.className = 'reason';
        tr.appendChild(c);
      });
      return tr;
    });
    if (more) tbody.append(...rows);
    else tbody.replaceChildren(...rows);
    state.dlToken = page.nextPageToken ?? '';
    $('dl-more').hidden = !state.dlToken;
    $('dl-empty').hidden = tbody.children.length > 0;
  } catch (err) {
    $('dl-empty').hidden = false;
    $('dl-empty').textContent = 'dead letters: ' + err.message;
  }
}

/** One table row of text cells; `cls` names the cells' classes (for tests and styles). */
function textRow(values, cls) {
  const tr = document.createElement('tr');
  values.forEach((v, i) => {
    const c = document.createElement('td');
    c.textContent = v;
    if (cls[i]) c.className = cls[i];
    tr.appendChild(c);
  });
  return tr;
}

async function pollFlow() {
  if ($('paused').checked) return;
  try {
    const { flow, waiting } = await getJSON('api/flow');
    const keys = flow.keys ?? [];
    const rates = flow.rates ?? [];
    const tasks = waiting.tasks ?? [];
    const keyRows = keys.map((k) => {
      const tr = textRow(
        [
          k.key,
          (k.strategy ?? 'queue') + (k.runtimeLimit ? ' (limit set at runtime)' : ''),
          `${num(k.inFlight)} / ${k.limit ? num(k.limit) : '∞'}`,
          String(num(k.lingering)),
          String(num(k.waiting)),
        ],
        ['key', 'strategy', 'in-flight', 'lingering', 'waiting'],
      );
      tr.dataset.key = k.key;
      return tr;
    });
    const rateRows = rates.map((r) => {
      const next = num(r.nextUnixMs);
      const tr = textRow(
        [
          r.key,
          `${num(r.units)} per ${num(r.periodMs)} ms`,
          String(num(r.burst)),
          next ? new Date(next).toLocaleTimeString() : 'now',
          String(num(r.waiting)),
        ],
        ['key', 'rate', 'burst', 'next', 'waiting'],
      );
      tr.dataset.key = r.key;
      return tr;
    });
    const taskRows = tasks.map((t) => {
      const tr = textRow(
        [t.id, t.kind ?? '', t.tenant ?? '', new Date(num(t.createdUnixMs)).toLocaleTimeString(), t.location ?? ''],
        ['', '', '', '', 'reason'],
      );
      tr.dataset.task = t.id;
      return tr;
    });
    $('flow-keys')
      .querySelector('tbody')
      .replaceChildren(...keyRows);
    $('flow-rates')
      .querySelector('tbody')
      .replaceChildren(...rateRows);
    $('flow-waiting')
      .querySelector('tbody')
      .replaceChildren(...taskRows);
    $('flow-keys').hidden = keyRows.length === 0;
    $('flow-rates').hidden = rateRows.length === 0;
    $('flow-none').hidden = taskRows.length > 0;
    $('flow').hidden = false;
  } catch (err) {
    $('flow-none').hidden = false;
    $('flow-none').textContent = 'flow: ' + err.message;
  }
}

$('detail-close').addEventListener('click', () => select(''));
$('dl-cell').addEventListener('change', (e) => {
  state.dlCell = e.target.value;
  void pollDeadLetters(false);
});
$('dl-more').addEventListener('click', () => void pollDeadLetters(true));

void pollMesh();
void pollDeadLetters(false);
void pollFlow();
if (state.selected) select(state.selected);
setInterval(() => void pollMesh(), POLL_MS);
setInterval(() => void pollCell(), POLL_MS);
setInterval(() => void pollDeadLetters(false), DEAD_LETTERS_MS);
setInterval(() => void pollFlow(), POLL_MS);
