// y-websocket's WebsocketProvider (npm, on the `ws` package) against `quire serve`: concurrent
// random edits converge with a JSON-protocol client of the same document, offline edits merge,
// a SQLite restart loses nothing (and `quire replay` is clean), awareness of a closed provider
// disappears, and --no-auto-create refuses unknown documents.
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { QuireServer, replay, provider, JsonDoc, waitFor, synced, rng, randomEdit } = require('./lib')

const texts = cs => cs.map(c => c.text.toString())
const allEqual = cs => texts(cs).every(t => t === texts(cs)[0])

test('three y-websocket providers edit concurrently at random and converge with a JSON client', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://'])
  t.after(() => server.stop())
  const room = 'yws-converge'
  const cs = [provider(server, room), provider(server, room), provider(server, room)]
  t.after(() => cs.forEach(c => c.p.destroy()))
  await Promise.all(cs.map(synced))
  const json = new JsonDoc(`ws://127.0.0.1:${server.port}/ws/documents/${room}?userId=json`)
  t.after(() => json.close())
  await json.opened
  const rand = rng(1234)
  for (let i = 0; i < 150; i++) {
    const k = Math.floor(rand() * 4)
    randomEdit(k < 3 ? cs[k].text : json.text, rand, 'abcj'[k])
    if (rand() < 0.2) await new Promise(resolve => setImmediate(resolve))
  }
  await waitFor(() => allEqual([...cs, json]), 'convergence')
  assert.ok(cs[0].text.length > 0)
  const doc = await server.rest('GET', `/api/v1/documents/${room}`)
  assert.equal(doc.status, 200, 'the document was created on first connect')
})

test('offline edits on both sides are merged on reconnect', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://'])
  t.after(() => server.stop())
  const room = 'yws-offline'
  const a = provider(server, room)
  const b = provider(server, room)
  t.after(() => { a.p.destroy(); b.p.destroy() })
  await Promise.all([synced(a), synced(b)])
  a.text.insert(0, 'shared ')
  await waitFor(() => b.text.toString() === 'shared ', 'initial sync')
  a.p.disconnect()
  a.text.insert(a.text.length, 'offline-a ')
  b.text.insert(0, 'online-b ')
  await new Promise(resolve => setTimeout(resolve, 100))
  assert.ok(!a.text.toString().includes('online-b'))
  a.p.connect()
  await waitFor(() => a.text.toString() === b.text.toString(), 'merge after reconnect')
  for (const s of ['shared', 'offline-a', 'online-b']) assert.ok(a.text.toString().includes(s), s)
  const c = provider(server, room) // a newcomer gets everything from the server alone
  t.after(() => c.p.destroy())
  await waitFor(() => c.text.toString() === a.text.toString(), 'newcomer state')
})

test('a SQLite server restarted mid-session loses no edit; providers reconnect; replay is clean', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-interop-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const url = `sqlite:///${path.join(dir, "q.db")}`
  let server = await QuireServer.start(['--database-url', url])
  const port = server.port
  const room = 'yws-restart'
  const cs = [provider(server, room), provider(server, room)]
  t.after(() => cs.forEach(c => c.p.destroy()))
  await Promise.all(cs.map(synced))
  cs[0].text.insert(0, 'before-0 ')
  cs[1].text.insert(0, 'before-1 ')
  await waitFor(() => allEqual(cs) && cs[0].text.length === 18, 'edits before the restart')
  await server.stop()
  cs[0].text.insert(0, 'during-0 ') // made while the server is down
  server = await QuireServer.start(['--database-url', url], port)
  t.after(() => server.stop())
  cs[1].text.insert(0, 'after-1 ')
  await waitFor(() => allEqual(cs) && ['before-0', 'before-1', 'during-0', 'after-1'].every(s => cs[0].text.toString().includes(s)),
    'every edit on both providers after the restart', 15000)
  const fresh = provider(server, room)
  t.after(() => fresh.p.destroy())
  await waitFor(() => fresh.text.toString() === cs[0].text.toString(), 'a newcomer sees every edit')
  await server.stop()
  const r = replay(url)
  assert.equal(r.status, 0, `quire replay: ${r.stdout}\n${r.stderr}`)
})

test('the awareness of a closed provider disappears for the others within 1 s', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://'])
  t.after(() => server.stop())
  const room = 'yws-awareness'
  const a = provider(server, room)
  const b = provider(server, room)
  t.after(() => b.p.destroy())
  await Promise.all([synced(a), synced(b)])
  a.p.awareness.setLocalStateField('user', { name: 'alice' })
  const aId = a.doc.clientID
  await waitFor(() => b.p.awareness.getStates().get(aId)?.user?.name === 'alice', 'alice visible to b')
  // Close the socket without the provider's goodbye, as a crashed tab would.
  a.p.shouldConnect = false
  a.p.ws.terminate()
  const closed = Date.now()
  await waitFor(() => !b.p.awareness.getStates().has(aId), 'alice gone', 1000)
  assert.ok(Date.now() - closed <= 1000)
  a.p.destroy()
})

test('--no-auto-create refuses an unknown document with permission-denied', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://', '--no-auto-create'])
  t.after(() => server.stop())
  const c = provider(server, 'yws-missing', { connect: false })
  t.after(() => c.p.destroy())
  const denied = new Promise(resolve => c.p.on('connection-close', resolve))
  let reason = null
  c.p.messageHandlers[2] = (encoder, decoder, p, emitSync, type) => {
    const decoding = require('lib0/decoding')
    decoding.readVarUint(decoder) // permission denied
    reason = decoding.readVarString(decoder)
  }
  c.p.connect()
  await denied
  c.p.shouldConnect = false
  assert.equal(reason, 'no such document')
  assert.equal((await server.rest('GET', '/api/v1/documents/yws-missing')).status, 404)
})
