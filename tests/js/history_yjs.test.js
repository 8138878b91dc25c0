// History and time travel on the real server (subprocess) checked with the npm `yjs` package:
// the state at every seq of a small document (GET state?at=) is, applied to a fresh Y.Doc,
// exactly the document after the updates up to that seq; a fork restores an older state as a
// new document that clients can join and edit.
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const Y = require('yjs')
const { QuireServer } = require('./lib/server')

const unb64 = s => new Uint8Array(Buffer.from(s, 'base64'))

function view (doc) {
  return {
    text: doc.getText('t').toString(),
    map: doc.getMap('m').toJSON(),
    array: doc.getArray('a').toJSON()
  }
}

function docFrom (bytes) {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, bytes)
  return doc
}

// Edits one Y.Doc step by step; each step's update is sent and acknowledged before the next,
// so seq order is edit order. Returns [{seq, view}] after each update.
async function editSession (ws) {
  const doc = new Y.Doc()
  let last = null
  doc.on('update', u => { last = u })
  const steps = [
    d => d.getText('t').insert(0, 'hello'),
    d => d.getText('t').insert(5, ' world'),
    d => d.getMap('m').set('k', 1),
    d => d.getText('t').delete(0, 1),
    d => d.getArray('a').push(['x', 'y']),
    d => d.getMap('m').set('k', 2),
    d => d.getText('t').insert(0, 'H'),
    d => d.getArray('a').delete(0, 1),
    d => d.getMap('m').delete('k'),
    d => d.getText('t').delete(5, 6)
  ]
  const out = []
  let n = 0
  for (const step of steps) {
    doc.transact(() => step(doc))
    const seq = await ws.update(`e${++n}`, last)
    out.push({ seq, view: view(doc) })
  }
  return out
}

test('the state at every seq of a small yjs document is what the npm yjs package had then', async t => {
  const server = await QuireServer.start(['--snapshot-every', '3'])
  t.after(() => server.stop())
  const id = await server.createDocument('yjs')
  const ws = await server.connect(id, 'editor')
  t.after(() => ws.close())
  await ws.next(m => m.type === 'state', 'state')
  const steps = await editSession(ws)
  const named = await server.rest('POST', `/api/v1/documents/${id}/versions`, { name: 'after ten edits' })
  assert.equal(named.status, 201)
  // Snapshots land between updates (every 3): the states below go through them.
  const head = (await server.waitForDocument(id, d => d.snapshot_version >= steps[8].seq, 'folds')).seq

  const empty = view(new Y.Doc())
  for (let at = 1; at <= head; at++) {
    const r = await server.rest('GET', `/api/v1/documents/${id}/state?at=${at}`)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal(r.body.version, at)
    assert.equal(r.body.updates, undefined)
    const expected = steps.filter(s => s.seq <= at).pop()?.view ?? empty
    assert.deepEqual(view(docFrom(unb64(r.body.snapshotB64))), expected, `state at ${at}`)
  }
  // Raw bytes: the same single update.
  const mid = steps[4].seq
  const raw = await fetch(`${server.base}/api/v1/documents/${id}/state?at=${mid}`,
    { headers: { accept: 'application/octet-stream' } })
  assert.equal(raw.status, 200)
  assert.equal(raw.headers.get('x-quire-version'), String(mid))
  assert.deepEqual(view(docFrom(new Uint8Array(await raw.arrayBuffer()))), steps[4].view)

  const beyond = await server.rest('GET', `/api/v1/documents/${id}/state?at=${head + 1}`)
  assert.equal(beyond.status, 400)
  assert.equal(beyond.body.error.field, 'at')

  // The history lists every event once, in order, across pages.
  const seqs = []
  let cursor = ''
  for (;;) {
    const page = await server.rest('GET', `/api/v1/documents/${id}/history?limit=4${cursor ? '&cursor=' + cursor : ''}`)
    assert.equal(page.status, 200)
    for (const item of page.body.items) seqs.push(item.seq)
    cursor = page.body.next_cursor
    if (!page.body.has_more) break
  }
  assert.deepEqual(seqs, Array.from({ length: head }, (_, i) => i + 1))
})

test('a fork restores an older yjs state as a new document that clients join and edit', async t => {
  const server = await QuireServer.start()
  t.after(() => server.stop())
  const id = await server.createDocument('yjs', 'original')
  const ws = await server.connect(id, 'editor')
  t.after(() => ws.close())
  await ws.next(m => m.type === 'state', 'state')
  const steps = await editSession(ws)

  const at = steps[3].seq
  const f = await server.rest('POST', `/api/v1/documents/${id}/fork`, { at, title: 'restored' })
  assert.equal(f.status, 201, JSON.stringify(f.body))
  assert.equal(f.body.forked_from.id, id)
  const forkId = f.body.id

  // A client joining the fork gets the state at `at`, and its edits build on it.
  const joiner = await server.connect(forkId, 'joiner')
  t.after(() => joiner.close())
  const state = await joiner.next(m => m.type === 'state', 'fork state')
  const doc = new Y.Doc()
  if (state.snapshotB64) Y.applyUpdate(doc, unb64(state.snapshotB64))
  for (const u of state.updates ?? []) Y.applyUpdate(doc, unb64(u.deltaB64 ?? u.updateB64))
  assert.deepEqual(view(doc), steps[3].view)
  let last = null
  doc.on('update', u => { last = u })
  doc.getText('t').insert(0, '>')
  await joiner.update('fork-edit', last)
  const after = await server.rest('GET', `/api/v1/documents/${forkId}/state`)
  assert.equal(docFrom(unb64(after.body.snapshotB64)).getText('t').toString(), '>' + steps[3].view.text)

  // The source keeps its content and records the fork.
  const src = await server.rest('GET', `/api/v1/documents/${id}/history?order=desc&limit=1`)
  assert.equal(src.body.items[0].kind, 'forked_to')
  assert.equal(src.body.items[0].documentId, forkId)
  const srcState = await server.rest('GET', `/api/v1/documents/${id}/state`)
  assert.deepEqual(view(docFrom(unb64(srcState.body.snapshotB64))), steps[steps.length - 1].view)
})
