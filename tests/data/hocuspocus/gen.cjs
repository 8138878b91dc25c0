// Hocuspocus protocol vectors from the real npm packages, for tests/core/hocuspocus_test.cc.
//
//   (cd tests/interop && npm ci) && node tests/data/hocuspocus/gen.cjs
//
// writes vectors.json beside this file. Modules resolve from tests/interop/node_modules (its
// package.json pins @hocuspocus/provider and @hocuspocus/server).
//
// client_to_server: frames a real HocuspocusProvider sends, captured from a stand-in WebSocket
// (the provider is driven through its own socket events: open, server messages, destroy).
// server_to_client: frames made by @hocuspocus/server's own OutgoingMessage and MessageReceiver
// (the code paths its Connection uses), with a stand-in connection that records what is sent.
// Every frame is also decoded here with lib0, independently of the C++ decoder, into the
// fields the test compares. Deterministic: fixed client ids, session ids and contents.
'use strict'
const fs = require('fs')
const path = require('path')

const modules = path.join(__dirname, '..', '..', 'interop', 'node_modules')
const req = m => require(require.resolve(m, { paths: [modules] }))
const Y = req('yjs')
const encoding = req('lib0/encoding')
const decoding = req('lib0/decoding')
const awarenessProtocol = req('y-protocols/awareness')
const { HocuspocusProvider, HocuspocusProviderWebsocket } = req('@hocuspocus/provider')
const server = req('@hocuspocus/server')

const hex = u => Buffer.from(u).toString('hex')
const version = m => JSON.parse(fs.readFileSync(path.join(modules, m, 'package.json'), 'utf8')).version

function assert (cond, msg) {
  if (!cond) throw new Error('ASSERTION FAILED: ' + msg)
}

// ---------------------------------------------------------------- independent decoding
// Decodes one frame with lib0 by the layouts of @hocuspocus/common, provider and server
// (types: Sync 0, Awareness 1, Auth 2, QueryAwareness 3, SyncReply 4, Stateless 5,
// BroadcastStateless 6, Close 7, SyncStatus 8, Ping 9, Pong 10).
function describe (bytes, direction) {
  if (bytes.length === 1 && (bytes[0] === 9 || bytes[0] === 10)) {
    return { type: bytes[0] }
  }
  const d = decoding.createDecoder(bytes)
  const address = decoding.readVarString(d)
  const nul = address.indexOf('\0')
  const out = {
    address,
    document: nul === -1 ? address : address.slice(0, nul),
    session: nul === -1 ? '' : address.slice(nul + 1),
    type: decoding.readVarUint(d)
  }
  switch (out.type) {
    case 0: case 4:
      out.sync_type = decoding.readVarUint(d)
      out.payload_hex = hex(decoding.readVarUint8Array(d))
      break
    case 1:
      out.payload_hex = hex(decoding.readVarUint8Array(d))
      break
    case 2:
      out.auth_type = decoding.readVarUint(d)
      if (out.auth_type === 0 && direction === 'to_server') {
        out.token = decoding.readVarString(d)
        if (decoding.hasContent(d)) out.provider_version = decoding.readVarString(d)
      } else if (out.auth_type !== 0) {
        out.text = decoding.readVarString(d)
      }
      break
    case 3:
      break
    case 5: case 6:
      out.text = decoding.readVarString(d)
      break
    case 7:
      if (direction === 'to_client') out.text = decoding.readVarString(d)
      break
    case 8:
      out.applied = decoding.readVarUint(d) === 1
      break
    default:
      throw new Error(`unknown type ${out.type}`)
  }
  assert(!decoding.hasContent(d), `trailing bytes in ${hex(bytes)}`)
  return out
}

const clientToServer = []
const serverToClient = []
function record (list, direction, name, bytes) {
  list.push({ name, hex: hex(bytes), ...describe(bytes, direction) })
}

// ---------------------------------------------------------------- the provider's frames
// A WebSocket stand-in: records sends, lets the test fire open/message/close.
class FakeSocket {
  constructor () {
    this.readyState = 0
    this.sent = []
    this.listeners = {}
    FakeSocket.last = this
  }

