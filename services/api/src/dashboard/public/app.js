// The dashboard: polls the API once a second and draws what it returns with uPlot. No framework,
// no build step; served as a file so a strict Content Security Policy (script-src 'self') holds.
// With API keys on, open the page as /#key=<key> once (the key stays in this browser's
// localStorage and never travels in a URL the server sees), or paste it in the form.
'use strict';
/* global URL, Blob, setTimeout -- browser globals beyond the ones eslint.config.js lists */

const POLL_MS = 1000;
const JOBS_POLL_MS = 2000;
const QUEUES = ['jobqueue', 'actor-jobs', 'spark-jobs', 'ml-jobs', 'batch-jobs'];
const POOLS = QUEUES.slice(1);
const COLORS = {
  active: '#4fa3ff',
  scheduled: '#e3b341',
  dead: '#f05d5e',
  ok: '#4cc38a',
  p50: '#4fa3ff',
  p95: '#c678dd',
};
const POOL_COLORS = { 'actor-jobs': '#4fa3ff', 'spark-jobs': '#e3b341', 'ml-jobs': '#c678dd', 'batch-jobs': '#4cc38a' };

/** What the page holds; also read by the browser test. */
const state = (window.__dashboard = { samples: [], jobs: [], charts: {}, selected: null, errors: 0 });

// ---- the API ------------------------------------------------------------------------------------

(function takeKeyFromFragment() {
  const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (match) {
    localStorage.setItem('orch-api-key', decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
})();

class Unauthorized extends Error {}

/** GETs `path` with the API key (if any) and returns its JSON; throws with the API's code and message. */
async function api(path) {
  const key = localStorage.getItem('orch-api-key');
  const response = await fetch(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  if (response.status === 401) throw new Unauthorized('an API key is needed');
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`${response.status} ${body.code ?? ''} ${body.message ?? ''}`.trim());
  }
  return response.json();
}

function setStatus(text, kind) {
  const el = document.getElementById('status');
  el.textContent = text;
  el.className = `status ${kind ?? ''}`;
}

function askForKey() {
  const form = document.getElementById('key-form');
  form.hidden = false;
  setStatus('this API needs a key', 'down');
}

document.getElementById('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  localStorage.setItem('orch-api-key', document.getElementById('key-input').value.trim());
  document.getElementById('key-form').hidden = true;
  void refresh();
  void refreshJobs();
});

// ---- charts -------------------------------------------------------------------------------------

function chart(container, title, series, height = 170) {
  const el = typeof container === 'string' ? document.getElementById(container) : container;
  const width = Math.max(280, el.clientWidth || 400);
  const plot = new uPlot(
    {
      title,
      width,
      height,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, points: { show: false } }))],
      axes: [
        { stroke: '#8b98a9', grid: { stroke: '#263040' }, ticks: { stroke: '#263040' } },
        { stroke: '#8b98a9', grid: { stroke: '#263040' }, ticks: { stroke: '#263040' }, size: 50 },
      ],
      scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(1, max * 1.1)] } },
      legend: { live: false },
    },
    [[], ...series.map(() => [])],
    el,
  );
  new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height })).observe(el);
  return plot;
}

function buildCharts() {
  const grid = document.getElementById('queue-charts');
  for (const queue of QUEUES) {
    const panel = document.createElement('div');
    panel.className = 'panel';
    panel.dataset.queue = queue;
    panel.innerHTML = `<h2>${queue}<span class="workers" data-workers="${queue}"></span></h2><div></div>`;
    grid.append(panel);
    state.charts[queue] = chart(panel.lastElementChild, '', [
      { label: 'active', color: COLORS.active },
      { label: 'scheduled', color: COLORS.scheduled },
      { label: 'dead-letter', color: COLORS.dead },
    ]);
  }
  state.charts.workers = chart(
    'workers-chart',
    '',
    POOLS.map((pool) => ({ label: pool, color: POOL_COLORS[pool] })),
  );
  state.charts.throughput = chart('throughput-chart', '', [
    { label: 'succeeded/s', color: COLORS.ok },
    { label: 'failed/s', color: COLORS.dead },
  ]);
  state.charts.latency = chart('latency-chart', '', [
    { label: 'p50', color: COLORS.p50 },
    { label: 'p95', color: COLORS.p95 },
  ]);
}

