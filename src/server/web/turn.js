// Turn: sliders on critical dimensions and on a whole-vector direction form a steering plan
// (docs/steering.md), shown editable as JSON; the box is what every request sends. Generations
// with and without it stream side by side; a sweep runs the prompt at several alphas.
import { postJson, postBlob, streamCompletion, completionBody, download, guarded, showError, ServerError, fmt }
  from './api.js';

let meta = null;
let direction = null;  // interventions of the loaded whole-vector direction
const sliders = [];    // {dim, input, number}

// "all", "3", "2-5", "1,4,7" -> the plan's "layers" value.
function parseLayers(text) {
  const t = text.trim();
  if (t === 'all' || t === '') return 'all';
  const range = t.match(/^(\d+)\s*-\s*(\d+)$/);
  if (range) return { from: Number(range[1]), to: Number(range[2]) };
  if (/^\d+(\s*,\s*\d+)*$/.test(t)) return t.split(',').map((x) => Number(x.trim()));
  throw new ServerError(`Blocks steered: “${text}” is not “all”, a block, a range A-B or a list`);
}

function planFromKnobs() {
  const layers = parseLayers(document.getElementById('turn-layers').value);
  const positions = document.getElementById('turn-positions').value;
  const interventions = [];
  const active = sliders.filter((s) => Number(s.input.value) !== 0);
  if (active.length)
    interventions.push({ op: 'add', point: 'resid_post', layers, dims: active.map((s) => s.dim),
                         values: [active.map((s) => Number(s.input.value))], positions,
                         comment: 'playground sliders' });
  const alpha = Number(document.getElementById('whole-alpha').value);
  if (direction && alpha !== 0)
    for (const iv of direction)
      interventions.push({ ...iv, alpha: alpha * (iv.alpha ?? 1), positions, comment: 'whole-vector direction' });
  return {
    format: 'critdim-steering-plan', version: 1,
    model: { arch: meta.model.arch, n_embd: meta.model.n_embd, n_layer: meta.model.n_layer },
    alpha: 1, comment: 'made with the critdim playground', interventions,
  };
}

// Indented JSON with every list of numbers on one line (a whole-vector plan has thousands).
function planText(plan) {
  return JSON.stringify(plan, null, 2).replace(/\[[\s\d.eE+,-]*\]/g, (m) => m.replace(/\s+/g, ''));
}

function refreshPlan() {
  try {
    document.getElementById('plan-json').value = planText(planFromKnobs());
    document.getElementById('plan-status').textContent = '';
  } catch (e) {
    document.getElementById('plan-status').textContent = e.message;
  }
}

// The plan in the box, or null when it steers nothing. Text that is not JSON is the page's
// refusal; anything else is the server's to judge.
export function currentPlan() {
  const text = document.getElementById('plan-json').value;
  let plan;
  try {
    plan = JSON.parse(text);
  } catch (e) {
    throw new ServerError(`The plan box is not valid JSON: ${e.message}`);
  }
  if (plan && Array.isArray(plan.interventions) && plan.interventions.length === 0) return null;
  return plan;
}

function addSlider(dim, label) {
  if (sliders.some((s) => s.dim === dim)) return;
  const row = document.createElement('div');
  row.className = 'slider';
  const id = `slider-${dim}`;
  const lab = document.createElement('label');
  lab.htmlFor = id;
  lab.textContent = label;
  const input = document.createElement('input');
  Object.assign(input, { type: 'range', id, min: -20, max: 20, step: 0.5, value: 0 });
  input.dataset.dim = dim;
  const number = document.createElement('input');
  Object.assign(number, { type: 'number', min: -1000, max: 1000, step: 0.5, value: 0 });
  number.setAttribute('aria-label', `${label}: value added`);
  const sync = (from, to) => () => {
    to.value = from.value;
    input.setAttribute('aria-valuetext', `${Number(input.value)} added to dimension ${dim}`);
    refreshPlan();
  };
  input.addEventListener('input', sync(input, number));
  number.addEventListener('input', sync(number, input));
  row.append(lab, input, number);
  document.getElementById('sliders').appendChild(row);
  sliders.push({ dim, input, number });
}