  addEventListener (name, fn) { (this.listeners[name] ??= []).push(fn) }
  removeEventListener (name, fn) { this.listeners[name] = (this.listeners[name] ?? []).filter(f => f !== fn) }
  fire (name, event) { for (const fn of this.listeners[name] ?? []) fn(event) }
  send (data) { this.sent.push(new Uint8Array(data)) }
  close () { this.readyState = 3 }
  open () { this.readyState = 1; this.fire('open', {}) }
  receive (bytes) { this.fire('message', { data: Uint8Array.from(bytes).buffer }) }
  take () { const s = this.sent; this.sent = []; return s }
}

const tick = () => new Promise(resolve => setTimeout(resolve, 5))

function docWithClient (clientID) {
  const doc = new Y.Doc()
  doc.clientID = clientID
  return doc
}

// Builds a provider on its own stand-in socket. The session id is fixed before attaching.
function makeProvider (name, opts = {}) {
  const socketProvider = new HocuspocusProviderWebsocket({
    url: 'ws://127.0.0.1:1/hocuspocus', WebSocketPolyfill: FakeSocket, messageReconnectTimeout: 1e9
  })
  const document = docWithClient(opts.clientID ?? 1001)
  const awareness = new awarenessProtocol.Awareness(document)
  awareness.setLocalState(opts.state ?? null)
  const provider = new HocuspocusProvider({
    name, document, awareness, websocketProvider: socketProvider, token: 'token' in opts ? opts.token : 'secret-token',
    sessionAwareness: !!opts.sessionAwareness
  })
  provider.sessionId = 'sess42'
  provider.attach()
  return { provider, socketProvider, document, awareness, socket: FakeSocket.last }
}

// A server-made message to feed the provider, with the server's own encoder.
function serverStep1 (address, ydoc) {
  const m = new server.OutgoingMessage(address).createSyncMessage()
  encoding.writeVarUint(m.encoder, 0)
  encoding.writeVarUint8Array(m.encoder, Y.encodeStateVector(ydoc))
  return m.toUint8Array()
}

async function providerFrames () {
  // A plain provider: auth (token + provider version), step 1, awareness, step 2 in answer to
  // the server's step 1, an update, a stateless message, pong, awareness removal, close.
  {
    const p = makeProvider('doc-1', { state: { user: { name: 'ada', color: '#ff0000' } } })
    p.socket.open()
    await tick()
    const first = p.socket.take()
    assert(first.length === 3, `auth, step 1, awareness: got ${first.length}`)
    record(clientToServer, 'to_server', 'auth_token', first[0])
    record(clientToServer, 'to_server', 'sync_step1_empty', first[1])
    record(clientToServer, 'to_server', 'awareness_local_state', first[2])

    // Authenticated, then the server's step 1 (it has 'x' from client 7): the provider
    // answers with its step 2.
    p.socket.receive(new server.OutgoingMessage('doc-1').writeAuthenticated(false).toUint8Array())
    const serverDoc = docWithClient(7)
    serverDoc.getText('t').insert(0, 'x')
    p.document.getText('t').insert(0, 'hello')
    p.socket.take()
    p.socket.receive(serverStep1('doc-1', serverDoc))
    await tick()
    const reply = p.socket.take()
    assert(reply.length === 1, 'step 2 reply')
    record(clientToServer, 'to_server', 'sync_step2_reply', reply[0])

    p.document.getText('t').insert(5, ' world')
    const upd = p.socket.take()
    assert(upd.length === 1, 'one update')
    record(clientToServer, 'to_server', 'sync_update', upd[0])

    p.provider.sendStateless('{"kind":"ping","n":1}')
    record(clientToServer, 'to_server', 'stateless', p.socket.take()[0])

    p.socket.receive([9])
    const pong = p.socket.take()
    assert(pong.length === 1, 'pong')
    record(clientToServer, 'to_server', 'pong', pong[0])

    p.provider.destroy()
    const last = p.socket.take()
    assert(last.length === 2, `awareness removal and close: got ${last.length}`)
    record(clientToServer, 'to_server', 'awareness_removal', last[0])
    record(clientToServer, 'to_server', 'close', last[1])
    p.socketProvider.destroy()
  }
  // Session-aware provider (documentName\0sessionId), no token, non-ASCII name.
  {
    const p = makeProvider('dóc-ü.1', { sessionAwareness: true, token: null, clientID: 2002 })
    p.socket.open()
    await tick()
    const first = p.socket.take()
    assert(first.length === 2, 'auth and step 1 (no awareness state)')
    record(clientToServer, 'to_server', 'session_auth_empty_token', first[0])
    record(clientToServer, 'to_server', 'session_sync_step1', first[1])
    p.provider.destroy()
    p.socket.take()
    p.socketProvider.destroy()
  }
  // A document name longer than 127 bytes (two-byte length prefix).
  {
    const name = 'n'.repeat(128)
    const p = makeProvider(name, { clientID: 3003 })
    p.socket.open()
    await tick()
    record(clientToServer, 'to_server', 'long_name_auth', p.socket.take()[0])
    p.provider.destroy()
    p.socketProvider.destroy()
  }
}