function draw() {
  const samples = state.samples;
  const x = samples.map((s) => s.at / 1000);
  for (const queue of QUEUES) {
    const depth = (kind) => samples.map((s) => s.queues[queue]?.[kind] ?? null);
    state.charts[queue].setData([x, depth('active'), depth('scheduled'), depth('dead_letter')]);
  }
  state.charts.workers.setData([x, ...POOLS.map((pool) => samples.map((s) => s.workers[pool]?.replicas ?? 0))]);
  state.charts.throughput.setData([x, samples.map((s) => s.succeeded_per_sec), samples.map((s) => s.failed_per_sec)]);
  state.charts.latency.setData([
    x,
    samples.map((s) => s.dispatch_latency_ms?.p50 ?? null),
    samples.map((s) => s.dispatch_latency_ms?.p95 ?? null),
  ]);

  const last = samples.at(-1);
  if (!last) return;
  for (const pool of POOLS) {
    const w = last.workers[pool];
    const el = document.querySelector(`[data-workers="${pool}"]`);
    if (el && w)
      el.textContent = ` · ${w.replicas} worker${w.replicas === 1 ? '' : 's'}, ${w.in_flight}/${w.concurrency} slots busy`;
  }
  const queued = QUEUES.reduce((n, q) => n + (last.queues[q]?.active ?? 0), 0);
  const dead = QUEUES.reduce((n, q) => n + (last.queues[q]?.dead_letter ?? 0), 0);
  const tiles = [
    [queued, 'messages waiting'],
    // Null where the API computed no figures: for a tenant key, samples from before it first looked.
    [last.succeeded_per_sec ?? '—', 'succeeded / s'],
    [last.failed_per_sec ?? '—', 'failed / s'],
    [last.dispatch_latency_ms ? `${Math.round(last.dispatch_latency_ms.p95)} ms` : '—', 'dispatch p95'],
    [dead, 'dead letters'],
  ];
  document.getElementById('summary').replaceChildren(
    ...tiles.map(([value, label]) => {
      const tile = document.createElement('div');
      tile.className = 'tile';
      tile.append(Object.assign(document.createElement('b'), { textContent: String(value) }));
      tile.append(Object.assign(document.createElement('span'), { textContent: label }));
      return tile;
    }),
  );
}

// ---- polling ------------------------------------------------------------------------------------

async function refresh() {
  try {
    const since = state.samples.at(-1)?.at;
    const history = await api(`/stats/history${since === undefined ? '' : `?since=${since}`}`);
    state.samples.push(...history.samples);
    const keep = Math.ceil(900_000 / history.interval_ms);
    if (state.samples.length > keep) state.samples.splice(0, state.samples.length - keep);
    draw();
    setStatus(`live · ${new Date().toLocaleTimeString()}`, 'live');
  } catch (e) {
    state.errors += 1;
    if (e instanceof Unauthorized) askForKey();
    else setStatus(`API unreachable: ${e.message}`, 'down');
  }
}

const age = (iso) => {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 90 ? `${s}s` : s < 5400 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
};

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** Bumped by every refresh of the table: an answer to an older one (e.g. from before a filter changed) is dropped. */
let jobsRequest = 0;

async function refreshJobs() {
  const filters = new FormData(document.getElementById('filters'));
  const query = new URLSearchParams({ limit: '50' });
  for (const name of ['status', 'queue']) if (filters.get(name)) query.set(name, filters.get(name));
  const request = ++jobsRequest;
  try {
    const page = await api(`/jobs?${query}`);
    if (request !== jobsRequest) return;
    state.jobs = page.jobs;
    const rows = page.jobs.map((job) => {
      const tr = document.createElement('tr');
      tr.dataset.jobId = job.job_id;
      if (job.job_id === state.selected) tr.className = 'selected';
      tr.append(
        cell(job.job_id.slice(0, 8)),
        cell(job.status, `st-${job.status}`),
        cell(job.queue ?? '—'),
        cell(job.priority),
        cell(job.cost === null ? '—' : job.cost.toFixed(3)),
        cell(String(job.attempts)),
        cell(age(job.created_at)),
      );
      tr.addEventListener('click', () => void openJob(job.job_id));
      return tr;
    });
    document.querySelector('#jobs-table tbody').replaceChildren(...rows);
  } catch (e) {
    if (e instanceof Unauthorized) askForKey();
  }
}