async function generateBoth() {
  const prompt = document.getElementById('gen-prompt').value;
  const chat = document.getElementById('gen-chat').checked;
  const maxTokens = Number(document.getElementById('gen-max').value);
  const temperature = Number(document.getElementById('gen-temp').value);
  const plan = currentPlan();
  const outs = { plain: document.getElementById('out-plain'), steered: document.getElementById('out-steered') };
  delete document.body.dataset.genDone;
  delete document.body.dataset.firstSteeredMs;
  const started = performance.now();
  const run = async (which, steering) => {
    const out = outs[which], info = document.getElementById(`out-${which}-info`);
    out.textContent = '';
    info.textContent = 'waiting for the first token…';
    const body = completionBody(prompt, chat, maxTokens, temperature);
    if (steering) body.steering = { plan: steering };
    let first = null, n = 0;
    const last = await streamCompletion(body, (text) => {
      if (first === null) {
        first = performance.now() - started;
        if (which === 'steered') document.body.dataset.firstSteeredMs = first.toFixed(1);
      }
      out.textContent += text;
      info.textContent = `${++n} tokens…`;
    });
    const total = performance.now() - started;
    info.textContent = `${last.usage.completion_tokens} tokens; first after ${fmt(first, 0)} ms, all after ` +
      `${fmt(total, 0)} ms; finish: ${last.choices[0].finish_reason}` +
      (last.steering ? `; steps: ${last.steering.steps.join('; ')}` : steering ? '' : '; no steering');
  };
  const results = await Promise.allSettled([run('plain', null), run('steered', plan)]);
  document.body.dataset.genDone = '1';
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    for (const [which, r] of [['plain', results[0]], ['steered', results[1]]])
      if (r.status === 'rejected') document.getElementById(`out-${which}-info`).textContent = r.reason.message;
    throw failed.reason;
  }
}

async function sweep() {
  const plan = currentPlan();
  if (!plan) throw new ServerError('The alpha sweep needs a plan: move a slider or write one in the box');
  const alphas = document.getElementById('sweep-alphas').value.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!alphas.length || alphas.some((a) => !Number.isFinite(a)))
    throw new ServerError('Alphas: give numbers separated by commas');
  const table = document.getElementById('sweep-table');
  const tbody = table.tBodies[0];
  tbody.replaceChildren();
  const prompt = document.getElementById('gen-prompt').value;
  const chat = document.getElementById('gen-chat').checked;
  const body = completionBody(prompt, chat, Number(document.getElementById('gen-max').value),
                              Number(document.getElementById('gen-temp').value));
  const rows = alphas.map((a) => {
    const tr = tbody.insertRow();
    tr.insertCell().textContent = fmt(a, 2);
    tr.insertCell().textContent = '…';
    tr.insertCell().textContent = '';
    return tr;
  });
  table.hidden = false;
  // Sent together: the server decodes them in one batch, each with its own alpha.
  const started = performance.now();
  await Promise.all(alphas.map(async (a, i) => {
    const r = await postJson(chat ? '/v1/chat/completions' : '/v1/completions', { ...body, steering: { plan, alpha: a } });
    const choice = r.choices[0];
    rows[i].cells[1].textContent = chat ? choice.message.content : choice.text;
    rows[i].cells[2].textContent = fmt(performance.now() - started, 0);
  }));
  document.body.dataset.sweepDone = '1';
}