// ---------------------------------------------------------------- the server's frames
// The connection-facing part of @hocuspocus/server's Connection, as MessageReceiver uses it.
function fakeConnection (address, readOnly = false) {
  return {
    messageAddress: address,
    readOnly,
    sent: [],
    callbacks: { beforeSync: async () => {}, statelessCallback: async () => {}, onTokenSyncCallback: async () => {} },
    send (m) { this.sent.push(new Uint8Array(m)) },
    close () {}
  }
}

// Runs one client frame through the server's MessageReceiver as Connection.processMessages
// does (the address is read and re-written for the reply).
async function serverHandles (document, connection, frame) {
  const message = new server.IncomingMessage(frame)
  message.readVarString()
  message.writeVarString(connection.messageAddress)
  await new server.MessageReceiver(message).apply(document, connection)
  return connection.sent.splice(0)
}

function clientFrame (address, type, write) {
  const e = encoding.createEncoder()
  encoding.writeVarString(e, address)
  encoding.writeVarUint(e, type)
  write(e)
  return encoding.toUint8Array(e)
}

async function serverFrames () {
  const O = server.OutgoingMessage
  record(serverToClient, 'to_client', 'authenticated_read_write', new O('doc-1').writeAuthenticated(false).toUint8Array())
  record(serverToClient, 'to_client', 'authenticated_readonly', new O('doc-1').writeAuthenticated(true).toUint8Array())
  record(serverToClient, 'to_client', 'permission_denied', new O('doc-1').writePermissionDenied('permission-denied').toUint8Array())
  record(serverToClient, 'to_client', 'permission_denied_reason', new O('secret').writePermissionDenied('document not found').toUint8Array())
  record(serverToClient, 'to_client', 'token_sync_request', new O('doc-1').writeTokenSyncRequest().toUint8Array())
  record(serverToClient, 'to_client', 'query_awareness', new O('doc-1').writeQueryAwareness().toUint8Array())
  record(serverToClient, 'to_client', 'stateless', new O('doc-1').writeStateless('{"kind":"note"}').toUint8Array())
  record(serverToClient, 'to_client', 'broadcast_stateless', new O('doc-1').writeBroadcastStateless('all').toUint8Array())
  record(serverToClient, 'to_client', 'close_provider_initiated', new O('doc-1').writeCloseMessage('provider_initiated').toUint8Array())
  record(serverToClient, 'to_client', 'sync_status_applied', new O('doc-1').writeSyncStatus(true).toUint8Array())
  record(serverToClient, 'to_client', 'sync_status_refused', new O('doc-1').writeSyncStatus(false).toUint8Array())
  const ping = encoding.createEncoder()
  encoding.writeVarUint(ping, server.MessageType.Ping)
  record(serverToClient, 'to_client', 'ping', encoding.toUint8Array(ping))

  // A document with content; a client's empty step 1 gets the server's step 1 then step 2.
  const document = new server.Document('doc-1')
  document.clientID = 7
  document.getText('t').insert(0, 'server text')
  const conn = fakeConnection('doc-1')
  const step1 = clientFrame('doc-1', 0, e => {
    encoding.writeVarUint(e, 0)
    encoding.writeVarUint8Array(e, Y.encodeStateVector(new Y.Doc()))
  })
  const answer = await serverHandles(document, conn, step1)
  assert(answer.length === 2, `step 1 answer: got ${answer.length}`)
  record(serverToClient, 'to_client', 'answer_sync_step1', answer[0])
  record(serverToClient, 'to_client', 'answer_sync_step2', answer[1])

  // A client's update is applied and acknowledged with SyncStatus(true); the broadcast of it
  // is a sync update message.
  const client = docWithClient(1001)
  Y.applyUpdate(client, Y.encodeStateAsUpdate(document))
  let update = null
  client.on('update', u => { update = u })
  client.getText('t').insert(0, '> ')
  const updateFrame = clientFrame('doc-1', 0, e => { encoding.writeVarUint(e, 2); encoding.writeVarUint8Array(e, update) })
  const ack = await serverHandles(document, conn, updateFrame)
  assert(ack.length === 1, 'one ack')
  record(serverToClient, 'to_client', 'update_ack', ack[0])
  record(serverToClient, 'to_client', 'sync_update', new O('doc-1').createSyncMessage().writeUpdate(update).toUint8Array())

  // Read-only: an update is refused with SyncStatus(false).
  const ro = fakeConnection('doc-1', true)
  const refused = await serverHandles(document, ro, updateFrame)
  record(serverToClient, 'to_client', 'readonly_update_refused', refused[0])

  // SyncReply (the server's step 1 without asking back), session-aware address.
  record(serverToClient, 'to_client', 'sync_reply_step1_session',
    new O('doc-1\0sess42').createSyncReplyMessage().writeFirstSyncStepFor(document).toUint8Array())

  // Awareness as the server broadcasts it, and its answer to a query.
  const states = docWithClient(9)
  const aw = new awarenessProtocol.Awareness(states)
  aw.setLocalState({ user: { name: 'bob' } })
  record(serverToClient, 'to_client', 'awareness_update', new O('doc-1').createAwarenessUpdateMessage(aw).toUint8Array())
  aw.destroy()
}

