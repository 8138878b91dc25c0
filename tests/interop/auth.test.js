// Access control (README "Access control") with the real npm clients against
// `quire serve --auth-secret`: HS256 tokens minted here with node's crypto (HMAC-SHA256,
// base64url), documents created and shared over REST with `Authorization: Bearer`.
// y-websocket (`params: { token }`): owner and editor converge, a viewer receives but its own
// edits reach neither the others nor the log; no token or a bad one is refused at the upgrade
// (401) and never syncs; a share-link token (`docs: {"<id>": "viewer"}`) reads without a grant.
// @hocuspocus/provider (`token`): an editor syncs, a viewer is authenticated `readonly` and its
// edits do not reach the log, a bad token gets authenticationFailed.
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('crypto')
const WebSocket = require('ws')
const {
  QuireServer, provider, waitFor, synced, rng, randomEdit, Y,
  hpProvider, hpSynced, hpAcked
} = require('./lib')

const SECRET = 'interop-auth-secret-0123456789abcdef'
const TEST_TIMEOUT = 8000 // each test; the file runs in ~5 s

const b64url = x => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url')

// An HS256 JWT: sub, name, exp (in 5 minutes) and any extra claims (e.g. docs).
function jwt (sub, extra = {}, secret = SECRET) {
  const head = b64url({ alg: 'HS256', typ: 'JWT' })
  const body = b64url({ sub, name: sub[0].toUpperCase() + sub.slice(1), exp: Math.floor(Date.now() / 1000) + 300, ...extra })
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

const TOKENS = {
  alice: jwt('alice'), // owner
  bob: jwt('bob'), // editor grant
  carol: jwt('carol') // viewer grant
}

// REST with a bearer token (or none) and an optional JSON body.
async function api (server, method, path, token, body) {
  const headers = {}
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`,
    { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

async function startAuthServer (t) {
  const server = await QuireServer.start(['--database-url', 'memory://', '--auth-secret', SECRET])
  t.after(() => server.stop())
  return server
}

// alice creates `id`; bob gets editor, carol viewer.
async function createShared (server, id) {
  const created = await api(server, 'POST', '/api/v1/documents', TOKENS.alice, { title: id, id })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  assert.equal(created.body.owner_id, 'alice')
  for (const [user, role] of [['bob', 'editor'], ['carol', 'viewer']]) {
    const r = await api(server, 'PUT', `/api/v1/documents/${id}/permissions/${user}`, TOKENS.alice, { role })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal(r.body.role, role)
  }
}

async function historyCount (server, id) {
  const r = await api(server, 'GET', `/api/v1/documents/${id}/history?limit=500`, TOKENS.alice)
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.has_more, false, 'the whole history fits one page')
  return r.body.items.length
}

// The history stops growing (the accepted edits are all in the log).
async function settledHistory (server, id) {
  let last = -1
  await waitFor(async () => {
    const n = await historyCount(server, id)
    const same = n === last
    last = n
    if (!same) await new Promise(resolve => setTimeout(resolve, 150))
    return same
  }, 'the history to settle', 3000)
  return last
}

// The text at the head of the log, from the server's state (raw Yjs update).
async function serverText (server, id) {
  const res = await fetch(`http://127.0.0.1:${server.port}/api/v1/documents/${id}/state`,
    { headers: { authorization: `Bearer ${TOKENS.alice}`, accept: 'application/octet-stream' } })
  assert.equal(res.status, 200)
  const doc = new Y.Doc()
  const bytes = new Uint8Array(await res.arrayBuffer())
  if (bytes.length > 0) Y.applyUpdate(doc, bytes)
  return doc.getText('t').toString()
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const texts = cs => cs.map(c => c.text.toString())
const allEqual = cs => texts(cs).every(s => s === texts(cs)[0])

function destroyAll (cs) {
  for (const c of cs) {
    try { c.p.destroy() } catch {}
  }
}

test('y-websocket: owner and editor converge; a viewer receives, but its edits reach neither the others nor the log',
  { timeout: TEST_TIMEOUT }, async t => {
    const server = await startAuthServer(t)
    const id = 'auth-yws'
    await createShared(server, id)
    const owner = provider(server, id, { params: { token: TOKENS.alice } })
    const editor = provider(server, id, { params: { token: TOKENS.bob } })
    const viewer = provider(server, id, { params: { token: TOKENS.carol } })
    t.after(() => destroyAll([owner, editor, viewer]))
    await Promise.all([owner, editor, viewer].map(synced))

    const rand = rng(909)
    for (let i = 0; i < 80; i++) {
      randomEdit(rand() < 0.5 ? owner.text : editor.text, rand, rand() < 0.5 ? 'o' : 'e')
      if (rand() < 0.2) await new Promise(resolve => setImmediate(resolve))
    }
    owner.text.insert(0, 'OWNER ')
    editor.text.insert(0, 'EDITOR ')
    await waitFor(() => allEqual([owner, editor, viewer]), 'owner, editor and viewer converge', 5000)
    for (const s of ['OWNER', 'EDITOR']) assert.ok(viewer.text.toString().includes(s), `the viewer received ${s}`)
    const before = await settledHistory(server, id)
    assert.equal(await serverText(server, id), owner.text.toString(), 'the log holds the converged text')

    viewer.text.insert(0, 'VIEWER ')
    await sleep(600) // accepted edits take milliseconds
    assert.ok(viewer.text.toString().startsWith('VIEWER '), 'the edit stays local to the viewer')
    for (const c of [owner, editor]) assert.ok(!c.text.toString().includes('VIEWER'), 'the viewer edit reached another client')
    assert.equal(await historyCount(server, id), before, 'the viewer edit was logged')
    assert.ok(!(await serverText(server, id)).includes('VIEWER'), 'the viewer edit is in the server state')

    // The viewer still receives what others write afterwards.
    editor.text.insert(editor.text.length, ' LATER')
    await waitFor(() => viewer.text.toString().endsWith(' LATER') && owner.text.toString().endsWith(' LATER'),
      'the viewer receives a later edit')
    assert.ok(!owner.text.toString().includes('VIEWER'))
  })

test('y-websocket: without a token or with a bad one the upgrade is refused (401) and nothing syncs',
  { timeout: TEST_TIMEOUT }, async t => {
    const server = await startAuthServer(t)
    const id = 'auth-refused'
    await createShared(server, id)
    const owner = provider(server, id, { params: { token: TOKENS.alice } })
    t.after(() => destroyAll([owner]))
    await synced(owner)
    owner.text.insert(0, 'secret content')

    const forged = jwt('alice', {}, 'not-the-secret') // bad signature
    const expired = jwt('bob', { exp: Math.floor(Date.now() / 1000) - 3600 }) // beyond the 30 s skew
    const tampered = (() => { // alice's signature over a payload that now says sub: mallory
      const [h, , s] = TOKENS.alice.split('.')
      return `${h}.${b64url({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 300 })}.${s}`
    })()
    const cases = { none: undefined, forged, expired, tampered }

    // The raw upgrade: HTTP 401 on the WebSocket handshake.
    for (const [what, token] of Object.entries(cases)) {
      const url = `${server.yjsUrl}/${id}` + (token ? `?token=${token}` : '')
      const status = await new Promise((resolve, reject) => {
        const ws = new WebSocket(url)
        ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy() })
        ws.on('open', () => { ws.close(); resolve('open') })
        ws.on('error', reject)
      })
      assert.equal(status, 401, `${what}: the upgrade was not refused with 401`)
    }

    // The real provider: connection errors, never synced, never sees the content.
    const cs = Object.entries(cases).map(([what, token]) => {
      const c = provider(server, id, token ? { params: { token } } : {})
      c.what = what
      c.errors = []
      c.p.on('connection-error', e => c.errors.push(e?.message ?? String(e)))
      return c
    })
    t.after(() => destroyAll(cs))
    await waitFor(() => cs.every(c => c.errors.length >= 2), 'every provider failed to connect (and retried)', 4000)
    for (const c of cs) {
      assert.equal(c.p.synced, false, `${c.what}: synced`)
      assert.equal(c.p.wsconnected, false, `${c.what}: connected`)
      assert.equal(c.text.toString(), '', `${c.what}: received content`)
      assert.match(c.errors[0], /401/, `${c.what}: ${c.errors[0]}`)
    }
    assert.equal(owner.text.toString(), 'secret content')
  })

