// The retries option: UNAVAILABLE is retried with a backoff, and with
// retries every publication carries an idempotency key, so that a retry of
// a publication the server did take cannot deliver it twice.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { Code, ConnectError } from '@connectrpc/connect'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import { CableService } from '../src/gen/cablehub/v1/cable_pb.js'
import { UnavailableError, createClient } from '../src/index.js'
import { SECRET, freePort, startServer, within } from './helpers.js'

// fakeServer serves CableService.Publish (and GetInfo) failing the first
// `failures` calls with UNAVAILABLE, and records every request's
// publications: a stand-in for a server whose broker is briefly away,
// which the real binary cannot be made to be on cue.
async function fakeServer(failures) {
  const publishes = []
  let infos = 0
  const handler = connectNodeAdapter({
    grpc: true,
    connect: false,
    grpcWeb: false,
    routes(router) {
      router.service(CableService, {
        publish(req) {
          publishes.push(req.publications.map(p => ({ stream: p.stream, data: p.data, idempotencyKey: p.idempotencyKey })))
          if (publishes.length <= failures) throw new ConnectError('broker did not confirm', Code.Unavailable)
          return {}
        },
        getInfo() {
          if (++infos <= failures) throw new ConnectError('try later', Code.Unavailable)
          return { nodes: [{ id: 'fake', version: 'v' }] }
        }
      })
    }
  })
  const srv = http2.createServer(handler)
  await new Promise(resolve => srv.listen(0, '127.0.0.1', resolve))
  return {
    address: `127.0.0.1:${srv.address().port}`,
    publishes,
    infos: () => infos,
    close: () => new Promise(resolve => srv.close(resolve))
  }
}

test('retries: publish is retried with the same generated idempotency keys', async () => {
  const fake = await fakeServer(2)
  const c = createClient({ address: fake.address, retries: 3 })
  try {
    await c.publishBatch([
      { stream: 'a', data: '1' },
      { stream: 'a', data: '2', idempotencyKey: 'mine' }
    ])
    assert.equal(fake.publishes.length, 3, 'two failures, then success')
    const [first, ...others] = fake.publishes
    assert.match(first[0].idempotencyKey, /^[0-9a-f-]{36}$/, 'a generated key (UUID)')
    assert.equal(first[1].idempotencyKey, 'mine', 'a given key is kept')
    for (const attempt of others) assert.deepEqual(attempt, first, 'every attempt sends the same keys')

    await c.publish('b', '3')
    assert.match(fake.publishes[3][0].idempotencyKey, /^[0-9a-f-]{36}$/)
    assert.notEqual(fake.publishes[3][0].idempotencyKey, first[0].idempotencyKey)
  } finally {
    c.close()
    await fake.close()
  }
})

test('retries: the error of the last attempt when they run out; none by default, and no keys then', async () => {
  const fake = await fakeServer(10)
  const once = createClient({ address: fake.address })
  const twice = createClient({ address: fake.address, retries: 2 })
  try {
    await assert.rejects(once.publish('a', '1'), UnavailableError)
    assert.equal(fake.publishes.length, 1)
    assert.equal(fake.publishes[0][0].idempotencyKey, '', 'no retries: no key is made up')
    await assert.rejects(twice.publish('a', '1'), err => err instanceof UnavailableError && err.message === 'broker did not confirm')
    assert.equal(fake.publishes.length, 4)
    await assert.rejects(twice.info(), UnavailableError)
    assert.equal(fake.infos(), 3, 'reads are retried too')
  } finally {
    once.close()
    twice.close()
    await fake.close()
  }
})

test('retries: a call made while the server is down succeeds once it is up', async () => {
  const port = await freePort()
  const c = createClient({ address: `127.0.0.1:${port}`, secret: SECRET, retries: 10 })
  let server
  try {
    const publishing = c.publish('retried', '"once"')
    server = await startServer([], { port })
    await within('the retried publish', publishing, 15000)
    assert.deepEqual((await c.history('retried')).publications, [{ offset: 1, data: '"once"' }])
  } finally {
    c.close()
    await server?.stop()
  }
})