async function main () {
  await providerFrames()
  await serverFrames()
  const out = {
    generator: 'tests/data/hocuspocus/gen.cjs',
    packages: {
      '@hocuspocus/provider': version('@hocuspocus/provider'),
      '@hocuspocus/server': version('@hocuspocus/server'),
      '@hocuspocus/common': version('@hocuspocus/common'),
      'y-protocols': version('y-protocols'),
      yjs: version('yjs'),
      lib0: version('lib0')
    },
    field_notes: {
      hex: 'the whole frame (one WebSocket binary message)',
      address: 'the leading varString: the document name, or name\\0sessionId (sessionAwareness)',
      type: 'Sync 0, Awareness 1, Auth 2, QueryAwareness 3, SyncReply 4, Stateless 5, BroadcastStateless 6, Close 7, SyncStatus 8, Ping 9, Pong 10 (Ping/Pong are one byte, no address)',
      sync_type: 'Step1 0, Step2 1, Update 2; payload_hex is the state vector or the update',
      auth_type: 'Token 0 (to_server: token, then provider_version since v3), PermissionDenied 1 and Authenticated 2 (text: reason / scope)',
      text: 'stateless payload, close reason (to_client), auth reason or scope',
      applied: 'SyncStatus: the update was applied'
    },
    client_to_server: clientToServer,
    server_to_client: serverToClient
  }
  fs.writeFileSync(path.join(__dirname, 'vectors.json'), JSON.stringify(out, null, 1) + '\n')
  console.log(`wrote ${clientToServer.length} client and ${serverToClient.length} server frames`)
  process.exit(0)
}

main().catch(e => { console.error(e); process.exit(1) })
