// Compare: two critical-dimension sets side by side with their overlap, and a results.json of
// `critdim reproduce` as tables and curves. Files are read in the page (nothing is uploaded).
import { getJson, guarded, showError, fmt } from './api.js';
import { lineChart } from './charts.js';

const sets = { a: null, b: null };  // {label, domains: [{name, dims: [int]}]}

function readFile(input) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error(`cannot read ${input.files[0].name}`));
    r.readAsText(input.files[0]);
  });
}

function criticalSet(json, label) {
  if (!json || json.format !== 'critdim.critical' || !Array.isArray(json.domains))
    throw new Error(`${label}: not a critical.json file (format "critdim.critical" with a "domains" list)`);
  return { label, domains: json.domains.map((d) => ({ name: d.name, dims: (d.dims || []).map((x) => x.dim) })) };
}

function table(headers, rows, caption) {
  const t = document.createElement('table');
  t.className = 'data';
  if (caption) t.createCaption().textContent = caption;
  const h = t.createTHead().insertRow();
  for (const name of headers) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = name;
    h.appendChild(th);
  }
  const body = t.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    for (const v of r) tr.insertCell().textContent = typeof v === 'number' ? fmt(v, 3) : v;
  }
  return t;
}

function renderOverlap() {
  const box = document.getElementById('overlap');
  box.replaceChildren();
  const { a, b } = sets;
  if (!a || !b) {
    box.textContent = `Load ${a ? 'set B' : b ? 'set A' : 'two sets'} to see the overlap.`;
    return;
  }
  const rows = [];
  for (const da of a.domains)
    for (const db of b.domains) {
      const A = new Set(da.dims), B = new Set(db.dims);
      const both = [...A].filter((d) => B.has(d));
      const union = new Set([...A, ...B]).size;
      rows.push([da.name, db.name, da.dims.join(' '), db.dims.join(' '), both.join(' ') || '–',
                 [...A].filter((d) => !B.has(d)).join(' ') || '–', [...B].filter((d) => !A.has(d)).join(' ') || '–',
                 union ? both.length / union : 0]);
    }
  box.appendChild(table(['A domain', 'B domain', 'A dims', 'B dims', 'shared', 'only A', 'only B', 'Jaccard (0–1)'],
                        rows, `Overlap of ${a.label} and ${b.label}, every pair of domains`));
}

function loadSet(which) {
  const input = document.getElementById(`crit-${which}`);
  input.addEventListener('change', () => guarded(null, async () => {
    if (!input.files.length) return;
    try {
      sets[which] = criticalSet(JSON.parse(await readFile(input)), input.files[0].name);
    } catch (e) {
      sets[which] = null;
      showError(`Set ${which.toUpperCase()}: ${e.message}`);
    }
    renderOverlap();
  }));
}

// Scalars of nested objects as "a.b.c" = value rows; arrays of objects as their own tables.
function flatten(obj, prefix, scalars, tables) {
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (Array.isArray(v) && v.length && v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) tables.push([path, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, path, scalars, tables);
    else scalars.push([path, Array.isArray(v) ? JSON.stringify(v) : v]);
  }
}

function cell(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'object') return JSON.stringify(v).slice(0, 80);
  return v;
}

function renderResults(json) {
  const box = document.getElementById('results');
  box.replaceChildren();
  if (!json || json.format !== 'critdim-reproduce')
    throw new Error('not a results.json of critdim reproduce (format "critdim-reproduce")');
  const scalars = [], tables = [];
  flatten(json, '', scalars, tables);
  box.appendChild(table(['field', 'value'], scalars.map(([k, v]) => [k, cell(v)]), 'Settings and totals'));
  const curves = [];
  while (tables.length) {
    const [path, list] = tables.shift();
    if (list.every((x) => typeof x.alpha === 'number')) {
      curves.push([path, list]);
      continue;
    }
    const cols = [...new Set(list.flatMap((x) => Object.keys(x)))];
    const rows = list.map((x) => cols.map((c) => cell(x[c])));
    box.appendChild(table(cols, rows, path));
    // Curves inside rows (mmlu.subjects[].whole.curve) become charts, one per row.
    list.forEach((x, i) => {
      const inner = [];
      flatten(x, `${path}[${i}]`, [], inner);
      for (const t of inner) if (t[1].every((p) => typeof p.alpha === 'number')) curves.push(t);
    });
  }
  for (const [path, list] of curves) {
    const metrics = Object.keys(list[0]).filter((k) => k !== 'alpha' && typeof list[0][k] === 'number');
    if (!metrics.length) continue;
    const fig = document.createElement('figure');
    const cap = document.createElement('figcaption');
    cap.textContent = `${path}: ${metrics.join(', ')} by α`;
    fig.append(cap, lineChart(metrics.map((m) => ({ name: m, points: list.map((p) => ({ x: p.alpha, y: p[m] })) })),
                              { xLabel: 'α', yLabel: metrics.join(', ') }));
    box.appendChild(fig);
  }
}

export function initCompare(meta) {
  loadSet('a');
  loadSet('b');
  const fromServer = document.getElementById('crit-a-server');
  fromServer.disabled = !meta.critical.domains.length;
  fromServer.addEventListener('click', () => guarded(fromServer, async () => {
    const m = await getJson('/v1/critdim/dims');
    sets.a = { label: `the server's --dims`, domains: m.critical.domains.map((d) => ({ name: d.name, dims: d.dims.map((x) => x.dim) })) };
    renderOverlap();
  }));
  const results = document.getElementById('results-file');
  results.addEventListener('change', () => guarded(null, async () => {
    if (!results.files.length) return;
    try {
      renderResults(JSON.parse(await readFile(results)));
    } catch (e) {
      showError(`${results.files[0].name}: ${e.message}`);
    }
  }));
}
