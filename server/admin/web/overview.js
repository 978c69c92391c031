// Overview: the cluster's nodes and four live charts, from {api}/info
// polled every second while the page is shown (and the tab visible).
import * as api from './api.js'
import { $, h, clear, setText, status, num, formatCount, formatRate, formatUptime, describe } from './dom.js'
import { Chart } from './charts.js'

const PERIOD = 1000

// rateStep is a counter's increase between two polls; a node that
// restarted (its counter went down) counts 0 for that step.
function rateStep(cur, prev) {
  const d = num(cur) - num(prev)
  return d > 0 ? d : 0
}

export function createOverview({ nodeId }) {
  const charts = {
    connections: new Chart({ key: 'connections', title: 'Connections', format: formatCount }),
    deliveries: new Chart({ key: 'deliveries', title: 'Deliveries', format: formatRate, unit: '/s' }),
    publishes: new Chart({ key: 'publishes', title: 'Publishes', format: formatRate, unit: '/s' }),
    rpc: new Chart({ key: 'rpc', title: 'RPC calls', format: formatRate, unit: '/s' })
  }
  clear($('charts')).append(...Object.values(charts).map(c => c.el))

  let active = false
  let generation = 0
  let timer = 0
  let prev = null // { t, nodes: Map(id → node) } of the previous poll

  function rates(nodes, t) {
    const byId = new Map(nodes.map(n => [n.id, n]))
    const last = prev
    prev = { t, nodes: byId }
    if (!last) return null
    const dt = (t - last.t) / 1000
    if (dt <= 0) return null
    const sum = { publishes: 0, deliveries: 0, rpc: 0 }
    for (const [id, n] of byId) {
      const p = last.nodes.get(id)
      if (!p) continue // a node new since the last poll: no step yet
      sum.publishes += rateStep(n.published_total, p.published_total)
      sum.deliveries += rateStep(n.deliveries_total, p.deliveries_total)
      sum.rpc += rateStep(n.rpc_calls_total, p.rpc_calls_total)
    }
    return { publishes: sum.publishes / dt, deliveries: sum.deliveries / dt, rpc: sum.rpc / dt }
  }

  function renderNodes(nodes) {
    const rows = nodes.map(n => h('tr', { 'data-node': n.id },
      h('th', { scope: 'row' }, h('code', {}, n.id), n.id === nodeId() ? h('span', { class: 'badge' }, 'this console') : null),
      h('td', {}, n.version || '—'),
      h('td', {}, formatUptime(n.uptime_seconds)),
      h('td', { class: 'num' }, formatCount(n.connections)),
      h('td', { class: 'num' }, formatCount(n.subscriptions)),
      h('td', { class: 'num' }, formatCount(n.streams))))
    clear($('nodes-rows')).append(...rows)
    const total = key => formatCount(nodes.reduce((s, n) => s + num(n[key]), 0))
    clear($('nodes-total')).append(h('tr', {},
      h('th', { scope: 'row' }, `${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'}`),
      h('td', {}), h('td', {}),
      h('td', { class: 'num' }, total('connections')),
      h('td', { class: 'num' }, total('subscriptions')),
      h('td', { class: 'num' }, '')))
  }

  function render(info, t) {
    const nodes = [...(info.nodes || [])].sort((a, b) => String(a.id).localeCompare(String(b.id)))
    renderNodes(nodes)
    const gone = info.unavailable_nodes || []
    const notice = $('overview-unavailable')
    notice.hidden = gone.length === 0
    setText(notice, gone.length
      ? `Unavailable ${gone.length === 1 ? 'node' : 'nodes'} (did not answer in time; not counted): ${gone.join(', ')}`
      : '')
    charts.connections.push(t, nodes.reduce((s, n) => s + num(n.connections), 0))
    const r = rates(nodes, t)
    if (r) for (const key of ['deliveries', 'publishes', 'rpc']) charts[key].push(t, r[key])
    else for (const key of ['deliveries', 'publishes', 'rpc']) charts[key].pending(t)
  }

  async function tick(gen) {
    const started = performance.now()
    try {
      const info = await api.info()
      if (gen !== generation) return
      render(info, performance.now())
      status($('overview-status'), '')
    } catch (err) {
      if (gen !== generation || err instanceof api.SignedOut) return
      prev = null
      status($('overview-status'), `Could not read the cluster's state: ${describe(err)}`, 'error')
    }
    if (gen !== generation) return
    timer = setTimeout(() => tick(gen), Math.max(0, PERIOD - (performance.now() - started)))
  }

  function start() {
    generation++
    prev = null
    tick(generation)
  }

  function stop() {
    generation++
    clearTimeout(timer)
  }

  document.addEventListener('visibilitychange', () => {
    if (!active) return
    if (document.hidden) stop()
    else start()
  })

  return {
    enter() {
      if (active) return
      active = true
      if (!document.hidden) start()
    },
    leave() {
      active = false
      stop()
    }
  }
}
