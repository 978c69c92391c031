// Small DOM and formatting helpers shared by the pages. Text always goes in
// through textContent: stream names, data and presence info are untrusted.

export const $ = id => document.getElementById(id)

// h builds an element: attrs are set as attributes (class, id, aria-*,
// href...), except on* functions, added as listeners; children are nodes
// or text.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

export function clear(el) {
  el.replaceChildren()
  return el
}

// setText changes an element's text only when it differs, so that live
// regions and screen readers are not told about unchanged values.
export function setText(el, text) {
  const s = String(text)
  if (el.textContent !== s) el.textContent = s
}

// status writes a message into a status region; kind is '', 'ok' or 'error'.
export function status(el, text, kind = '') {
  el.classList.toggle('ok', kind === 'ok')
  el.classList.toggle('error', kind === 'error')
  setText(el, text)
}

const integer = new Intl.NumberFormat('en')
const oneDecimal = new Intl.NumberFormat('en', { maximumFractionDigits: 1 })

export function num(v) {
  const n = Number(v)
  return Number.isFinite(n) ? n : 0
}

export function formatCount(v) {
  return integer.format(Math.round(num(v)))
}

export function formatRate(v) {
  const n = num(v)
  return n < 10 ? oneDecimal.format(n) : integer.format(Math.round(n))
}

// formatUptime: 45s, 12m 05s, 3h 04m, 2d 5h.
export function formatUptime(seconds) {
  let s = Math.max(0, Math.floor(num(seconds)))
  const d = Math.floor(s / 86400)
  s -= d * 86400
  const hh = Math.floor(s / 3600)
  s -= hh * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  const two = n => String(n).padStart(2, '0')
  if (d > 0) return `${d}d ${hh}h`
  if (hh > 0) return `${hh}h ${two(m)}m`
  if (m > 0) return `${m}m ${two(s)}s`
  return `${s}s`
}

// formatOffset: a transient publication has no offset (0).
export function formatOffset(offset) {
  const n = num(offset)
  return n > 0 ? String(offset) : 'transient'
}

// describe turns a caught error into a sentence for a status region.
export function describe(err) {
  if (err && err.name === 'TypeError') return `The server could not be reached (${err.message}).`
  return err && err.message ? err.message : String(err)
}
