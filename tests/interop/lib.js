// Helpers for the drop-in tests: the real server as a subprocess, y-websocket and Hocuspocus
// providers on the `ws` package, a JSON-protocol client (io/json_protocol.md) that folds what it receives into a
// Y.Doc, and polling with a deadline.
'use strict'
const { spawn, spawnSync } = require('child_process')
const WebSocket = require('ws')
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const { HocuspocusProvider, HocuspocusProviderWebsocket } = require('@hocuspocus/provider')

const DEADLINE_MS = 10000

function quireBinary () {
  const bin = process.env.QUIRE_BIN
  if (!bin) throw new Error('QUIRE_BIN is not set: run the tests with tests/interop/run.sh BINARY')
  return bin
}

class QuireServer {
  // Resolves once the server logged `listening` with its port. `port` 0 picks a free one.
  static async start (flags = [], port = 0) {
    const proc = spawn(quireBinary(), ['serve', '--port', String(port), ...flags],
      { stdio: ['ignore', 'pipe', 'pipe'] })
    const server = new QuireServer(proc)
    server.port = await new Promise((resolve, reject) => {
      let log = ''
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), DEADLINE_MS)
      const onData = chunk => {
        log += chunk
        server.log = log
        const m = /"listening".*?"port":\s*(\d+)/.exec(log) ?? /listening.*?port=(\d+)/.exec(log)
        if (m) {
          clearTimeout(timer)
          resolve(Number(m[1]))
        }
      }
      proc.stdout.setEncoding('utf8').on('data', onData)
      proc.stderr.setEncoding('utf8').on('data', onData)
      proc.once('exit', code => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${log}`)) })
    })
    return server
  }

  constructor (proc) { this.proc = proc; this.log = '' }
  get yjsUrl () { return `ws://127.0.0.1:${this.port}/yjs` }
  get hocuspocusUrl () { return `ws://127.0.0.1:${this.port}/hocuspocus` }

  async rest (method, path) {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, { method, headers: { 'x-user-id': 'tester' } })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : null }
  }

  stop () {
    if (this.proc.exitCode !== null) return Promise.resolve()
    return new Promise(resolve => {
      this.proc.once('exit', resolve)
      this.proc.kill('SIGTERM')
    })
  }
}

function replay (databaseUrl) {
  return spawnSync(quireBinary(), ['replay', '--database-url', databaseUrl], { encoding: 'utf8' })
}

// A y-websocket WebsocketProvider on its own Y.Doc.
function provider (server, room, opts = {}) {
  const doc = new Y.Doc()
  const p = new WebsocketProvider(server.yjsUrl, room, doc, {
    WebSocketPolyfill: WebSocket, disableBc: true, maxBackoffTime: 300, ...opts
  })
  return { doc, p, text: doc.getText('t') }
}

// The provider closes sockets that are still connecting when it is destroyed (after removing
// its own listeners): `ws` then emits an 'error' nobody listens to. Tests end that way.
class QuietWebSocket extends WebSocket {
  constructor (...args) {
    super(...args)
    this.on('error', () => {})
  }
}

// Socket options for Hocuspocus providers: quick reconnects (the provider's defaults wait 1 s
// and more), no jitter.
const HP_SOCKET = { WebSocketPolyfill: QuietWebSocket, delay: 100, minDelay: 100, maxDelay: 400, factor: 1.5, jitter: false }

// A HocuspocusProvider with its own socket on its own Y.Doc.
function hpProvider (server, name, opts = {}) {
  const doc = new Y.Doc()
  const p = new HocuspocusProvider({ url: server.hocuspocusUrl, name, document: doc, token: 'interop', ...HP_SOCKET, ...opts })
  return { doc, p, text: doc.getText('t'), socket: p.configuration.websocketProvider }
}

// One HocuspocusProviderWebsocket for several documents (providers attached to it).
function hpSocket (server, opts = {}) {
  return new HocuspocusProviderWebsocket({ url: server.hocuspocusUrl, ...HP_SOCKET, ...opts })
}

function hpAttach (socket, name) {
  const doc = new Y.Doc()
  const p = new HocuspocusProvider({ websocketProvider: socket, name, document: doc, token: 'interop' })
  p.attach()
  return { doc, p, text: doc.getText('t'), socket }
}

// The provider synced its document (the server's step 2 arrived).
function hpSynced (c) {
  if (c.p.isSynced) return Promise.resolve()
  return new Promise(resolve => {
    const done = () => { c.p.off('synced', done); resolve() }
    c.p.on('synced', done)
  })
}

// Every update the provider sent was acknowledged (SyncStatus), i.e. committed by the server.
function hpAcked (c) { return !c.p.hasUnsyncedChanges }

// A JSON-protocol client folding `state` and `remote_update` into a Y.Doc.
class JsonDoc {
  constructor (url) {
    this.doc = new Y.Doc()
    this.ws = new WebSocket(url)
    this.errors = []
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', resolve)
      this.ws.on('error', reject)
    })
    this.ws.on('message', data => {
      const m = JSON.parse(data.toString())
      if (m.type === 'state' && m.snapshotB64) Y.applyUpdate(this.doc, Buffer.from(m.snapshotB64, 'base64'), 'server')
      if (m.type === 'remote_update') Y.applyUpdate(this.doc, Buffer.from(m.deltaB64, 'base64'), 'server')
      if (m.type === 'error') this.errors.push(m)
    })
    this.n = 0
    this.doc.on('update', (u, origin) => {
      if (origin === 'server') return
      this.ws.send(JSON.stringify({ type: 'update', opId: `json-${process.pid}-${++this.n}-${Math.random()}`, deltaB64: Buffer.from(u).toString('base64') }))
    })
  }

  get text () { return this.doc.getText('t') }
  close () { this.ws.close() }
}

async function waitFor (pred, what, ms = DEADLINE_MS) {
  const until = Date.now() + ms
  for (;;) {
    if (await pred()) return
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

function synced (c) {
  return c.p.synced ? Promise.resolve() : new Promise(resolve => c.p.once('synced', resolve))
}

// A seeded PRNG (mulberry32) so failures can be replayed.
function rng (seed) {
  return () => {
    seed |= 0; seed = seed + 0x6D2B79F5 | 0
    let t = Math.imul(seed ^ seed >>> 15, 1 | seed)
    t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t
    return ((t ^ t >>> 14) >>> 0) / 4294967296
  }
}

function randomEdit (text, rand, tag) {
  if (text.length > 0 && rand() < 0.3) {
    const at = Math.floor(rand() * text.length)
    text.delete(at, Math.min(1 + Math.floor(rand() * 3), text.length - at))
  } else {
    text.insert(Math.floor(rand() * (text.length + 1)), tag + Math.floor(rand() * 100))
  }
}

module.exports = {
  QuireServer, replay, provider, JsonDoc, waitFor, synced, rng, randomEdit, Y,
  hpProvider, hpSocket, hpAttach, hpSynced, hpAcked
}