test('Hocuspocus: an editor syncs; a viewer is authenticated readonly and its edits are not logged; a bad token fails',
  { timeout: TEST_TIMEOUT }, async t => {
    const server = await startAuthServer(t)
    const id = 'auth-hp'
    await createShared(server, id)
    const seen = { owner: [], editor: [], viewer: [] }
    const owner = hpProvider(server, id, { token: TOKENS.alice, onAuthenticated: d => seen.owner.push(d) })
    const editor = hpProvider(server, id, { token: TOKENS.bob, onAuthenticated: d => seen.editor.push(d) })
    const viewer = hpProvider(server, id, { token: TOKENS.carol, onAuthenticated: d => seen.viewer.push(d) })
    let failed = null
    const forged = hpProvider(server, id, {
      token: jwt('alice', {}, 'not-the-secret'),
      onAuthenticationFailed: d => { failed = d }
    })
    t.after(() => destroyAll([owner, editor, viewer, forged]))
    await Promise.all([owner, editor, viewer].map(hpSynced))
    assert.deepEqual(seen.owner.at(-1), { scope: 'read-write' })
    assert.deepEqual(seen.editor.at(-1), { scope: 'read-write' })
    assert.deepEqual(seen.viewer.at(-1), { scope: 'readonly' })
    assert.deepEqual([owner, editor, viewer].map(c => c.p.authorizedScope), ['read-write', 'read-write', 'readonly'])

    editor.text.insert(0, 'from the editor ')
    owner.text.insert(0, 'from the owner ')
    await waitFor(() => allEqual([owner, editor, viewer]) && owner.text.length > 0 && hpAcked(owner) && hpAcked(editor),
      'editor and owner edits synced and acknowledged; the viewer received them', 5000)
    const before = await settledHistory(server, id)
    assert.equal(await serverText(server, id), editor.text.toString())

    viewer.text.insert(0, 'VIEWER ')
    await sleep(600)
    for (const c of [owner, editor]) assert.ok(!c.text.toString().includes('VIEWER'), 'the viewer edit reached another client')
    assert.equal(await historyCount(server, id), before, 'the viewer edit was logged')
    assert.ok(!(await serverText(server, id)).includes('VIEWER'), 'the viewer edit is in the server state')
    editor.text.insert(editor.text.length, ' LATER')
    await waitFor(() => viewer.text.toString().endsWith(' LATER'), 'the viewer receives a later edit')

    await waitFor(() => failed !== null, 'authenticationFailed for a bad signature', 3000)
    assert.equal(typeof failed.reason, 'string')
    assert.equal(forged.p.isAuthenticated, false)
    assert.equal(forged.text.toString(), '')
  })

