// The playground's start: read what the server holds, then wire the three sections.
import { getJson, guarded, showError } from './api.js';
import { initWatch, selectedDim } from './watch.js';
import { initTurn, currentPlan, addSlider } from './turn.js';
import { initCompare } from './compare.js';

async function start() {
  const meta = await getJson('/v1/critdim/dims');
  const m = meta.model;
  const crit = meta.critical.domains.reduce((n, d) => n + d.dims.length, 0);
  document.getElementById('model-line').textContent =
    `${m.id}: ${m.arch}, ${m.n_layer} blocks, n_embd ${m.n_embd}, ${m.n_ctx} positions per request; ` +
    `${crit} critical dimension(s) in ${meta.critical.domains.length} domain(s)` +
    (meta.critical.path ? ` from ${meta.critical.path}` : '') + `; ${meta.stats.length} stats file(s).`;
  initWatch(meta, currentPlan);
  initTurn(meta);
  initCompare(meta);
  document.getElementById('dim-to-slider').addEventListener('click', () => {
    const d = selectedDim();
    if (d !== null) {
      addSlider(d, `dim ${d}`);
      document.getElementById(`slider-${d}`).focus();
    }
  });
  document.body.dataset.ready = '1';
}

guarded(null, start).then(() => {
  if (!document.body.dataset.ready) showError(document.getElementById('error').textContent ||
                                              'The page could not start: see the message above');
});
