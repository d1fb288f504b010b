// gradientd's dashboard: polls the JSON API once a second and draws it.
// With --auth-file the API wants "Authorization: Bearer TOKEN": the token
// comes from the URL fragment (#token=..., which browsers never send) or
// the form, and is kept in sessionStorage for this tab only.
'use strict';

const POLL_MS = 1000;
const TOKEN_KEY = 'gradientd-token';

function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, '', location.pathname + location.search);
}

class Refused extends Error {}

async function apiGet(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: 'Bearer ' + token } : {};
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (response.status === 401 || response.status === 403) {
    showAuth(token ? 'The server refused this token (HTTP ' + response.status + ').'
                   : 'This server needs a token (HTTP ' + response.status + ').');
    throw new Refused();
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? (body.error.message || body.error) : response.statusText;
    throw new Error(message);
  }
  document.getElementById('auth').hidden = true;
  return body;
}

function showAuth(message) {
  document.getElementById('auth-message').textContent = message;
  document.getElementById('auth').hidden = false;
}

function setupAuthForm() {
  document.getElementById('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = document.getElementById('auth-token').value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
    document.getElementById('auth').hidden = true;
  });
}

function setStatus(text) { document.getElementById('status').textContent = text; }

function formatNumber(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return '–';
  return Number(value).toPrecision(6).replace(/\.?0+(e|$)/, '$1');
}

function formatLine(line) {
  if (!line) return '–';
  return 'y = ' + formatNumber(line.m) + ' x + ' + formatNumber(line.b);
}

// Polls `tick` every POLL_MS, one request at a time.
function poll(tick) {
  const run = async () => {
    try {
      await tick();
      setStatus('updated ' + new Date().toLocaleTimeString());
    } catch (error) {
      setStatus(error instanceof Refused ? 'refused' : 'error: ' + error.message);
    }
    setTimeout(run, POLL_MS);
  };
  run();
}

// The list API's rows, whatever spelling of the field names it uses.
function field(object, snake, camel) {
  if (!object) return undefined;
  return object[snake] !== undefined ? object[snake] : object[camel];
}

// ---- the list of series --------------------------------------------------

// One page of the list at a time (PAGE_SIZE rows, or ?page_size= in the
// address), with previous/next and a prefix filter, so a server with 10^6
// series costs one API page a poll. `tokens` holds the page tokens of the
// pages before this one.
const PAGE_SIZE = 100;

function startListPage() {
  const previous = new Map();  // series -> {n, time} at the last poll
  const parameters = new URLSearchParams(location.search);
  const pageSize = Number(parameters.get('page_size')) || PAGE_SIZE;
  // `moves` counts page changes: a reply to a request made before the last
  // one is dropped.
  const state = { prefix: parameters.get('prefix') || '', tokens: [], token: '', next: '',
                  moves: 0 };
  const prefixInput = document.getElementById('prefix');
  prefixInput.value = state.prefix;
  const refresh = () => { state.moves += 1; tick().catch((error) => setStatus('error: ' + error.message)); };
  document.getElementById('prefix-form').addEventListener('submit', (event) => {
    event.preventDefault();
    Object.assign(state, { prefix: prefixInput.value, tokens: [], token: '', next: '' });
    refresh();
  });
  document.getElementById('next').addEventListener('click', () => {
    if (!state.next) return;
    state.tokens.push(state.token);
    state.token = state.next;
    refresh();
  });
  document.getElementById('previous').addEventListener('click', () => {
    if (state.tokens.length === 0) return;
    state.token = state.tokens.pop();
    refresh();
  });
  const tick = async () => {
    const query = new URLSearchParams({ page_size: String(pageSize) });
    if (state.prefix) query.set('prefix', state.prefix);
    if (state.token) query.set('page_token', state.token);
    const moves = state.moves;
    const body = await apiGet('/api/v1/series?' + query);
    if (moves !== state.moves) return;
    const rows = Array.isArray(body) ? body : (body.series || []);
    state.next = field(body, 'next_page_token', 'nextPageToken') || '';
    const now = performance.now();
    const tbody = document.getElementById('series-rows');
    tbody.replaceChildren(...rows.map((row) => listRow(row, previous, now)));
    const first = state.tokens.length * pageSize;
    document.getElementById('empty').hidden = rows.length > 0 || first > 0;
    document.getElementById('previous').disabled = state.tokens.length === 0;
    document.getElementById('next').disabled = !state.next;
    document.getElementById('page-info').textContent =
      rows.length === 0 ? '' : 'series ' + (first + 1) + '–' + (first + rows.length);
  };
  poll(tick);
}

function listRow(row, previous, now) {
  const name = field(row, 'series', 'series') || field(row, 'name', 'name');
  const n = Number(field(row, 'n', 'n') || 0);
  // Points a second between the last two polls.
  const before = previous.get(name);
  const rate = before && now > before.time ? (n - before.n) / ((now - before.time) / 1000) : null;
  previous.set(name, { n, time: now });
  const cells = [
    link(name), number(n), formatLine(field(row, 'least_squares', 'leastSquares')),
    formatLine(field(row, 'descent', 'descent')),
    formatNumber(field(row, 'r_squared', 'rSquared')),
    rate === null ? '–' : formatNumber(rate) + ' points/s',
  ];
  const tr = document.createElement('tr');
  tr.dataset.series = name;
  for (const cell of cells) {
    const td = document.createElement('td');
    if (cell instanceof Node) td.append(cell); else td.textContent = cell;
    tr.append(td);
  }
  return tr;
}

