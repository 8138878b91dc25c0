// @hocuspocus/provider (npm, pinned in package.json, on the `ws` package) against
// `quire serve` at /hocuspocus: concurrent random edits converge with a JSON-protocol client,
// a mixed session (y-websocket + Hocuspocus + JSON) converges and shares awareness, offline
// edits merge, a SQLite restart loses nothing (and `quire replay` is clean), awareness of a
// closed provider disappears within 1 s, several documents share one socket, and
// --no-auto-create denies.
// Every provider's updates must end acknowledged (SyncStatus: committed by the server).
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('fs')
const os = require('os')
const path = require('path')
const {
  QuireServer, replay, provider, JsonDoc, waitFor, synced, rng, randomEdit,
  hpProvider, hpSocket, hpAttach, hpSynced, hpAcked
} = require('./lib')

const texts = cs => cs.map(c => c.text.toString())
const allEqual = cs => texts(cs).every(t => t === texts(cs)[0])

function destroyAll (cs) {
  for (const c of cs) {
    try { c.p.destroy() } catch {}
  }
}

test('three Hocuspocus providers edit concurrently at random and converge with a JSON client', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://'])
  t.after(() => server.stop())
  const name = 'hp-converge'
  const cs = [hpProvider(server, name), hpProvider(server, name), hpProvider(server, name)]
  t.after(() => destroyAll(cs))
  await Promise.all(cs.map(hpSynced))
  assert.deepEqual(cs.map(c => c.p.authorizedScope), ['read-write', 'read-write', 'read-write'])
  const json = new JsonDoc(`ws://127.0.0.1:${server.port}/ws/documents/${name}?userId=json`)
  t.after(() => json.close())
  await json.opened
  const rand = rng(4321)
  for (let i = 0; i < 150; i++) {
    const k = Math.floor(rand() * 4)
    randomEdit(k < 3 ? cs[k].text : json.text, rand, 'abcj'[k])
    if (rand() < 0.2) await new Promise(resolve => setImmediate(resolve))
  }
  await waitFor(() => allEqual([...cs, json]) && cs.every(hpAcked), 'convergence and acknowledgements')
  assert.ok(cs[0].text.length > 0)
  const doc = await server.rest('GET', `/api/v1/documents/${name}`)
  assert.equal(doc.status, 200, 'the document was created on first authentication')
})

test('a mixed session (y-websocket, Hocuspocus and JSON) converges', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://'])
  t.after(() => server.stop())
  const name = 'mixed-session'
  const hs = [hpProvider(server, name), hpProvider(server, name)]
  const ys = [provider(server, name), provider(server, name)]
  t.after(() => { destroyAll(hs); ys.forEach(c => c.p.destroy()) })
  await Promise.all([...hs.map(hpSynced), ...ys.map(synced)])
  const json = new JsonDoc(`ws://127.0.0.1:${server.port}/ws/documents/${name}?userId=json`)
  t.after(() => json.close())
  await json.opened
  const all = [...hs, ...ys, json]
  const rand = rng(99)
  for (let i = 0; i < 150; i++) {
    const k = Math.floor(rand() * all.length)
    randomEdit(all[k].text, rand, 'HhYyj'[k])
    if (rand() < 0.2) await new Promise(resolve => setImmediate(resolve))
  }
  await waitFor(() => allEqual(all) && hs.every(hpAcked), 'convergence across protocols')
  for (const tag of ['H', 'h', 'Y', 'y', 'j']) assert.ok(all[0].text.toString().includes(tag), tag)
  // Awareness is one picture across the binary protocols.
  hs[0].p.setAwarenessField('user', { name: 'hocus' })
  ys[0].p.awareness.setLocalStateField('user', { name: 'yws' })
  await waitFor(() => ys[1].p.awareness.getStates().get(hs[0].doc.clientID)?.user?.name === 'hocus' &&
    hs[1].p.awareness.getStates().get(ys[0].doc.clientID)?.user?.name === 'yws', 'awareness across protocols')
})

test('offline edits on both sides are merged on reconnect', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://'])
  t.after(() => server.stop())
  const name = 'hp-offline'
  const a = hpProvider(server, name)
  const b = hpProvider(server, name)
  t.after(() => destroyAll([a, b]))
  await Promise.all([hpSynced(a), hpSynced(b)])
  a.text.insert(0, 'shared ')
  await waitFor(() => b.text.toString() === 'shared ', 'initial sync')
  a.socket.disconnect()
  await waitFor(() => a.socket.status === 'disconnected', 'a offline')
  a.text.insert(a.text.length, 'offline-a ')
  b.text.insert(0, 'online-b ')
  await new Promise(resolve => setTimeout(resolve, 100))
  assert.ok(!a.text.toString().includes('online-b'))
  a.socket.connect()
  await waitFor(() => a.text.toString() === b.text.toString() && hpAcked(a) && hpAcked(b), 'merge after reconnect')
  for (const s of ['shared', 'offline-a', 'online-b']) assert.ok(a.text.toString().includes(s), s)
  const c = hpProvider(server, name) // a newcomer gets everything from the server alone
  t.after(() => destroyAll([c]))
  await waitFor(() => c.text.toString() === a.text.toString(), 'newcomer state')
})

