// Overview: the server rendered the tables; this keeps them current, once a second.
import { badge, el, every, getJson, nanos, percent, rate, uptime } from './common.js';

function fill(tbody, rows, columns, empty) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: columns }, empty)));
    return;
  }
  for (const cells of rows) tbody.append(el('tr', {}, ...cells.map((cell) => el('td', {}, cell))));
}

const num = (text, extra = '') => el('span', { class: `num ${extra}`.trim() }, text);

function render(overview) {
  const problem = document.getElementById('problem');
  problem.hidden = !overview.problem;
  problem.textContent = overview.problem ?? '';

  fill(document.querySelector('#brokers tbody'), overview.brokers.map((broker) => [
    el('code', {}, broker.endpoint),
    badge(broker.health, broker.health === 'up' ? 'ok' : broker.health === 'down' ? 'bad' : 'warn'),
    broker.uptime_ms != null ? uptime(broker.uptime_ms) : '-',
    num(rate(broker.jobs_per_s)),
  ]), 4, 'no broker answered yet');

  fill(document.querySelector('#services tbody'), overview.services.map((service) => {
    const count = (key) => (service[key] != null ? num(String(service[key])) : '-');
    const latency = (key) => (service[key] != null
      ? el('span', { class: 'num', title: `${service.latency_stage}, last minute` }, nanos(service[key]))
      : '-');
    return [
      el('a', { href: `/service?name=${encodeURIComponent(service.name)}` }, service.name),
      count('workers'), count('queued'), count('in_flight'),
      num(rate(service.jobs_per_s)),
      num(percent(service.error_ratio), service.error_ratio > 0 ? 'bad' : ''),
      latency('p50_ns'), latency('p99_ns'),
    ];
  }), 8, 'no service yet');

  const collector = document.getElementById('collector');
  if (collector && overview.collector) {
    const c = overview.collector;
    collector.textContent = `Collector up ${uptime(c.uptime_ms)}, ${c.reports} reports from ${c.reporters} processes. `
      + 'Jobs/s and errors: the brokers\' answers over the last 10 s; p50/p99: the last minute.';
  }
}

every(1000, async () => render(await getJson('/api/overview')));