/** Shows a job, or why it cannot be shown; never rejects. */
function openJob(id) {
  return showJob(id).catch((e) => {
    if (e instanceof Unauthorized) askForKey();
    showJobProblem('load', `could not load job ${id}: ${e.message}`);
  });
}

/**
 * A failure in the job view, in the page rather than the console: `load` (the job itself, cleared
 * once it loads) or `result` (cleared by the next try).
 */
function showJobProblem(kind, text) {
  document.getElementById('job-view').hidden = false;
  const problem = document.getElementById('job-problem');
  problem.textContent = text;
  problem.dataset.kind = kind;
  problem.hidden = false;
}

function clearJobProblem(kind) {
  const problem = document.getElementById('job-problem');
  if (kind === undefined || problem.dataset.kind === kind) problem.hidden = true;
}

async function showJob(id) {
  if (state.selected !== id) clearJobProblem();
  state.selected = id;
  for (const tr of document.querySelectorAll('#jobs-table tbody tr'))
    tr.classList.toggle('selected', tr.dataset.jobId === id);
  const job = await api(`/jobs/${encodeURIComponent(id)}`);
  if (state.selected !== id) return;
  clearJobProblem('load');
  const view = document.getElementById('job-view');
  view.hidden = false;
  document.getElementById('job-id').textContent = job.job_id;
  const fields = [
    ['status', job.status],
    ['route', job.queue ?? '—'],
    ['cost', job.cost === null ? '—' : job.cost.toFixed(3)],
    ['reason', job.reason ?? '—'],
    ['priority', job.priority],
    ['rows', String(job.rows)],
    ['runtime (est.)', `${job.estimated_runtime_sec} s`],
    ['attempts', `${job.attempts} of ${job.max_attempts}`],
  ];
  document
    .getElementById('job-fields')
    .replaceChildren(
      ...fields.flatMap(([k, v]) => [
        Object.assign(document.createElement('dt'), { textContent: k }),
        Object.assign(document.createElement('dd'), { textContent: v }),
      ]),
    );
  const start = Date.parse(job.history[0]?.at ?? job.created_at);
  document.getElementById('job-timeline').replaceChildren(
    ...job.history.map((h) => {
      const li = document.createElement('li');
      li.append(
        Object.assign(document.createElement('span'), { className: `step st-${h.status}`, textContent: h.status }),
      );
      if (h.note) li.append(` — ${h.note}`);
      const time = document.createElement('time');
      time.dateTime = h.at;
      time.textContent = `+${Date.parse(h.at) - start} ms · ${new Date(h.at).toLocaleTimeString()}`;
      li.append(time);
      return li;
    }),
  );
  const error = document.getElementById('job-error');
  error.hidden = !job.error;
  error.textContent = job.error ? `${job.error.code}: ${job.error.message}` : '';
  const button = document.getElementById('job-result-button');
  const link = document.getElementById('job-result-link');
  const pre = document.getElementById('job-result');
  if (pre.dataset.jobId !== job.job_id) pre.hidden = true;
  button.hidden = !job.result_url;
  link.hidden = !job.result_url;
  // The result needs the API key, which a plain link cannot send: both fetch it with the key.
  button.onclick = () =>
    void withResult(job, (result) => {
      pre.textContent = JSON.stringify(result, null, 2);
      pre.dataset.jobId = job.job_id;
      pre.hidden = false;
    });
  link.onclick = (event) => {
    event.preventDefault();
    void withResult(job, (result) => download(`${job.job_id}.json`, JSON.stringify(result, null, 2)));
  };
}

/** Fetches the job's result (with the key) and hands it to `use`; a failure is shown in the job view. */
async function withResult(job, use) {
  clearJobProblem('result');
  try {
    use(await api(job.result_url));
  } catch (e) {
    if (e instanceof Unauthorized) askForKey();
    showJobProblem('result', `could not load the result of job ${job.job_id}: ${e.message}`);
  }
}

/** Saves `text` as a file: the browser's download of an in-memory blob (no second request, no key in a URL). */
function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

document.getElementById('filters').addEventListener('change', () => void refreshJobs());

function start() {
  buildCharts();
  void refresh();
  void refreshJobs();
  setInterval(() => void refresh(), POLL_MS);
  setInterval(() => {
    void refreshJobs();
    if (state.selected) void openJob(state.selected);
  }, JOBS_POLL_MS);
  state.ready = true;
}

start();
