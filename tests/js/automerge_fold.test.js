// The automerge codec folds by concatenation: `save` plus `saveIncremental` chunks, sent as
// JSON-protocol updates to the real server and compacted by it, load with the real
// @automerge/automerge into the document that made them.
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const Automerge = require('@automerge/automerge')
const { QuireServer } = require('./lib/server')

const unb64 = s => new Uint8Array(Buffer.from(s, 'base64'))
const concat = parts => new Uint8Array(Buffer.concat(parts.map(p => Buffer.from(p))))

// Two actors editing one document: A saves, then both send incremental chunks of their own
// changes (B forked from A's first save, so its chunks are concurrent with A's).
function makeChunks () {
  let a = Automerge.from({ title: 'fold', items: [], text: 'héllo 👋' }, { actor: 'aa'.repeat(16) })
  const chunks = [Automerge.save(a)]
  let b = Automerge.clone(a, { actor: 'bb'.repeat(16) })
  for (let i = 0; i < 3; ++i) {
    a = Automerge.change(a, d => { d.items.push(`a${i}`); d.count = i })
    chunks.push(Automerge.saveIncremental(a))
    b = Automerge.change(b, d => { d.items.unshift(`b${i}`); d[`b${i}`] = { nested: [i, 'x'] } })
    chunks.push(Automerge.saveIncremental(b))
  }
  a = Automerge.merge(a, b)
  a = Automerge.change(a, d => { delete d.count; d.title = 'folded' })
  chunks.push(Automerge.saveIncremental(a))
  return { doc: a, chunks }
}

// The document a newcomer rebuilds from the `state` message and the relays after it.
async function joinAndLoad (server, id, user) {
  const ws = await server.connect(id, user)
  const state = await ws.next(m => m.type === 'state', 'state')
  await ws.ping() // every relay of the tail arrived before the pong
  const tail = ws.messages.filter(m => m.type === 'remote_update').map(m => unb64(m.deltaB64))
  await ws.close()
  return { state, tail, doc: Automerge.load(concat([unb64(state.snapshotB64), ...tail])) }
}

test('automerge save and saveIncremental chunks folded by the server load as the same document', async t => {
  const server = await QuireServer.start(['--snapshot-every', '2'])
  t.after(() => server.stop())
  const { doc, chunks } = makeChunks()
  assert.equal(chunks.length, 8)
  const id = await server.createDocument('automerge')

  const writer = await server.connect(id, 'writer')
  await writer.next(m => m.type === 'state', 'state')
  let seq = 0
  for (let i = 0; i < chunks.length; ++i) seq = await writer.update(`chunk-${i}`, chunks[i])
  await writer.close()

  // Eight updates with a fold every two: the last snapshot covers the head.
  const record = await server.waitForDocument(id, d => d.snapshot_version === seq, 'the last fold')
  assert.equal(record.update_count, 8)

  const joined = await joinAndLoad(server, id, 'reader')
  assert.ok(joined.state.version >= seq)
  assert.equal(joined.state.headSeq, record.seq)
  assert.equal(joined.tail.length, 0)
  // The fold is the concatenation of every chunk, in seq order.
  assert.deepEqual(unb64(joined.state.snapshotB64), concat(chunks))
  assert.deepEqual(Automerge.toJS(joined.doc), Automerge.toJS(doc))
  assert.deepEqual(Automerge.getHeads(joined.doc).sort(), Automerge.getHeads(doc).sort())
  assert.equal(Automerge.toJS(joined.doc).title, 'folded')
})

test('automerge snapshot plus an unfolded tail loads as the same document', async t => {
  const server = await QuireServer.start(['--snapshot-every', '2'])
  t.after(() => server.stop())
  const { doc, chunks } = makeChunks()
  const id = await server.createDocument('automerge')
  const writer = await server.connect(id, 'writer')
  await writer.next(m => m.type === 'state', 'state')
  const seqs = []
  const firstSeven = chunks.slice(0, 7)
  for (let i = 0; i < 6; ++i) seqs.push(await writer.update(`chunk-${i}`, firstSeven[i]))
  await server.waitForDocument(id, d => d.snapshot_version === seqs[5], 'the fold of six chunks')
  // With a fold every two updates, the seventh stays in the tail.
  seqs.push(await writer.update('chunk-6', chunks[6]))
  assert.equal((await server.document(id)).snapshot_version, seqs[5])
  const partial = await joinAndLoad(server, id, 'reader-1')
  assert.deepEqual(concat([unb64(partial.state.snapshotB64), ...partial.tail]), concat(firstSeven))

  const seq = await writer.update('chunk-7', chunks[7])
  await writer.close()
  await server.waitForDocument(id, d => d.snapshot_version === seq, 'the last fold')
  const full = await joinAndLoad(server, id, 'reader-2')
  assert.deepEqual(Automerge.toJS(full.doc), Automerge.toJS(doc))
  assert.deepEqual(Automerge.getHeads(full.doc).sort(), Automerge.getHeads(doc).sort())
  // The partial state is the document before the last chunk.
  const before = Automerge.load(concat(firstSeven))
  assert.deepEqual(Automerge.toJS(partial.doc), Automerge.toJS(before))
})
