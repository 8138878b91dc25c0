// Yjs documents on the real server (subprocess, JSON protocol, npm yjs clients): validation,
// compaction by merge, the `state` of a newcomer, and whole-state senders next to delta senders.
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const Y = require('yjs')
const { QuireServer } = require('./lib/server')

const unb64 = s => new Uint8Array(Buffer.from(s, 'base64'))

// A Y.Doc connected over the JSON protocol. Remote updates are applied as they arrive; local
// changes are sent as the delta yjs emits, or (wholeState) as Y.encodeStateAsUpdate each time.
class YClient {
  static async join (server, id, name, { wholeState = false } = {}) {
    const c = new YClient(await server.connect(id, name), name, wholeState)
    await c.ws.next(m => m.type === 'state', `${name}: state`)
    return c
  }

  constructor (ws, name, wholeState) {
    this.ws = ws
    this.name = name
    this.doc = new Y.Doc()
    this.applied = 0
    this.pending = []
    this.ops = 0
    this.acked = [] // seqs of this client's acknowledged updates
    this.wholeState = wholeState
    this.doc.on('update', (update, origin) => {
      if (origin === 'remote') return
      const bytes = wholeState ? Y.encodeStateAsUpdate(this.doc) : update
      this.pending.push(this.ws.update(`${name}-${++this.ops}`, bytes).then(seq => this.acked.push(seq)))
    })
    this.apply()
    const onMessage = ws.ws.onmessage
    ws.ws.onmessage = ev => { onMessage(ev); this.apply() }
  }

  apply () {
    for (; this.applied < this.ws.messages.length; ++this.applied) {
      const m = this.ws.messages[this.applied]
      if (m.type === 'state' && m.snapshotB64) Y.applyUpdate(this.doc, unb64(m.snapshotB64), 'remote')
      if (m.type === 'remote_update') Y.applyUpdate(this.doc, unb64(m.deltaB64), 'remote')
    }
  }

  text () { return this.doc.getText('t').toString() }
  async flush () { await Promise.all(this.pending.splice(0)) }
}

function snapshotOf (doc) {
  return {
    text: doc.getText('t').toDelta(),
    map: doc.getMap('m').toJSON(),
    array: doc.getArray('a').toJSON(),
    sv: Array.from(Y.decodeStateVector(Y.encodeStateVector(doc)).entries()).sort()
  }
}

// Waits until every client has every update the server acknowledged (a ping round trip after
// the last ack proves the relays before it arrived).
async function settle (clients) {
  for (const c of clients) await c.flush()
  for (const c of clients) { await c.ws.ping(); c.apply() }
}

async function editingSession (server, id) {
  const a = await YClient.join(server, id, 'alice')
  const b = await YClient.join(server, id, 'bob')
  const whole = await YClient.join(server, id, 'whole', { wholeState: true })
  const clients = [a, b, whole]
  const ta = a.doc.getText('t')
  const tb = b.doc.getText('t')
  const tw = whole.doc.getText('t')
  ta.insert(0, 'Hello world')
  await settle(clients)
  tb.insert(5, ', dear')
  ta.insert(0, '» ') // concurrent with bob's insert
  await settle(clients)
  tw.insert(tw.length, ' 👋 from the whole-state client')
  whole.doc.getMap('m').set('by', 'whole')
  await settle(clients)
  ta.delete(2, 5)
  tb.format(0, 3, { bold: true })
  b.doc.getArray('a').push([1, 'two', { three: 3 }])
  tw.insert(0, 'ünïcode ')
  await settle(clients)
  a.doc.getMap('m').set('by', 'alice') // a later write to the key wins over the whole-state one
  tw.delete(0, 3)
  await settle(clients)
  for (const c of clients) assert.deepEqual(snapshotOf(c.doc), snapshotOf(a.doc), `${c.name} converged`)
  assert.equal(a.doc.getMap('m').get('by'), 'alice')
  return clients
}

// The newcomer's view: every message up to the pong that answers its first ping.
async function newcomer (server, id) {
  const ws = await server.connect(id, 'newcomer')
  const state = await ws.next(m => m.type === 'state', 'state')
  await ws.ping()
  const messages = ws.messages.slice()
  await ws.close()
  return { state, messages }
}

// Waits for the compactor to fold every update, then makes one more edit: with a fold every 2
// updates, it stays in the tail.
async function compactAllButOne (server, id, clients) {
  const last = Math.max(...clients.flatMap(c => c.acked))
  await server.waitForDocument(id, d => d.snapshot_version === last, 'the fold of every update')
  clients[0].doc.getText('t').insert(0, '+')
  await settle(clients)
  const record = await server.document(id)
  assert.equal(record.snapshot_version, last, 'one update is left after the last fold')
}