test('a SQLite server restarted mid-session loses no edit; providers reconnect; replay is clean', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-interop-hp-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const url = `sqlite:///${path.join(dir, 'q.db')}`
  let server = await QuireServer.start(['--database-url', url])
  const port = server.port
  const name = 'hp-restart'
  const cs = [hpProvider(server, name), hpProvider(server, name)]
  t.after(() => destroyAll(cs))
  await Promise.all(cs.map(hpSynced))
  cs[0].text.insert(0, 'before-0 ')
  cs[1].text.insert(0, 'before-1 ')
  await waitFor(() => allEqual(cs) && cs[0].text.length === 18 && cs.every(hpAcked), 'edits before the restart')
  await server.stop()
  cs[0].text.insert(0, 'during-0 ') // made while the server is down
  server = await QuireServer.start(['--database-url', url], port)
  t.after(() => server.stop())
  cs[1].text.insert(0, 'after-1 ')
  await waitFor(() => allEqual(cs) && cs.every(hpAcked) &&
    ['before-0', 'before-1', 'during-0', 'after-1'].every(s => cs[0].text.toString().includes(s)),
  'every edit on both providers after the restart', 15000)
  const fresh = hpProvider(server, name)
  t.after(() => destroyAll([fresh]))
  await waitFor(() => fresh.text.toString() === cs[0].text.toString(), 'a newcomer sees every edit')
  await server.stop()
  const r = replay(url)
  assert.equal(r.status, 0, `quire replay: ${r.stdout}\n${r.stderr}`)
})

test('the awareness of a closed provider disappears for the others within 1 s', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://'])
  t.after(() => server.stop())
  const name = 'hp-awareness'
  const a = hpProvider(server, name)
  const b = hpProvider(server, name)
  t.after(() => destroyAll([a, b]))
  await Promise.all([hpSynced(a), hpSynced(b)])
  a.p.setAwarenessField('user', { name: 'alice' })
  const aId = a.doc.clientID
  await waitFor(() => b.p.awareness.getStates().get(aId)?.user?.name === 'alice', 'alice visible to b')
  // Close the socket without the provider's goodbye, as a crashed tab would.
  a.socket.shouldConnect = false
  a.socket.webSocket.terminate()
  const closed = Date.now()
  await waitFor(() => !b.p.awareness.getStates().has(aId), 'alice gone', 1000)
  assert.ok(Date.now() - closed <= 1000)
})

test('several documents over one socket stay apart and converge with their own providers', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://'])
  t.after(() => server.stop())
  const shared = hpSocket(server)
  const a1 = hpAttach(shared, 'multi-a')
  const b1 = hpAttach(shared, 'multi-b')
  const a2 = hpProvider(server, 'multi-a')
  const b2 = hpProvider(server, 'multi-b')
  t.after(() => { destroyAll([a1, b1, a2, b2]); shared.destroy() })
  await Promise.all([a1, b1, a2, b2].map(hpSynced))
  a1.text.insert(0, 'A from shared ')
  b1.text.insert(0, 'B from shared ')
  a2.text.insert(0, 'A alone ')
  b2.text.insert(0, 'B alone ')
  await waitFor(() => allEqual([a1, a2]) && allEqual([b1, b2]) && [a1, b1, a2, b2].every(hpAcked),
    'each document converges')
  assert.ok(!a1.text.toString().includes('B '), 'multi-a has nothing of multi-b')
  assert.ok(!b1.text.toString().includes('A '), 'multi-b has nothing of multi-a')
  // Detaching one document (the provider's Close message) leaves the other served.
  a1.p.destroy()
  b2.text.insert(0, 'later ')
  await waitFor(() => b1.text.toString().startsWith('later '), 'multi-b still served on the shared socket')
  const ws = [...shared.configuration.providerMap.keys()]
  assert.deepEqual(ws, ['multi-b'])
})

test('--no-auto-create answers permission-denied for an unknown document', async t => {
  const server = await QuireServer.start(['--database-url', 'memory://', '--no-auto-create'])
  t.after(() => server.stop())
  let reason = null
  const c = hpProvider(server, 'hp-missing', { onAuthenticationFailed: ({ reason: r }) => { reason = r } })
  t.after(() => destroyAll([c]))
  await waitFor(() => reason !== null, 'authenticationFailed')
  assert.equal(reason, 'document not found')
  assert.equal(c.p.isAuthenticated, false)
  assert.equal((await server.rest('GET', '/api/v1/documents/hp-missing')).status, 404)
})