function link(name) {
  const a = document.createElement('a');
  a.href = '/series/' + encodeURIComponent(name);
  a.textContent = name;
  return a;
}

function number(n) { return String(n); }

// ---- one series ----------------------------------------------------------

function startSeriesPage() {
  const name = decodeURIComponent(location.pathname.slice('/series/'.length));
  document.getElementById('series-name').textContent = name;
  document.title = 'gradientd: ' + name;
  const select = document.getElementById('view');
  select.value = new URLSearchParams(location.search).get('view') || 'all';
  select.addEventListener('change', () => {
    history.replaceState(null, '', location.pathname + '?view=' + select.value);
  });
  const charts = { scatter: scatterChart(), history: historyChart() };
  window.gradientdDashboard = charts;
  const base = '/api/v1/series/' + encodeURIComponent(name);
  poll(async () => {
    const view = '?view=' + encodeURIComponent(select.value);
    const sample = await apiGet(base + '/sample' + view);
    const history = await apiGet(base + '/history' + view);
    drawSample(charts.scatter, sample);
    drawHistory(charts.history, history.history);
  });
}

function scatterChart() {
  const line = (label, color) => ({
    type: 'line', label, data: [], borderColor: color, backgroundColor: color,
    pointRadius: 0, borderWidth: 2, parsing: false,
  });
  return new Chart(document.getElementById('scatter'), {
    type: 'scatter',
    data: {
      datasets: [
        { label: 'points (sample)', data: [], backgroundColor: 'rgba(36, 71, 107, 0.55)',
          pointRadius: 3, parsing: false },
        line('least squares', '#d9822b'),
        line('descent', '#2b9d4a'),
      ],
    },
    options: {
      animation: false, maintainAspectRatio: false,
      scales: { x: { type: 'linear', title: { display: true, text: 'x' } },
                y: { title: { display: true, text: 'y' } } },
    },
  });
}

function historyChart() {
  const series = (label, color, axis) => ({
    label, data: [], borderColor: color, backgroundColor: color, pointRadius: 0,
    borderWidth: 2, yAxisID: axis, parsing: false,
  });
  return new Chart(document.getElementById('history'), {
    type: 'line',
    data: { datasets: [series('loss', '#24476b', 'loss'),
                       series('gradient norm', '#c33', 'gradient')] },
    options: {
      animation: false, maintainAspectRatio: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: 'seconds ago' } },
        loss: { type: 'logarithmic', position: 'left', title: { display: true, text: 'loss' } },
        gradient: { type: 'logarithmic', position: 'right', grid: { drawOnChartArea: false },
                    title: { display: true, text: 'gradient norm' } },
      },
    },
  });
}

// The x range the lines span: the sample's, or around the mean without one.
function xRange(points) {
  if (points.length === 0) return null;
  let low = Infinity;
  let high = -Infinity;
  for (const [x] of points) { low = Math.min(low, x); high = Math.max(high, x); }
  if (low === high) { low -= 1; high += 1; }
  return [low, high];
}

function lineData(line, range) {
  if (!line || !range) return [];
  return range.map((x) => ({ x, y: line.m * x + line.b }));
}

function drawSample(chart, sample) {
  const range = xRange(sample.points);
  const [points, leastSquares, descent] = chart.data.datasets;
  points.data = sample.points.map(([x, y]) => ({ x, y }));
  leastSquares.data = lineData(sample.least_squares, range);
  descent.data = lineData(sample.descent, range);
  chart.update();
  const canvas = chart.canvas;
  canvas.dataset.n = sample.n;
  canvas.dataset.plotted = sample.points.length;
  canvas.dataset.leastSquaresM = sample.least_squares ? sample.least_squares.m : '';
  canvas.dataset.leastSquaresB = sample.least_squares ? sample.least_squares.b : '';
  canvas.dataset.descentM = sample.descent.m;
  canvas.dataset.descentB = sample.descent.b;
  document.getElementById('n').textContent = sample.n;
  document.getElementById('least-squares').textContent = formatLine(sample.least_squares);
  document.getElementById('descent').textContent = formatLine(sample.descent);
  document.getElementById('r-squared').textContent = formatNumber(sample.r_squared);
  document.getElementById('sampled').textContent = sample.sampled
    ? sample.points.length + ' of the ' + sample.seen + ' points seen since tracking began'
    : 'no sample: the server tracks as many series as it may';
}

function drawHistory(chart, entries) {
  const last = entries.length ? entries[entries.length - 1].t : 0;
  const positive = (value) => (value > 0 ? value : null);
  const [loss, gradient] = chart.data.datasets;
  loss.data = entries.map((e) => ({ x: e.t - last, y: positive(e.loss) }));
  gradient.data = entries.map((e) => ({ x: e.t - last, y: positive(e.gradient_norm) }));
  chart.update();
}

takeTokenFromFragment();
setupAuthForm();
if (document.body.dataset.page === 'series') startSeriesPage(); else startListPage();
