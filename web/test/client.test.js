// QuireClient (web/src/quire-client.js) against the real server (`quire serve` subprocess):
// convergence, acks, presence, reconnect with sinceSeq, and a SQLite server restart during
// which unacknowledged updates are kept and resent without loss or duplication.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { QuireClient } from '../src/quire-client.js';
import { QuireProcess, api, waitFor } from './server.js';

const tmp = mkdtempSync(join(tmpdir(), 'quire-web-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// Records every connection's URL and the message types it received.
class RecordingWebSocket extends WebSocket {
  static log = [];
  constructor(url, ...rest) {
    super(url, ...rest);
    const entry = { url: new URL(url), types: [] };
    RecordingWebSocket.log.push(entry);
    this.addEventListener('message', (e) => entry.types.push(JSON.parse(e.data).type));
  }
}

const clients = [];
function client(server, docId, userId, opts = {}) {
  const doc = new Y.Doc();
  const c = new QuireClient({ url: server.wsUrl, docId, doc, userId, displayName: `User ${userId}`,
    WebSocket, initialDelayMs: 50, maxDelayMs: 400, ...opts });
  c.statuses = [];
  c.on('status', (s) => c.statuses.push(s));
  clients.push(c);
  c.connect();
  return c;
}
const text = (c) => c.doc.getText('t').toString();
after(() => clients.forEach((c) => c.destroy()));

async function createDoc(server, title = 'Doc') {
  const r = await api(server, 'POST', '/api/v1/documents', { title });
  assert.equal(r.status, 201);
  return r.body;
}

test('TwoClientsConvergeAndEveryLocalUpdateIsAcked', async () => {
  const server = await new QuireProcess().start();
  try {
    const { id } = await createDoc(server);
    const a = client(server, id, 'alice');
    const b = client(server, id, 'bob');
    await waitFor(() => a.status === 'connected' && b.status === 'connected', 'connected');
    assert.deepEqual(a.statuses.slice(0, 2), ['connecting', 'connected']);
    let saved = 0;
    a.on('saved', () => saved++);
    for (let i = 0; i < 20; i++) {
      a.doc.getText('t').insert(0, 'a');
      b.doc.getText('t').insert(0, 'b');
    }
    await waitFor(() => text(a).length === 40 && text(b).length === 40, 'convergence');
    assert.equal(text(a), text(b));
    await waitFor(() => a.pendingCount === 0 && b.pendingCount === 0, 'acks');
    assert.ok(saved >= 1, 'saved emitted');
    assert.ok(a.lastSeq >= 40, `lastSeq ${a.lastSeq}`);
    // A late joiner gets the state.
    const c = client(server, id, 'carol');
    await waitFor(() => text(c) === text(a), 'late joiner state');
  } finally {
    await server.stop();
  }
});

test('PresenceCarriesNamesColoursAndCursorsAndLeaves', async () => {
  const server = await new QuireProcess().start();
  try {
    const { id } = await createDoc(server);
    const a = client(server, id, 'alice');
    const b = client(server, id, 'bob');
    await waitFor(() => a.status === 'connected' && b.status === 'connected', 'connected');
    a.doc.getText('t').insert(0, 'hello world');
    await waitFor(() => text(b) === 'hello world', 'text');
    a.setPresence({ cursor: { from: 2, to: 5 }, color: '#e91e63' });
    await waitFor(() => b.presence.get('alice')?.cursor?.to === 5, 'alice cursor at bob');
    const p = b.presence.get('alice');
    assert.equal(p.displayName, 'User alice');
    assert.equal(p.color, '#e91e63');
    assert.deepEqual(p.cursor, { from: 2, to: 5 });
    assert.ok(!a.presence.has('alice'), 'own presence is not echoed');
    await waitFor(() => a.presence.has('bob'), 'bob joined at alice');
    b.destroy();
    await waitFor(() => !a.presence.has('bob'), 'bob left');
  } finally {
    await server.stop();
  }
});

test('SqliteRestartResendsUnackedUpdatesAndLosesNothing', async () => {
  const dbUrl = `sqlite:///${join(tmp, 'restart.db')}`;
  const server = await new QuireProcess({ databaseUrl: dbUrl,
    extraArgs: ['--snapshot-every', '1000000'] }).start();
  try {
    const created = await createDoc(server);
    const id = created.id;
    const a = client(server, id, 'alice');
    const b = client(server, id, 'bob', { WebSocket: RecordingWebSocket });
    await waitFor(() => a.status === 'connected' && b.status === 'connected', 'connected');
    const ta = a.doc.getText('t');
    ta.insert(0, 'before ');
    await waitFor(() => a.pendingCount === 0 && text(b) === 'before ', 'first update acked');

    // A burst the server may be killed in the middle of: some committed, some not, acks lost.
    for (let i = 0; i < 100; i++) ta.insert(ta.length, String(i % 10));
    await server.stop('SIGKILL');
    await waitFor(() => a.status === 'reconnecting' && b.status === 'reconnecting', 'reconnecting');
    // Edits while the server is down stay pending.
    for (let i = 0; i < 20; i++) ta.insert(ta.length, 'x');
    const expected = text(a);
    assert.ok(a.pendingCount >= 20, `pending ${a.pendingCount}`);

    await server.start();
    await waitFor(() => a.status === 'connected' && a.pendingCount === 0, 'resent and acked');
    await waitFor(() => text(b) === expected, 'bob caught up with sinceSeq');
    assert.ok(b.statuses.includes('reconnecting'));
    // Bob's first connection got the state; the one after the restart asked for sinceSeq and
    // got only updates.
    const bobs = RecordingWebSocket.log.filter((e) => e.url.searchParams.get('userId') === 'bob');
    assert.equal(bobs[0].url.searchParams.get('sinceSeq'), null);
    assert.equal(bobs[0].types[0], 'state');
    const last = bobs[bobs.length - 1];
    assert.ok(Number(last.url.searchParams.get('sinceSeq')) > created.seq, last.url.search);
    assert.ok(!last.types.includes('state'), last.types.join());
    assert.ok(last.types.includes('remote_update'));

    // A fresh client after a graceful restart sees exactly the text, and the log holds each
    // update once: created + 1 + 100 + 20 updates.
    await server.stop();
    await server.start();
    const c = client(server, id, 'carol');
    await waitFor(() => c.synced && text(c) === expected, 'fresh client has everything');
    const doc = await api(server, 'GET', `/api/v1/documents/${id}`);
    assert.equal(doc.body.seq, created.seq + 121);
  } finally {
    await server.stop();
  }
});

test('GivesUpAsOfflineAfterMaxAttemptsAndConnectRetries', async () => {
  const server = await new QuireProcess().start();
  try {
    const { id } = await createDoc(server);
    const a = client(server, id, 'alice', { maxAttempts: 2, initialDelayMs: 20, maxDelayMs: 40 });
    await waitFor(() => a.status === 'connected', 'connected');
    await server.stop();
    await waitFor(() => a.status === 'offline', 'offline');
    assert.deepEqual(a.statuses.slice(-2), ['reconnecting', 'offline']);
    // memory:// starts empty: the document is gone, so recreate it under the same id.
    await server.start();
    const r = await api(server, 'POST', '/api/v1/documents', { title: 'again', id });
    assert.equal(r.status, 201);
    a.doc.getText('t').insert(0, 'after');
    a.connect();
    await waitFor(() => a.status === 'connected' && a.pendingCount === 0, 'reconnected by retry');
  } finally {
    await server.stop();
  }
});
