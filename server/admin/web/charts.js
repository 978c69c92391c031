// Live line charts in inline SVG: the last 60 s of one series. The figure's
// caption carries the text alternative (the current value, the range over
// the window); the SVG itself is decoration for screen readers.
import { h, setText } from './dom.js'

const SVG = 'http://www.w3.org/2000/svg'
const W = 300
const H = 80
const SPAN = 60000 // ms shown
const GAP = 2500 // ms without a point: the line breaks

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  return el
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (at least 1).
function niceCeil(v) {
  if (!(v > 1)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p
  return 10 * p
}

export class Chart {
  // key names the figure (id chart-<key>); format turns a value into text;
  // unit follows the value ("/s" or "").
  constructor({ key, title, format, unit = '' }) {
    this.points = []
    this.format = format
    this.unit = unit
    this.title = title
    this.value = h('span', { class: 'chart-value', 'data-chart-value': '' }, '—')
    this.summary = h('p', { class: 'chart-summary' }, 'No data yet.')
    this.top = h('span', { class: 'chart-scale' }, '')
    this.line = svg('path', { class: 'chart-line', d: '', 'vector-effect': 'non-scaling-stroke' })
    this.area = svg('path', { class: 'chart-area', d: '' })
    const plot = svg('svg', {
      class: 'chart-plot',
      viewBox: `0 0 ${W} ${H}`,
      preserveAspectRatio: 'none',
      'aria-hidden': 'true',
      focusable: 'false'
    })
    for (const y of [0, H / 2, H]) {
      plot.append(svg('line', { class: 'chart-grid', x1: 0, x2: W, y1: y, y2: y, 'vector-effect': 'non-scaling-stroke' }))
    }
    plot.append(this.area, this.line)
    this.el = h('figure', { class: 'chart', id: `chart-${key}` },
      h('figcaption', {}, h('span', { class: 'chart-title' }, title), ' ', this.value),
      h('div', { class: 'chart-box' }, this.top, plot),
      h('div', { class: 'chart-axis', 'aria-hidden': 'true' }, h('span', {}, '60 s ago'), h('span', {}, 'now')),
      this.summary)
  }

  // push adds a value at time t (performance.now() ms) and redraws.
  push(t, v) {
    this.points.push({ t, v })
    while (this.points.length && this.points[0].t < t - SPAN - GAP) this.points.shift()
    this.draw(t)
  }

  draw(now) {
    const pts = this.points.filter(p => p.t >= now - SPAN - GAP)
    if (!pts.length) {
      this.line.setAttribute('d', '')
      this.area.setAttribute('d', '')
      this.el.dataset.points = '0'
      setText(this.value, '—')
      setText(this.summary, 'No data in the last 60 s.')
      return
    }
    const shown = pts.filter(p => p.t >= now - SPAN)
    const values = shown.length ? shown.map(p => p.v) : [0]
    const max = Math.max(...values)
    const min = Math.min(...values)
    const scale = niceCeil(max)
    const x = t => ((t - (now - SPAN)) / SPAN) * W
    const y = v => H - (v / scale) * H
    let line = ''
    let area = ''
    let run = []
    const flush = () => {
      if (!run.length) return
      line += run.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)} ${y(p.v).toFixed(1)}`).join(' ') + ' '
      if (run.length > 1) {
        const a = x(run[0].t).toFixed(1)
        const b = x(run[run.length - 1].t).toFixed(1)
        area += `M${a} ${H} ` + run.map(p => `L${x(p.t).toFixed(1)} ${y(p.v).toFixed(1)}`).join(' ') + ` L${b} ${H} Z `
      }
      run = []
    }
    for (const p of pts) {
      if (run.length && p.t - run[run.length - 1].t > GAP) flush()
      run.push(p)
    }
    flush()
    this.line.setAttribute('d', line.trim())
    this.area.setAttribute('d', area.trim())
    this.el.dataset.points = String(shown.length)
    const last = pts[pts.length - 1]
    // A value older than a gap is not current (the page was away).
    setText(this.value, now - last.t > GAP ? '—' : this.format(last.v) + this.unit)
    setText(this.top, this.format(scale) + this.unit)
    setText(this.summary, `Last 60 s: lowest ${this.format(min)}${this.unit}, highest ${this.format(max)}${this.unit}.`)
  }

  // pending moves the time axis to now without a value (a rate needs two
  // polls).
  pending(now) {
    if (this.points.length) this.draw(now)
    else setText(this.value, '—')
  }
}
