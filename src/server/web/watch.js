// Watch: the token x dimension heatmap of one block's resid_post, the per-token values of the
// selected dimension under the text, and its layer profile (max |x| per block).
import { postJson, guarded, fmt } from './api.js';
import { barChart } from './charts.js';

let current = null;      // the last /v1/critdim/activations answer
let selected = -1;       // column index of the selected dimension
let submittedAt = 0;

// Red for positive, blue for negative, intensity |x| / scale.
function cellColour(x, scale) {
  const t = scale > 0 ? Math.min(1, Math.abs(x) / scale) : 0;
  const light = Math.round(255 - 180 * t);
  return x >= 0 ? `rgb(255,${light},${light})` : `rgb(${light},${light},255)`;
}

function visible(text) {
  return text.replace(/\n/g, '\\n').replace(/\t/g, '\\t') || '∅';
}

function columnScale(a, c) {
  const first = a.skip_first && a.tokens.length > 1 ? 1 : 0;
  let m = 0;
  for (let t = first; t < a.tokens.length; ++t) m = Math.max(m, Math.abs(a.values[t][c]));
  return m;
}

function renderHeatmap(a) {
  const table = document.getElementById('heatmap');
  table.replaceChildren();
  const caption = table.createCaption();
  caption.textContent = `${a.site}: ${a.tokens.length} tokens × ${a.dims.length} dimensions (value of x at each token)`;
  const head = table.createTHead().insertRow();
  const corner = document.createElement('th');
  corner.scope = 'col';
  corner.textContent = 'token';
  head.appendChild(corner);
  const scales = a.dims.map((_, c) => columnScale(a, c));
  a.dims.forEach((d, c) => {
    const th = document.createElement('th');
    th.scope = 'col';
    th.dataset.dim = d.dim;
    const b = document.createElement('button');
    b.type = 'button';
    const crit = d.critical.length > 0;
    b.textContent = (crit ? '★ ' : '') + d.dim;
    b.title = `dim ${d.dim}: max |x| ${fmt(d.max_abs)}` + (crit ? `; critical (${d.critical.join(', ')})` : '');
    b.setAttribute('aria-label', `Inspect dimension ${d.dim}` + (crit ? `, critical for ${d.critical.join(', ')}` : ''));
    b.addEventListener('click', () => select(c));
    if (crit) th.classList.add('critical');
    th.appendChild(b);
    head.appendChild(th);
  });
  const body = table.createTBody();
  const first = a.skip_first && a.tokens.length > 1 ? 1 : 0;
  a.tokens.forEach((tok, t) => {
    const tr = body.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = `${t} ${visible(tok.text)}`;
    tr.appendChild(th);
    a.values[t].forEach((x, c) => {
      const td = tr.insertCell();
      td.textContent = fmt(x, 1);
      td.style.background = cellColour(x, scales[c]);
      td.dataset.dim = a.dims[c].dim;
      td.dataset.pos = t;
      if (t >= first && scales[c] > 0 && Math.abs(x) >= 0.5 * scales[c]) td.classList.add('hot');
    });
  });
  table.hidden = false;
  document.getElementById('heatmap-legend').hidden = false;
}

function select(c) {
  const a = current;
  selected = c;
  const d = a.dims[c];
  document.querySelectorAll('#heatmap .selected').forEach((e) => e.classList.remove('selected'));
  document.querySelectorAll(`#heatmap [data-dim="${d.dim}"]`).forEach((e) => e.classList.add('selected'));
  document.getElementById('dim-detail').hidden = false;
  document.getElementById('dim-detail-h').textContent =
    `Dimension ${d.dim}` + (d.critical.length ? ` (critical: ${d.critical.join(', ')})` : '') +
    ` at ${a.site}: max |x| ${fmt(d.max_abs)}`;
  const scale = columnScale(a, c);
  const strip = document.getElementById('dim-tokens');
  strip.replaceChildren();
  a.tokens.forEach((tok, t) => {
    const x = a.values[t][c];
    const span = document.createElement('span');
    span.className = 'tok';
    span.dataset.pos = t;
    span.style.background = cellColour(x, scale);
    span.title = `token ${t} “${tok.text}”: x = ${fmt(x)}`;
    span.textContent = visible(tok.text);
    const small = document.createElement('small');
    small.textContent = fmt(x, 1);
    span.appendChild(small);
    strip.appendChild(span);
  });
  document.getElementById('profile-caption').textContent =
    `Layer profile of dimension ${d.dim}: max |x| over the prompt's tokens${a.skip_first ? ' (position 0 left out)' : ''}, per block (resid_post); the shown block in red`;
  const profile = document.getElementById('profile');
  profile.replaceChildren(barChart(d.profile.map((v, l) => ({ label: String(l), value: v, here: l === a.layer })),
                                   { xLabel: 'block', yLabel: 'max |x|' }));
}

export function selectedDim() {
  return current && selected >= 0 ? current.dims[selected].dim : null;
}

export function initWatch(meta, currentPlan) {
  const layer = document.getElementById('watch-layer');
  layer.max = meta.model.n_layer - 1;
  document.getElementById('watch-chat').disabled = !meta.model.chat;
  const form = document.getElementById('watch-form');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submittedAt = performance.now();
    const status = document.getElementById('watch-status');
    guarded(document.getElementById('watch-submit'), async () => {
      status.textContent = 'Running the prompt…';
      const body = {
        prompt: document.getElementById('watch-prompt').value,
        layer: Number(layer.value),
        top: Number(document.getElementById('watch-top').value),
        chat: document.getElementById('watch-chat').checked,
        skip_first: document.getElementById('watch-skip-first').checked,
      };
      const keep = selectedDim();
      if (keep !== null) body.dims = [keep];
      if (document.getElementById('watch-steered').checked) {
        const plan = currentPlan();
        if (plan) body.steering = plan;
      }
      const a = await postJson('/v1/critdim/activations', body);
      current = a;
      renderHeatmap(a);
      let c = keep === null ? -1 : a.dims.findIndex((d) => d.dim === keep);
      if (c < 0) c = Math.max(0, a.dims.findIndex((d) => d.critical.length > 0));
      select(c);
      const ms = performance.now() - submittedAt;
      document.body.dataset.heatmapMs = ms.toFixed(1);
      status.textContent = `${a.site}${a.steered ? ' under the plan' : ''}: ${a.tokens.length} tokens, ` +
        `computed in ${fmt(a.compute_ms, 1)} ms, shown ${fmt(ms, 1)} ms after submitting.`;
    }).then(() => { if (!current) status.textContent = ''; });
  });
}
