// Errors: the page works without script for reading; this adds the replay buttons (each
// asks for confirmation) and "Show payload".
import { getJson, localTimes, postJson } from './common.js';

localTimes();
const notice = document.getElementById('action-result');

function say(text, ok = true) {
  notice.hidden = false;
  notice.className = ok ? 'notice' : 'problem';
  notice.textContent = text;
}

function describe(result) {
  const parts = [`error ${result.id}: ${result.outcome}`];
  if (result.how) parts.push(`(${result.how}`, `job ${result.job_id})`);
  if (result.message) parts.push(`— ${result.message}`);
  return parts.join(' ');
}

async function run(button, question, action) {
  if (!window.confirm(question)) return;
  button.disabled = true;
  say('replaying…');
  try {
    say(await action());
  } catch (error) {
    say(`replay failed: ${error.message}`, false);
  } finally {
    button.disabled = false;
  }
}

for (const button of document.querySelectorAll('button[data-action="replay"]')) {
  const id = Number(button.dataset.id);
  button.addEventListener('click', () => run(button,
    `Replay the job of error ${id}? It runs again on a worker of its service.`,
    async () => describe(await postJson('/api/replay', { id }))));
}

for (const button of document.querySelectorAll('button[data-action="replay-group"]')) {
  const { fingerprint, count } = button.dataset;
  button.addEventListener('click', () => run(button,
    `Replay every dead-lettered job of this group (${count} reports, at most 100 newest)? Each runs again on a worker.`,
    async () => {
      const answer = await postJson('/api/replay', { fingerprint });
      const lines = answer.results.map((result) => (result.error ? `error ${result.id}: ${result.error}` : describe(result)));
      return `${answer.replayed} replayed, ${answer.skipped} skipped (not dead letters, or the same job again)`
        + (lines.length ? `: ${lines.join('; ')}` : '');
    }));
}

for (const button of document.querySelectorAll('button[data-action="reveal"]')) {
  button.addEventListener('click', async () => {
    const out = document.getElementById('payload');
    button.disabled = true;
    try {
      const row = await getJson(`/api/error?id=${encodeURIComponent(button.dataset.id)}&reveal=1`, { reveal: true });
      out.textContent = row.payload !== undefined ? JSON.stringify(row.payload, null, 2) : row.payload_problem;
    } catch (error) {
      out.textContent = error.message;
    }
    out.hidden = false;
    button.disabled = false;
  });
}
