// Runs the real server (`quire serve --port 0 --database-url memory://`) as a subprocess and
// talks to it over REST and the JSON WebSocket protocol (io/json_protocol.md).
'use strict'
const { spawn } = require('child_process')
const WebSocket = globalThis.WebSocket ?? require('ws')
const { quireBinary } = require('./quire')

const DEADLINE_MS = 10000

class QuireServer {
  // Resolves once the server logged `listening` with its port.
  static async start (flags = []) {
    const proc = spawn(quireBinary(), ['serve', '--port', '0', '--database-url', 'memory://', ...flags],
      { stdio: ['ignore', 'pipe', 'pipe'] })
    const server = new QuireServer(proc)
    server.port = await new Promise((resolve, reject) => {
      let log = ''
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), DEADLINE_MS)
      const onData = chunk => {
        log += chunk
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

  constructor (proc) { this.proc = proc }
  get base () { return `http://127.0.0.1:${this.port}` }

  async rest (method, path, body) {
    const res = await fetch(this.base + path, {
      method,
      headers: body ? { 'content-type': 'application/json', 'x-user-id': 'tester' } : { 'x-user-id': 'tester' },
      body: body ? JSON.stringify(body) : undefined
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : null }
  }

  async createDocument (crdt, title = 'test') {
    const r = await this.rest('POST', '/api/v1/documents', { title, crdt })
    if (r.status !== 201) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body.id
  }

  async document (id) {
    const r = await this.rest('GET', `/api/v1/documents/${id}`)
    if (r.status !== 200) throw new Error(`get failed: ${r.status} ${JSON.stringify(r.body)}`)
    return r.body
  }

  // Polls the catalog until `pred(record)` holds (the compactor runs after the acks).
  async waitForDocument (id, pred, what) {
    const until = Date.now() + DEADLINE_MS
    for (;;) {
      const doc = await this.document(id)
      if (pred(doc)) return doc
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(doc)}`)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }

  async connect (id, userId, query = '') {
    const ws = new JsonClient(`ws://127.0.0.1:${this.port}/ws/documents/${id}?userId=${userId}${query}`)
    await ws.opened
    return ws
  }

  stop () {
    if (this.proc.exitCode !== null) return Promise.resolve()
    return new Promise(resolve => {
      this.proc.once('exit', resolve)
      this.proc.kill('SIGTERM')
    })
  }
}

// A JSON-protocol client that keeps every message it received, in order.
class JsonClient {
  constructor (url) {
    this.messages = []
    this.waiters = []
    this.ws = new WebSocket(url)
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = resolve
      this.ws.onerror = e => reject(new Error(`websocket error: ${e.message ?? e}`))
    })
    this.ws.onmessage = ev => {
      this.messages.push(JSON.parse(typeof ev.data === 'string' ? ev.data : ev.data.toString()))
      for (const w of this.waiters.splice(0)) w()
    }
  }

  send (msg) { this.ws.send(JSON.stringify(msg)) }

  // The first message at or after index `from` for which `pred` holds.
  async next (pred, what, from = 0) {
    const until = Date.now() + DEADLINE_MS
    for (;;) {
      const i = this.messages.findIndex((m, k) => k >= from && pred(m))
      if (i >= 0) return this.messages[i]
      const left = until - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages)}`)
      await new Promise(resolve => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  // Sends an update and resolves to its ack (rejects on an error answer).
  async update (opId, bytes) {
    const from = this.messages.length
    this.send({ type: 'update', opId, deltaB64: Buffer.from(bytes).toString('base64') })
    const m = await this.next(m => (m.type === 'ack' || m.type === 'error') && m.opId === opId, `ack ${opId}`, from)
    if (m.type === 'error') throw Object.assign(new Error(`${m.code}: ${m.message}`), { code: m.code })
    return m.seq
  }

  // A round trip that proves every earlier message from the server has arrived.
  async ping () {
    const ts = Math.floor(Math.random() * 1e9)
    const from = this.messages.length
    this.send({ type: 'ping', ts })
    await this.next(m => m.type === 'pong' && m.ts === ts, 'pong', from)
  }

  close () {
    return new Promise(resolve => {
      if (this.ws.readyState === 3) return resolve()
      this.ws.onclose = () => resolve()
      this.ws.close()
    })
  }
}

module.exports = { QuireServer, JsonClient }
