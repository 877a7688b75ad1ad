// Jobs: the page works without script; this adds "Show result" (a reply is a payload: shown
// only when asked, and only if the collector holds its key).
import { getJson, localTimes } from './common.js';

localTimes();
for (const button of document.querySelectorAll('button[data-action="reveal-result"]')) {
  button.addEventListener('click', async () => {
    const out = document.getElementById('payload');
    button.disabled = true;
    try {
      const job = await getJson(`/api/job?id=${encodeURIComponent(button.dataset.id)}&reveal=1`, { reveal: true });
      out.textContent = job.result !== undefined ? JSON.stringify(job.result, null, 2) : 'no result is kept';
    } catch (error) {
      out.textContent = error.message;
    }
    out.hidden = false;
    button.disabled = false;
  });
}
