// Streams: the cluster's streams with subscribers (filtered by prefix), and
// one stream's presence, recent history and live tail (Watch). A stream is
// selected through the address: #streams/<encoded name>.
import * as api from './api.js'
import { $, h, clear, setText, status, num, formatCount, formatOffset, describe } from './dom.js'

const TAIL_CAP = 200
const HISTORY_LIMIT = 20

export function streamHash(name) {
  return `#streams/${encodeURIComponent(name)}`
}

export function createStreams() {
  let current = null // the selected stream's name
  let listGen = 0
  let detailGen = 0
  let watching = null // the AbortController of the running watch
  let filterTimer = 0

  // The list.

  // markCurrent points the list's link of the selected stream out.
  function markCurrent() {
    const want = current === null ? null : streamHash(current)
    for (const a of $('streams-rows').querySelectorAll('a')) {
      if (a.getAttribute('href') === want) a.setAttribute('aria-current', 'true')
      else a.removeAttribute('aria-current')
    }
  }

  async function loadList() {
    const gen = ++listGen
    const prefix = $('streams-prefix').value
    status($('streams-status'), 'Loading…')
    try {
      const res = await api.streams(prefix)
      if (gen !== listGen) return
      const list = res.streams || []
      const rows = list.map(s => h('tr', {},
        h('th', { scope: 'row' }, h('a', { href: streamHash(s.name), class: 'stream-link' }, s.name)),
        h('td', { class: 'num' }, formatCount(s.subscribers))))
      if (!rows.length) {
        rows.push(h('tr', {}, h('td', { colspan: 2, class: 'empty' },
          prefix ? `No stream with subscribers starts with “${prefix}”.` : 'No stream has subscribers.')))
      }
      clear($('streams-rows')).append(...rows)
      markCurrent()
      const notes = [`${list.length} ${list.length === 1 ? 'stream' : 'streams'}${res.truncated ? ' (truncated: narrow the prefix)' : ''}.`]
      const gone = res.unavailable_nodes || []
      if (gone.length) notes.push(`Not answering, so missing: ${gone.join(', ')}.`)
      status($('streams-status'), notes.join(' '), gone.length ? 'error' : '')
    } catch (err) {
      if (gen !== listGen || err instanceof api.SignedOut) return
      status($('streams-status'), `Could not list streams: ${describe(err)}`, 'error')
    }
  }

  $('streams-filter').addEventListener('submit', ev => {
    ev.preventDefault()
    clearTimeout(filterTimer)
    loadList()
  })
  $('streams-prefix').addEventListener('input', () => {
    clearTimeout(filterTimer)
    filterTimer = setTimeout(loadList, 300)
  })
  $('stream-open').addEventListener('submit', ev => {
    ev.preventDefault()
    const name = $('stream-open-name').value
    if (!name) {
      $('stream-open-name').focus()
      return
    }
    if (location.hash === streamHash(name)) select(name, true)
    else location.hash = streamHash(name)
  })

  // One stream.

  function select(name, focus) {
    const same = name === current
    if (!same) stopWatch()
    current = name
    $('stream-detail').hidden = false
    setText($('stream-name'), name)
    markCurrent()
    if (!same) {
      clear($('tail'))
      status($('tail-status'), 'Not watching.')
    }
    loadDetail()
    if (focus) $('stream-title').focus()
  }

  function deselect() {
    stopWatch()
    current = null
    detailGen++
    $('stream-detail').hidden = true
    markCurrent()
  }

  async function loadPresence(name, gen) {
    const err = $('presence-error')
    try {
      const [stats, users] = await Promise.all([api.presenceStats(name), api.presenceUsers(name)])
      if (gen !== detailGen) return
      err.hidden = true
      $('presence-stats').hidden = false
      $('presence-members').hidden = false
      setText($('presence-users'), formatCount(stats.users))
      setText($('presence-sessions'), formatCount(stats.sessions))
      const records = users.records || []
      const rows = records.map(r => h('tr', {},
        h('th', { scope: 'row' }, r.id),
        h('td', {}, h('code', {}, r.info === undefined ? '' : JSON.stringify(r.info)))))
      if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 2, class: 'empty' }, 'Nobody is present.')))
      clear($('presence-rows')).append(...rows)
    } catch (e) {
      if (gen !== detailGen || e instanceof api.SignedOut) return
      $('presence-stats').hidden = true
      $('presence-members').hidden = true
      clear($('presence-rows'))
      err.hidden = false
      setText(err, `Presence: ${describe(e)}`)
    }
  }

  async function loadHistory(name, gen) {
    const st = $('history-status')
    try {
      const res = await api.history(name, HISTORY_LIMIT)
      if (gen !== detailGen) return
      const pubs = [...(res.publications || [])].reverse()
      const rows = pubs.map(p => h('tr', {},
        h('td', { class: 'num' }, formatOffset(p.offset)),
        h('td', {}, h('code', {}, p.data ?? ''))))
      if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 2, class: 'empty' }, 'Nothing retained.')))
      clear($('history-rows')).append(...rows)
      status(st, res.epoch
        ? `Epoch ${res.epoch}, latest offset ${res.offset}; the last ${HISTORY_LIMIT} at most, newest first.`
        : 'This stream has no history.')
    } catch (e) {
      if (gen !== detailGen || e instanceof api.SignedOut) return
      clear($('history-rows'))
      status(st, `History: ${describe(e)}`, 'error')
    }
  }

  function loadDetail() {
    if (current === null) return
    const gen = ++detailGen
    loadPresence(current, gen)
    loadHistory(current, gen)
  }

  $('stream-reload').addEventListener('click', () => {
    loadDetail()
    loadList()
  })

  // The live tail.

  function addToTail(pub) {
    const tail = $('tail')
    const when = new Date().toLocaleTimeString()
    tail.prepend(h('li', { class: 'tail-item' },
      h('span', { class: 'tail-meta' },
        h('span', { class: 'tail-offset' }, num(pub.offset) > 0 ? `#${pub.offset}` : 'transient'), ' ',
        h('time', {}, when)),
      h('code', { class: 'tail-data' }, pub.data ?? '')))
    while (tail.children.length > TAIL_CAP) tail.lastElementChild.remove()
  }

  function setWatchButton(on) {
    const b = $('watch-toggle')
    b.setAttribute('aria-pressed', String(on))
    setText(b, on ? 'Stop watching' : 'Watch')
  }

  async function startWatch() {
    stopWatch()
    const name = current
    const ctrl = new AbortController()
    watching = ctrl
    setWatchButton(true)
    status($('tail-status'), 'Connecting…')
    let count = 0
    try {
      await api.watch(name, {
        signal: ctrl.signal,
        onLive: () => status($('tail-status'), 'Live: new publications appear at the top.', 'ok'),
        onPublication: pub => {
          count++
          addToTail(pub)
        }
      })
      if (watching === ctrl) status($('tail-status'), `The server ended the watch after ${count} ${count === 1 ? 'publication' : 'publications'}.`)
    } catch (err) {
      if (ctrl.signal.aborted || err instanceof api.SignedOut) return
      if (watching === ctrl) status($('tail-status'), `The watch stopped: ${describe(err)}`, 'error')
    }
    if (watching === ctrl) {
      watching = null
      setWatchButton(false)
    }
  }

  function stopWatch() {
    if (!watching) return
    const ctrl = watching
    watching = null
    ctrl.abort()
    setWatchButton(false)
    status($('tail-status'), 'Stopped watching.')
  }

  $('watch-toggle').addEventListener('click', () => {
    if (watching) stopWatch()
    else if (current !== null) startWatch()
  })

  return {
    // enter shows the page; name is the selected stream ('' for none).
    enter(name, { fresh, focus }) {
      if (fresh) loadList()
      if (name) select(name, focus && !fresh)
      else deselect()
    },
    leave() {
      clearTimeout(filterTimer)
      listGen++
      deselect()
    }
  }
}
