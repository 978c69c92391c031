// Cablehub console: the shell (sign-in, navigation by the address' hash,
// sign-out) and the Configuration page. The other pages are modules.
import * as api from './api.js'
import { $, h, setText, status, describe } from './dom.js'
import { createOverview } from './overview.js'
import { createStreams } from './streams.js'
import { createActions } from './actions.js'

const TITLES = { overview: 'Overview', streams: 'Streams', actions: 'Actions', config: 'Configuration' }

let signedIn = false
let nodeId = ''
let currentPage = null
let expiryTimer = 0

// renderTOML shows the configuration a line a span, comments marked (and
// hidden with "Show comments" unchecked).
function renderTOML(toml) {
  const lines = toml.replace(/\n$/, '').split('\n')
  $('config-toml').replaceChildren(...lines.map(line =>
    h('span', { class: /^\s*#/.test(line) ? 'toml-comment' : 'toml-line' }, line + '\n')))
}

function createConfig() {
  let gen = 0
  const comments = $('config-comments')
  comments.addEventListener('change', () => $('config-toml').classList.toggle('hide-comments', !comments.checked))
  async function load() {
    const g = ++gen
    status($('config-status'), 'Loading…')
    try {
      const res = await api.config()
      if (g !== gen) return
      setText($('config-node'), res.node_id || '—')
      renderTOML(res.toml || '')
      status($('config-status'), '')
    } catch (err) {
      if (g !== gen || err instanceof api.SignedOut) return
      status($('config-status'), `Could not read the configuration: ${describe(err)}`, 'error')
    }
  }
  $('config-reload').addEventListener('click', load)
  return {
    enter(_, { fresh }) {
      if (fresh) load()
    },
    leave() {
      gen++
    }
  }
}

const pages = {
  overview: createOverview({ nodeId: () => nodeId }),
  streams: createStreams(),
  actions: createActions(),
  config: createConfig()
}

function parseHash() {
  const raw = location.hash.slice(1)
  const slash = raw.indexOf('/')
  const page = slash < 0 ? raw : raw.slice(0, slash)
  let arg = slash < 0 ? '' : raw.slice(slash + 1)
  try {
    arg = decodeURIComponent(arg)
  } catch {
    // keep it as written
  }
  return page in pages ? { page, arg } : { page: 'overview', arg: '' }
}

function leavePage() {
  if (currentPage) pages[currentPage].leave()
  currentPage = null
}

function showOnly(id) {
  for (const el of document.querySelectorAll('main > .page')) el.hidden = el.id !== id
}

// route shows the page the hash names (Overview for none); focus moves to
// its heading, as a screen reader user expects after following a link.
function route({ focus = true } = {}) {
  if (!signedIn) return
  const { page, arg } = parseHash()
  if (page === currentPage) {
    pages[page].enter(arg, { fresh: false, focus })
    return
  }
  leavePage()
  currentPage = page
  showOnly(`page-${page}`)
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  document.title = `${TITLES[page]} · Cablehub console`
  pages[page].enter(arg, { fresh: true, focus })
  if (focus) $(`${page}-title`).focus()
}

function setSignedInChrome(on) {
  $('nav').hidden = !on
  $('session-bar').hidden = !on
  $('loading').hidden = true
}

// showSignIn ends the signed-in view (stopping polls and watches) and
// shows the form, with message in its status region.
function showSignIn(message = '', kind = '') {
  signedIn = false
  clearTimeout(expiryTimer)
  leavePage()
  setSignedInChrome(false)
  showOnly('page-signin')
  document.title = 'Sign in · Cablehub console'
  status($('signin-status'), message, kind)
  const pw = $('signin-password')
  pw.value = ''
  pw.focus()
}

async function startSession() {
  const s = await api.session()
  if (!s) {
    showSignIn()
    return
  }
  api.setApiPath(s.api_path)
  nodeId = s.node_id || ''
  signedIn = true
  setSignedInChrome(true)
  const until = s.expires_at ? new Date(s.expires_at) : null
  setText($('session-id'), nodeId || '?')
  setText($('session-until'), '')
  if (until && !Number.isNaN(until.getTime())) {
    setText($('session-until'), ` · signed in until ${until.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`)
    const left = until.getTime() - Date.now()
    if (left > 0 && left < 2 ** 31) expiryTimer = setTimeout(() => showSignIn('Your session expired: sign in again.'), left)
  }
  route({ focus: true })
}

$('signin-form').addEventListener('submit', async ev => {
  ev.preventDefault()
  const pw = $('signin-password')
  const button = $('signin-submit')
  if (!pw.value) {
    status($('signin-status'), 'Enter the password.', 'error')
    pw.focus()
    return
  }
  button.disabled = true
  status($('signin-status'), 'Signing in…')
  try {
    await api.signIn(pw.value)
    pw.value = ''
    status($('signin-status'), '')
    await startSession()
  } catch (err) {
    const msg = err instanceof api.ApiError && err.status === 401 ? 'Wrong password.' : describe(err)
    status($('signin-status'), `Not signed in: ${msg}`, 'error')
    pw.focus()
    pw.select()
  } finally {
    button.disabled = false
  }
})

$('sign-out').addEventListener('click', async () => {
  const button = $('sign-out')
  button.disabled = true
  leavePage()
  try {
    await api.signOut()
    showSignIn('Signed out.', 'ok')
  } catch (err) {
    showSignIn(`Sign-out failed: ${describe(err)}. Close the browser to end the session.`, 'error')
  } finally {
    button.disabled = false
  }
})

// The skip link moves focus without changing the page's hash (the router's).
$('skip').addEventListener('click', ev => {
  ev.preventDefault()
  $('main').focus()
})

window.addEventListener('hashchange', () => route({ focus: true }))

api.configure({
  signedOut: () => {
    if (!signedIn) return
    showSignIn('Your session has ended: sign in again.', 'error')
    // Drop the cookie too (the page cannot, it is HttpOnly): another node
    // of this host, where the session may still count, must not see it.
    api.signOut().catch(() => {})
  }
})

startSession().catch(err => {
  showSignIn(`The console could not reach the server: ${describe(err)}`, 'error')
})
