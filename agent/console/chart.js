// The migration chart: dirty rate and copy rate (MB/s, left axis) against
// the data still to copy (MiB, right axis) over seconds since the start.
// Hand-drawn inline SVG: small, no library, crisp in screenshots, and its
// numbers are text a screen reader gets through the figure's label.
const NS = 'http://www.w3.org/2000/svg';
const W = 720, H = 260, L = 56, R = 64, T = 16, B = 36;

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// A round axis maximum: 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const fmt = v => (v >= 100 || v === 0 ? v.toFixed(0) : v >= 10 ? v.toFixed(0) : v.toFixed(1));

export const SERIES = [
  { key: 'dirty', label: 'Dirty rate', unit: 'MB/s', cls: 'dirty', axis: 'rate' },
  { key: 'copy', label: 'Copy rate', unit: 'MB/s', cls: 'copy', axis: 'rate' },
  { key: 'remaining', label: 'Remaining', unit: 'MiB', cls: 'remaining', axis: 'mem' },
];

export class RateChart {
  constructor(figure) {
    this.figure = figure;
    this.points = [];
    this.source = 'none';
    this.events = 0;
    figure.replaceChildren();
    this.svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-desc', class: 'chart-svg' });
    this.desc = document.createElement('figcaption');
    this.desc.id = 'chart-desc';
    const legend = document.createElement('ul');
    legend.className = 'legend';
    for (const s of SERIES) {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = 'swatch ' + s.cls;
      sw.setAttribute('aria-hidden', 'true');
      li.append(sw, `${s.label} (${s.unit})`);
      legend.append(li);
    }
    figure.append(legend, this.svg, this.desc);
    this.render();
  }

  // points: [{t (s), dirty (B/s), copy (B/s), remaining (bytes)}]
  set(points, source) {
    this.points = points.slice();
    this.source = source;
    this.render();
  }

  add(point) {
    this.points.push(point);
    this.source = 'events';
    this.events++;
    this.render();
  }

  render() {
    const pts = this.points;
    const tMax = Math.max(10, ...pts.map(p => p.t));
    const rMax = niceMax(Math.max(0, ...pts.map(p => Math.max(p.dirty, p.copy))) / 1e6);
    const mMax = niceMax(Math.max(0, ...pts.map(p => p.remaining)) / 1048576);
    const x = t => L + (t / tMax) * (W - L - R);
    const yR = v => T + (1 - v / 1e6 / rMax) * (H - T - B);
    const yM = v => T + (1 - v / 1048576 / mMax) * (H - T - B);
    const svg = this.svg;
    svg.replaceChildren();

    for (let i = 0; i <= 4; i++) {
      const y = T + (i / 4) * (H - T - B);
      svg.append(el('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'grid' }));
      svg.append(el('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, fmt(rMax * (1 - i / 4))));
      svg.append(el('text', { x: W - R + 6, y: y + 4, class: 'tick' }, fmt(mMax * (1 - i / 4))));
    }
    for (let i = 0; i <= 5; i++) {
      const t = (i / 5) * tMax;
      svg.append(el('text', { x: x(t), y: H - B + 16, 'text-anchor': 'middle', class: 'tick' }, fmt(t)));
    }
    svg.append(el('text', { x: 4, y: T - 4, class: 'axis' }, 'MB/s'));
    svg.append(el('text', { x: W - 4, y: T - 4, 'text-anchor': 'end', class: 'axis' }, 'MiB'));
    svg.append(el('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis' }, 'seconds since start'));
    svg.append(el('rect', { x: L, y: T, width: W - L - R, height: H - T - B, class: 'frame' }));

    if (pts.length) {
      for (const s of SERIES) {
        const y = s.axis === 'rate' ? yR : yM;
        const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ');
        svg.append(el('path', { d, class: 'line ' + s.cls }));
      }
    } else {
      svg.append(el('text', { x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'No migration data yet'));
    }

    const last = pts[pts.length - 1];
    this.desc.textContent = last
      ? `${pts.length} samples over ${fmt(last.t)} s` + (this.source === 'events' ? ', live' : '') +
        `. Latest: dirty ${fmt(last.dirty / 1e6)} MB/s, copy ${fmt(last.copy / 1e6)} MB/s, ` +
        `remaining ${fmt(last.remaining / 1048576)} MiB.`
      : 'No migration data yet.';
    this.figure.dataset.points = String(pts.length);
    this.figure.dataset.source = this.source;
    this.figure.dataset.events = String(this.events);
  }
}
