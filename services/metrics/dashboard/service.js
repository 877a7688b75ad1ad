// Service: per-second charts of the collector's history (stage latency mean and p99,
// throughput, error rate) drawn with uPlot, and the workers and stage tables kept current.
import { el, every, getJson, nanos, percent, rate } from './common.js';

const name = new URLSearchParams(location.search).get('name') ?? '';
const palette = ['#2f6fde', '#e8590c', '#2b8a3e', '#c2255c', '#7048e8', '#1098ad', '#e67700', '#5c940d',
  '#d6336c', '#364fc7', '#0ca678', '#868e96', '#f76707', '#9c36b5'];

let uPlot = null;
try {
  ({ default: uPlot } = await import('./vendor/uPlot.esm.js'));
  document.head.append(el('link', { rel: 'stylesheet', href: '/static/vendor/uPlot.min.css' }));
} catch {
  for (const chart of document.querySelectorAll('.chart')) {
    chart.replaceChildren(el('p', { class: 'none' }, 'Charts need uPlot in the dashboard directory (ops/bootstrap, then rebuild).'));
  }
}

const charts = new Map();  // element id → { plot, key }

// Latency charts show the stages a job goes through by default; the client's own encode,
// seal, open and decode are one click away in the legend.
const shownByDefault = (label) => !/^client (encode|seal|open|decode)$/.test(label);

// Powers of ten between min and max: a log axis with a grid line per decade.
function decades(u, axis, min, max) {
  const out = [];
  for (let v = 10 ** Math.floor(Math.log10(Math.max(min, 1))); v <= max * 1.0001; v *= 10) if (v >= min * 0.9999) out.push(v);
  return out;
}

// Draws (or redraws) chart `id` with x = seconds and `lines` = [{label, values}].
// `floor`: the y range's least top (so a flat zero line is not stretched over nothing).
function draw(id, times, lines, format, { log = false, floor = 1 } = {}) {
  const box = document.getElementById(id);
  const points = lines.reduce((n, line) => n + line.values.filter((v) => v != null).length, 0);
  box.dataset.points = String(points);
  if (!uPlot) return;
  if (points === 0) {
    charts.get(id)?.plot.destroy();
    charts.delete(id);
    box.replaceChildren(el('p', { class: 'none' }, 'no data yet'));
    return;
  }
  const key = lines.map((line) => line.label).join('|');
  const data = [times, ...lines.map((line) => line.values)];
  const held = charts.get(id);
  if (held && held.key === key) {
    held.plot.setData(data);
    return;
  }
  held?.plot.destroy();
  box.replaceChildren();
  const plot = new uPlot({
    width: Math.max(300, box.clientWidth),
    height: 240,
    scales: { x: { time: true }, y: log ? { distr: 3 } : { range: (u, min, max) => [0, Math.max(max * 1.1, floor)] } },
    // uPlot hands null for the labels it leaves out where they would crowd.
    axes: [{ space: 80 }, { values: (u, splits) => splits.map((v) => (v == null ? '' : format(v))), size: 64,
      ...(log ? { splits: decades } : {}) }],
    series: [{}, ...lines.map((line, i) => ({
      label: line.label, stroke: palette[i % palette.length], width: 1.5, spanGaps: false,
      show: !log || shownByDefault(line.label), value: (u, v) => (v == null ? '-' : format(v)),
    }))],
    legend: { live: true },
  }, data, box);
  charts.set(id, { plot, key });
}

function fillTable(id, rows, columns, empty) {
  const tbody = document.querySelector(`#${id} tbody`);
  tbody.replaceChildren();
  if (rows.length === 0) tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: columns }, empty)));
  for (const cells of rows) tbody.append(el('tr', {}, ...cells.map((cell) => el('td', {}, cell))));
}

function render(answer) {
  const { history } = answer;
  const times = history.t.map((ms) => ms / 1000);
  const label = (s) => `${s.process} ${s.stage}`;
  draw('chart-mean', times, history.series.map((s) => ({ label: label(s), values: s.mean_ns })), nanos, { log: true });
  draw('chart-p99', times, history.series.map((s) => ({ label: label(s), values: s.p99_ns })), nanos, { log: true });

  // A job is counted where the broker answered it (dispatch), else where a worker opened it.
  const find = (process, stage) => history.series.find((s) => s.process === process && s.stage === stage);
  const basis = find('broker', 'dispatch') ?? find('worker', 'open') ?? history.series[0];
  // Reports count in the second they arrive, so a reporter's second can fall into the
  // next one: rates are averaged over three seconds, which keeps a late report from
  // drawing a dip to zero and a spike.
  const smooth = (values) => values.map((v, i) => {
    const window = values.slice(Math.max(0, i - 2), i + 1).filter((x) => x != null);
    return window.length ? window.reduce((a, b) => a + b, 0) / window.length : null;
  });
  const jobs = smooth(times.map((_, i) => (basis ? (basis.count[i] ?? 0) + (basis.errors[i] ?? 0) : null)));
  const failed = smooth(times.map((_, i) => history.series
    .filter((s) => s.process === 'worker' || s === basis)
    .reduce((n, s) => n + (s.errors[i] ?? 0), 0)));
  draw('chart-rate', times, [{ label: 'jobs/s', values: jobs }, { label: 'failed/s', values: failed }], rate, { floor: 1 });
  draw('chart-errors', times, [{
    label: 'error rate', values: jobs.map((n, i) => (n > 0 ? Math.min(1, failed[i] / n) : (basis ? 0 : null))),
  }], percent, { floor: 0.05 });

  fillTable('workers', answer.workers.map((w) => [
    w.host ? `${w.host}${w.instance ? ` (${w.instance})` : ''}` : '-', String(w.pid), String(w.capacity), String(w.in_flight),
    w.keys.length ? el('span', {}, ...w.keys.map((k) => el('code', {}, `${k.id}:${k.fingerprint}`))) : '-',
    el('code', {}, w.broker),
  ]), 6, 'no worker serves it now');
  fillTable('stages', answer.stages.map((s) => [
    s.group || '-', s.process, s.stage, el('span', { class: 'num' }, rate(s.rate)), nanos(s.mean_ns), nanos(s.p99_ns),
    percent(s.error_ratio),
  ]), 7, 'no stage timings reported yet');
}

every(1000, async () => render(await getJson(`/api/service?name=${encodeURIComponent(name)}`)));
window.addEventListener('resize', () => {
  for (const [id, { plot }] of charts) plot.setSize({ width: Math.max(300, document.getElementById(id).clientWidth), height: 240 });
});