test('a newcomer after compaction gets one folded update at the head seq', async t => {
  const server = await QuireServer.start(['--snapshot-every', '2'])
  t.after(() => server.stop())
  const id = await server.createDocument(undefined) // yjs is the default CRDT
  assert.equal((await server.document(id)).crdt, 'yjs')

  const clients = await editingSession(server, id)
  await compactAllButOne(server, id, clients)
  const head = (await server.document(id)).seq
  // The fold of snapshot and tail: one update covering the head.
  const { state, messages } = await newcomer(server, id)
  assert.equal(state.headSeq, head)
  const fresh = new Y.Doc()
  Y.applyUpdate(fresh, unb64(state.snapshotB64))
  const afterState = messages.filter(m => m.type === 'remote_update').map(m => m.seq)
  assert.deepEqual({ version: state.version, updatesAfterState: afterState },
    { version: head, updatesAfterState: [] }, 'state is one update with version = head seq')
  assert.deepEqual(snapshotOf(fresh), snapshotOf(clients[0].doc))
  // Nothing is pending in the fresh doc: the one update is complete.
  assert.equal(fresh.store.pendingStructs, null)
  assert.equal(fresh.store.pendingDs, null)
  for (const c of clients) await c.ws.close()
})

test('delta clients and a whole-state client converge through the server, newcomers too', async t => {
  const server = await QuireServer.start(['--snapshot-every', '2'])
  t.after(() => server.stop())
  const id = await server.createDocument('yjs')
  const clients = await editingSession(server, id)
  await compactAllButOne(server, id, clients)
  const { state, messages } = await newcomer(server, id)
  const fresh = new Y.Doc()
  Y.applyUpdate(fresh, unb64(state.snapshotB64))
  for (const m of messages) if (m.type === 'remote_update') Y.applyUpdate(fresh, unb64(m.deltaB64))
  assert.deepEqual(snapshotOf(fresh), snapshotOf(clients[0].doc))
  assert.equal(fresh.store.pendingStructs, null)
  // The whole-state client's later updates repeat everything it had: the server's fold keeps
  // one copy (the snapshot is no larger than the state a Y.Doc encodes plus its delete set).
  const ownState = Y.encodeStateAsUpdate(clients[0].doc)
  assert.ok(unb64(state.snapshotB64).length < 4 * ownState.length + 256,
    `snapshot ${unb64(state.snapshotB64).length} bytes vs Y.Doc state ${ownState.length}`)
  for (const c of clients) await c.ws.close()
})

test('invalid Yjs bytes get INVALID_UPDATE and are neither stored nor relayed', async t => {
  const server = await QuireServer.start()
  t.after(() => server.stop())
  const id = await server.createDocument('yjs')
  const a = await YClient.join(server, id, 'alice')
  const b = await YClient.join(server, id, 'bob')
  a.doc.getText('t').insert(0, 'valid')
  await settle([a, b])
  const before = await server.document(id)

  const good = Y.encodeStateAsUpdate(a.doc)
  const truncated = good.slice(0, good.length - 1)
  const badUtf8 = new Uint8Array([1, 1, 7, 0, 4, 1, 1, 0x74, 2, 0xc3, 0x28, 0]) // "t" ← invalid UTF-8
  const cases = { truncated, badUtf8, garbage: new Uint8Array([0xff, 0xff, 0xff]), empty: new Uint8Array([]) }
  for (const [name, bytes] of Object.entries(cases)) {
    await assert.rejects(a.ws.update(`bad-${name}`, bytes), e => e.code === 'INVALID_UPDATE', name)
  }
  // A refused opId was not recorded: valid bytes under it are a new update, not a duplicate.
  const other = new Y.Doc()
  other.getMap('m').set('k', 1)
  const seq = await a.ws.update('bad-truncated', Y.encodeStateAsUpdate(other))
  assert.equal(seq, before.seq + 1)
  a.doc.getText('t').insert(5, '!')
  await settle([a, b])

  const after = await server.document(id)
  assert.equal(after.seq, before.seq + 2)
  assert.equal(after.update_count, before.update_count + 2)
  const relayed = b.ws.messages.filter(m => m.type === 'remote_update').map(m => m.opId)
  assert.deepEqual(relayed, ['alice-1', 'bad-truncated', 'alice-2'])
  assert.equal(b.text(), 'valid!')
  assert.equal(b.doc.getMap('m').get('k'), 1)
  const { state, messages } = await newcomer(server, id)
  const fresh = new Y.Doc()
  if (state.snapshotB64) Y.applyUpdate(fresh, unb64(state.snapshotB64))
  for (const m of messages) if (m.type === 'remote_update') Y.applyUpdate(fresh, unb64(m.deltaB64))
  assert.equal(fresh.getText('t').toString(), 'valid!')
  await a.ws.close()
  await b.ws.close()
})