export function initTurn(m) {
  meta = m;
  // Blocks 1.. by default: llama.cpp's control vectors cannot address block 0, so the plan stays exportable.
  if (meta.model.n_layer > 1) document.getElementById('turn-layers').value = `1-${meta.model.n_layer - 1}`;
  const seen = new Set();
  for (const d of meta.critical.domains)
    for (const c of d.dims) {
      if (seen.has(c.dim)) continue;
      seen.add(c.dim);
      const others = meta.critical.domains.filter((o) => o.dims.some((x) => x.dim === c.dim)).map((o) => o.name);
      addSlider(c.dim, `dim ${c.dim} · ${others.join(', ')} (rank ${c.rank})`);
    }
  if (!sliders.length)
    document.getElementById('sliders').textContent = 'No critical dimensions loaded (start the server with --dims critical.json); add one below.';
  const addDim = document.getElementById('add-dim');
  addDim.max = meta.model.n_embd - 1;
  document.getElementById('add-dim-button').addEventListener('click', () => {
    const d = Number(addDim.value);
    if (addDim.value === '' || !Number.isInteger(d) || d < 0 || d >= meta.model.n_embd)
      return showError(`Add a dimension: give a whole number from 0 to ${meta.model.n_embd - 1}`);
    if (!seen.size && !sliders.length) document.getElementById('sliders').textContent = '';
    addSlider(d, `dim ${d}`);
  });
  document.getElementById('reset-sliders').addEventListener('click', () => {
    for (const s of sliders) s.input.value = s.number.value = 0;
    document.getElementById('whole-alpha').value = 0;
    document.getElementById('whole-alpha-out').value = '0';
    refreshPlan();
  });
  for (const id of ['turn-layers', 'turn-positions']) document.getElementById(id).addEventListener('change', refreshPlan);

  const pos = document.getElementById('whole-pos'), neg = document.getElementById('whole-neg');
  for (const s of meta.stats) {
    pos.add(new Option(`${s.name} (${s.domain}, ${s.n_docs} docs)`, s.name));
    neg.add(new Option(`${s.name} (${s.domain}, ${s.n_docs} docs)`, s.name));
  }
  if (meta.stats.length > 1) neg.selectedIndex = 1;
  const whole = document.getElementById('whole-alpha');
  if (!meta.stats.length) {
    document.getElementById('whole-load').disabled = true;
    document.getElementById('whole-status').textContent = 'No stats files loaded (start the server with --stats DIR).';
  }
  document.getElementById('whole-load').addEventListener('click', (ev) => guarded(ev.target, async () => {
    // The direction covers the blocks the sliders steer when they are a range (else every block).
    const layers = parseLayers(document.getElementById('turn-layers').value);
    const body = { pos: pos.value, neg: neg.value };
    if (layers.from !== undefined) body.layers = layers;
    const r = await postJson('/v1/critdim/direction', body);
    direction = r.plan.interventions;
    whole.disabled = false;
    document.getElementById('whole-status').textContent =
      `Loaded: ${pos.value} − ${neg.value} at blocks ${layers.from !== undefined ? `${layers.from}-${layers.to}` : 'all'}, ` +
      'every dimension (α multiplies it).';
    refreshPlan();
  }));
  whole.addEventListener('input', () => {
    document.getElementById('whole-alpha-out').value = whole.value;
    refreshPlan();
  });

  document.getElementById('plan-download').addEventListener('click', () => {
    download(new Blob([document.getElementById('plan-json').value + '\n'], { type: 'application/json' }), 'plan.json');
  });
  document.getElementById('cvector-download').addEventListener('click', (ev) => guarded(ev.target, async () => {
    const plan = currentPlan();
    if (!plan) throw new ServerError('Nothing to export: every knob is at 0');
    download(await postBlob('/v1/critdim/cvector', { plan }), 'control_vector.gguf');
    document.getElementById('plan-status').textContent = 'Control vector written (llama.cpp: --control-vector control_vector.gguf).';
  }));
  document.getElementById('gen-chat').disabled = !meta.model.chat;
  if (!meta.model.chat) document.getElementById('gen-chat').checked = false;
  document.getElementById('gen-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(document.getElementById('gen-submit'), () => generateBoth());
  });
  document.getElementById('sweep-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(document.getElementById('sweep-submit'), sweep);
  });
  refreshPlan();
}

export { addSlider };