test('a share-link token (docs: {id: viewer}) lets y-websocket read a document without a grant',
  { timeout: TEST_TIMEOUT }, async t => {
    const server = await startAuthServer(t)
    const id = 'auth-share'
    const created = await api(server, 'POST', '/api/v1/documents', TOKENS.alice, { title: 'shared by link', id })
    assert.equal(created.status, 201)
    const owner = provider(server, id, { params: { token: TOKENS.alice } })
    t.after(() => destroyAll([owner]))
    await synced(owner)
    owner.text.insert(0, 'read me by link')

    const link = jwt('dave', { docs: { [id]: 'viewer' } })
    const other = jwt('dave', { docs: { 'some-other-doc': 'viewer' } })
    assert.equal((await api(server, 'GET', `/api/v1/documents/${id}`, link)).status, 200, 'REST read with the link')
    assert.equal((await api(server, 'GET', `/api/v1/documents/${id}`, other)).status, 404, 'a link to another document')
    const perms = await api(server, 'GET', `/api/v1/documents/${id}/permissions`, TOKENS.alice)
    assert.deepEqual(perms.body.items, [], 'no grant in the server')

    const reader = provider(server, id, { params: { token: link } })
    t.after(() => destroyAll([reader]))
    await synced(reader)
    await waitFor(() => reader.text.toString() === 'read me by link', 'the link reader gets the content')
    owner.text.insert(owner.text.length, '!')
    await waitFor(() => reader.text.toString() === 'read me by link!', 'and later edits')

    // Viewer by link: its own edits are dropped like a granted viewer's.
    const before = await settledHistory(server, id)
    reader.text.insert(0, 'LINK ')
    await sleep(500)
    assert.equal(owner.text.toString(), 'read me by link!')
    assert.equal(await historyCount(server, id), before)
  })
