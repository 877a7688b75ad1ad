// What every page's script shares: formatting (the same as the server's), the token for
// state-changing requests, JSON fetches and the "live" marker.

export const token = document.querySelector('meta[name="courier-token"]')?.content ?? '';

export function nanos(ns) {
  if (ns == null || !Number.isFinite(ns) || ns < 0) return '-';
  if (ns < 1e3) return `${ns.toFixed(0)}ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)}µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)}ms`;
  return `${(ns / 1e9).toFixed(2)}s`;
}

export function rate(value) {
  if (value == null || !Number.isFinite(value) || value <= 0) return '0';
  return value < 10 ? value.toFixed(1) : value.toFixed(0);
}

export function percent(ratio) {
  if (ratio == null || !Number.isFinite(ratio) || ratio <= 0) return '0%';
  return ratio < 0.01 ? `${(ratio * 100).toFixed(2)}%` : `${(ratio * 100).toFixed(1)}%`;
}

export function uptime(ms) {
  const s = Math.floor(ms / 1000);
  if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${s}s`;
}

// Builds an element: el('td', {class: 'num'}, 'text', child...). Text is never parsed as HTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value != null) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

export function badge(text, kind) {
  return el('span', { class: `badge ${kind}` }, text);
}

export async function getJson(url, { reveal = false } = {}) {
  const headers = reveal ? { 'X-Courier-Token': token } : {};
  const response = await fetch(url, { headers, credentials: 'same-origin' });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
  return body;
}

export async function postJson(url, payload) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Courier-Token': token },
    body: JSON.stringify(payload),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
  return body;
}

// Shows "live" in the header while updates arrive; "stale" when they stop.
export function markLive(ok, text) {
  const live = document.getElementById('live');
  if (!live) return;
  live.hidden = false;
  live.classList.toggle('stale', !ok);
  live.textContent = text;
}

// Calls `update` now and then every `ms` (at least 1000) while the page is visible.
export function every(ms, update) {
  const period = Math.max(1000, ms);
  let timer = null;
  const tick = async () => {
    try {
      await update();
      markLive(true, `live · ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      markLive(false, `not updating: ${error.message}`);
    }
    timer = setTimeout(tick, period);
  };
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
    } else {
      clearTimeout(timer);
      tick();
    }
  });
  tick();
}

// Shows local times where the server wrote UTC.
export function localTimes(root = document) {
  for (const node of root.querySelectorAll('time[data-ms]')) {
    const ms = Number(node.dataset.ms);
    if (ms > 0) node.textContent = new Date(ms).toLocaleString();
  }
}
