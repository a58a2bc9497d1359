// Small SVG charts drawn in the page (no library): bars for layer profiles, lines for curves.
import { fmt } from './api.js';

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function frame(width, height, yMax, opts, title) {
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  svg.appendChild(el('title', {}, title));
  const left = 56, bottom = 30;
  svg.appendChild(el('line', { class: 'axis', x1: left, y1: 8, x2: left, y2: height - bottom }));
  svg.appendChild(el('line', { class: 'axis', x1: left, y1: height - bottom, x2: width - 8, y2: height - bottom }));
  svg.appendChild(el('text', { x: left - 4, y: 14, 'text-anchor': 'end' }, fmt(yMax, 1)));
  svg.appendChild(el('text', { x: left - 4, y: height - bottom, 'text-anchor': 'end' }, '0'));
  svg.appendChild(el('text', { x: 4, y: (height - bottom) / 2, transform: `rotate(-90 10 ${(height - bottom) / 2})` }, opts.yLabel));
  svg.appendChild(el('text', { x: (width + left) / 2, y: height - 4, 'text-anchor': 'middle' }, opts.xLabel));
  return { svg, left, bottom, plotW: width - left - 8, plotH: height - bottom - 8 };
}

// points: [{label, value, here}]
export function barChart(points, opts) {
  const yMax = Math.max(1e-9, ...points.map((p) => p.value));
  const width = Math.max(320, Math.min(900, 60 + points.length * 22));
  const f = frame(width, 180, yMax, opts,
    `${opts.yLabel} by ${opts.xLabel}: ` + points.map((p) => `${p.label} ${fmt(p.value)}`).join(', '));
  const w = f.plotW / points.length;
  points.forEach((p, i) => {
    const h = (p.value / yMax) * f.plotH;
    const x = f.left + i * w + 1;
    const bar = el('rect', { class: 'bar' + (p.here ? ' here' : ''), x, y: 8 + f.plotH - h, width: Math.max(1, w - 2), height: h });
    bar.appendChild(el('title', {}, `${opts.xLabel} ${p.label}: ${fmt(p.value)}`));
    f.svg.appendChild(bar);
    if (points.length <= 40 || i % 5 === 0)
      f.svg.appendChild(el('text', { x: x + w / 2, y: 8 + f.plotH + 12, 'text-anchor': 'middle' }, p.label));
  });
  return f.svg;
}

// series: [{name, points: [{x, y}]}]
export function lineChart(series, opts) {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((y) => Number.isFinite(y));
  const xMin = Math.min(...xs), xMax = Math.max(...xs), yMax = Math.max(1e-9, ...ys);
  const f = frame(420, 200, yMax, opts, `${opts.yLabel} by ${opts.xLabel}`);
  const colours = ['#4a7fc1', '#d1495b', '#2a9d5c', '#8d6cab'];
  const px = (x) => f.left + (xMax > xMin ? (x - xMin) / (xMax - xMin) : 0.5) * f.plotW;
  const py = (y) => 8 + f.plotH - (y / yMax) * f.plotH;
  f.svg.appendChild(el('text', { x: f.left, y: 8 + f.plotH + 12, 'text-anchor': 'middle' }, fmt(xMin, 2)));
  f.svg.appendChild(el('text', { x: f.left + f.plotW, y: 8 + f.plotH + 12, 'text-anchor': 'end' }, fmt(xMax, 2)));
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const colour = colours[i % colours.length];
    f.svg.appendChild(el('polyline', { fill: 'none', stroke: colour, 'stroke-width': 2,
                                       points: pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' ') }));
    f.svg.appendChild(el('text', { x: f.left + 8, y: 20 + 14 * i, fill: colour }, s.name));
  });
  return f.svg;
}
