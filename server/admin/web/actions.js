// Actions: publish (one publication from fields, or a batch as JSON) and
// disconnect by connection identifiers, through the REST API.
import * as api from './api.js'
import { $, status, describe } from './dom.js'

// run disables the form's button while the call is under way and writes
// its outcome in the form's status region.
async function run(form, out, call, done) {
  const button = form.querySelector('button[type=submit]')
  button.disabled = true
  status(out, 'Sending…')
  try {
    await call()
    status(out, `${done} at ${new Date().toLocaleTimeString()}.`, 'ok')
  } catch (err) {
    if (!(err instanceof api.SignedOut)) status(out, `Refused: ${describe(err)}`, 'error')
  } finally {
    button.disabled = false
  }
}

export function createActions() {
  const publishForm = $('publish-form')
  publishForm.addEventListener('submit', ev => {
    ev.preventDefault()
    const out = $('publish-status')
    const stream = $('publish-stream').value
    if (!stream) {
      status(out, 'Name the stream to publish to.', 'error')
      $('publish-stream').focus()
      return
    }
    const pub = { stream, data: $('publish-data').value }
    const meta = {}
    const type = $('publish-type').value.trim()
    if (type) meta.broadcast_type = type
    if ($('publish-transient').checked) meta.transient = true
    if (Object.keys(meta).length) pub.meta = meta
    run(publishForm, out, () => api.publish(JSON.stringify(pub)), 'Published')
  })

  const batchForm = $('batch-form')
  batchForm.addEventListener('submit', ev => {
    ev.preventDefault()
    const out = $('batch-status')
    const text = $('batch-json').value
    let parsed
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      status(out, `Not valid JSON: ${err.message}`, 'error')
      $('batch-json').focus()
      return
    }
    if (parsed === null || typeof parsed !== 'object') {
      status(out, 'Give a publication object or an array of them.', 'error')
      $('batch-json').focus()
      return
    }
    const n = Array.isArray(parsed) ? parsed.length : 1
    run(batchForm, out, () => api.publish(text), `Published (${n} ${n === 1 ? 'publication' : 'publications'})`)
  })

  const disconnectForm = $('disconnect-form')
  disconnectForm.addEventListener('submit', ev => {
    ev.preventDefault()
    const out = $('disconnect-status')
    const identifier = $('disconnect-identifier').value
    if (!identifier) {
      status(out, 'Give the connection identifiers.', 'error')
      $('disconnect-identifier').focus()
      return
    }
    run(disconnectForm, out, () => api.disconnect(identifier, $('disconnect-reconnect').checked), 'Disconnect sent')
  })

  return {
    enter() {},
    leave() {}
  }
}
