// QuireClient: connects a Y.Doc to Quire's JSON collaboration protocol (io/json_protocol.md)
// at /ws/documents/{id}.
//
// Contract:
// - Every local Y.Doc update (any origin except this client) is sent as
//   {"type":"update","opId","deltaB64"} and kept until its `ack`. After a reconnect the
//   unacknowledged updates are sent again, in order, with the same opIds: the server
//   acknowledges a repeated opId with its original seq and stores it once, so nothing is lost
//   or doubled when a connection drops between commit and ack.
// - Reconnects ask for `sinceSeq` = the highest seq this client has seen (state version,
//   remote_update or ack), so only missing updates come back.
// - `state` and `remote_update` are applied with this client as the transaction origin.
// - Events (on/off): `status` (connecting | connected | reconnecting | offline), `saved`
//   (every local update acknowledged; argument: the time), `pending` (count of unacked
//   updates), `presence` (Map userId -> {userId, displayName, color, cursor, status}), `synced`
//   (the initial state was applied), `error` ({code, message, opId}).
// - Reconnects back off exponentially (initialDelayMs doubling up to maxDelayMs, with jitter);
//   after maxAttempts consecutive failures the status becomes `offline` and retrying stops
//   until connect() is called again.
import * as Y from 'yjs';
import { toBase64, fromBase64 } from 'lib0/buffer';

let sessionCounter = 0;

export class QuireClient {
  // options: url (base, e.g. "ws://127.0.0.1:8080"), docId, doc (Y.Doc), userId,
  // displayName?, color?, WebSocket? (defaults to globalThis.WebSocket), initialDelayMs?,
  // maxDelayMs?, maxAttempts?, heartbeatMs?
  constructor(options) {
    this.url = options.url.replace(/\/$/, '');
    this.docId = options.docId;
    this.doc = options.doc;
    this.userId = options.userId;
    this.displayName = options.displayName ?? options.userId;
    this.color = options.color ?? null;
    this.WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    this.initialDelayMs = options.initialDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 4000;
    this.maxAttempts = options.maxAttempts ?? 12;
    this.heartbeatMs = options.heartbeatMs ?? 15000;

    this.status = 'offline';
    this.lastSeq = -1; // highest seq seen; -1 before the first state
    this.pending = new Map(); // opId -> deltaB64, in send order
    this.presence = new Map(); // userId -> presence of the other members
    this.lastSavedAt = null;
    this.synced = false;

    this._listeners = new Map();
    this._ws = null;
    this._attempts = 0;
    this._retryTimer = null;
    this._heartbeatTimer = null;
    this._lastReceived = 0;
    this._closedByUser = true;
    this._opPrefix = `${this.doc.clientID.toString(36)}-${Date.now().toString(36)}-${(sessionCounter++).toString(36)}`;
    this._opCounter = 0;
    this._cursor = null;
    this._presenceTimer = null;
    this._presenceDirty = false;

    this._onDocUpdate = (update, origin) => {
      if (origin === this) return;
      const opId = `${this._opPrefix}-${this._opCounter++}`;
      const deltaB64 = toBase64(update);
      this.pending.set(opId, deltaB64);
      this._emit('pending', this.pending.size);
      this._sendUpdate(opId, deltaB64);
    };
    this.doc.on('update', this._onDocUpdate);
  }

  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return this;
  }

  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
    return this;
  }

  // Opens the connection (again after `offline`). Idempotent while connecting or connected.
  connect() {
    this._closedByUser = false;
    this._attempts = 0;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (this._ws) return;
    this._open();
  }

  // Closes the connection and stops reconnecting; unacked updates stay pending.
  disconnect() {
    this._closedByUser = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    this._ws = null;
    this._stopHeartbeat();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch {
        // already closed
      }
    }
    this._setStatus('offline');
  }

  // disconnect() and stop observing the document.
  destroy() {
    this.disconnect();
    clearTimeout(this._presenceTimer);
    this.doc.off('update', this._onDocUpdate);
  }

  // Publishes this member's cursor ({from, to} offsets, or null) and colour; sent at most
  // every 50 ms (the server relays at most 20 per second).
  setPresence({ cursor, color } = {}) {
    if (cursor !== undefined) this._cursor = cursor;
    if (color !== undefined) this.color = color;
    this._presenceDirty = true;
    if (this._presenceTimer) return;
    this._flushPresence();
    this._presenceTimer = setTimeout(() => {
      this._presenceTimer = null;
      if (this._presenceDirty) this.setPresence();
    }, 50);
  }

  get pendingCount() {
    return this.pending.size;
  }

  _flushPresence() {
    if (!this._isOpen()) return;
    this._presenceDirty = false;
    const msg = { type: 'presence', cursor: this._cursor };
    if (this.color) msg.color = this.color;
    this._ws.send(JSON.stringify(msg));
  }

  _isOpen() {
    return this._ws !== null && this._ws.readyState === 1 && this.status === 'connected';
  }

  _sendUpdate(opId, deltaB64) {
    if (!this._isOpen()) return;
    this._ws.send(JSON.stringify({ type: 'update', opId, deltaB64 }));
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit('status', status);
  }

  _emit(event, arg) {
    for (const fn of this._listeners.get(event) ?? []) {
      try {
        fn(arg);
      } catch (e) {
        console.error(e);
      }
    }
  }

  _open() {
    this._setStatus(this.lastSeq < 0 && this._attempts === 0 ? 'connecting' : 'reconnecting');
    const params = new URLSearchParams({ userId: this.userId, displayName: this.displayName });
    if (this.lastSeq >= 0) params.set('sinceSeq', String(this.lastSeq));
    const ws = new this.WebSocketImpl(
      `${this.url}/ws/documents/${encodeURIComponent(this.docId)}?${params}`,
    );
    this._ws = ws;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._attempts = 0;
      this._lastReceived = Date.now();
      this._setStatus('connected');
      this._startHeartbeat();
      // Unacknowledged updates first, in their original order and with their opIds.
      for (const [opId, deltaB64] of this.pending) this._sendUpdate(opId, deltaB64);
      if (this._cursor !== null || this.color) this._flushPresence();
    };
    ws.onmessage = (event) => {
      if (this._ws !== ws) return;
      this._lastReceived = Date.now();
      if (typeof event.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      this._handle(msg);
    };
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._stopHeartbeat();
      // Presence of others is stale once we are gone; they come again on reconnect.
      if (this.presence.size > 0) {
        this.presence.clear();
        this._emit('presence', this.presence);
      }
      this._scheduleReconnect();
    };
  }

  _scheduleReconnect() {
    if (this._closedByUser) return;
    this._attempts++;
    if (this._attempts > this.maxAttempts) {
      this._setStatus('offline');
      return;
    }
    this._setStatus('reconnecting');
    const base = Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** (this._attempts - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (!this._closedByUser && !this._ws) this._open();
    }, delay);
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    this._heartbeatTimer = setInterval(() => {
      if (!this._ws) return;
      // A silent connection (no frame for three heartbeats) is presumed dead.
      if (Date.now() - this._lastReceived > 3 * this.heartbeatMs) {
        this._ws.close();
        return;
      }
      if (this._ws.readyState === 1) this._ws.send(JSON.stringify({ type: 'ping' }));
    }, this.heartbeatMs);
  }

  _stopHeartbeat() {
    clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = null;
  }

  _seen(seq) {
    if (typeof seq === 'number' && seq > this.lastSeq) this.lastSeq = seq;
  }

  _handle(msg) {
    switch (msg.type) {
      case 'state':
        if (msg.snapshotB64) Y.applyUpdate(this.doc, fromBase64(msg.snapshotB64), this);
        this._seen(msg.version);
        if (!this.synced) {
          this.synced = true;
          this._emit('synced', true);
        }
        break;
      case 'remote_update':
        Y.applyUpdate(this.doc, fromBase64(msg.deltaB64), this);
        this._seen(msg.seq);
        if (!this.synced) {
          this.synced = true;
          this._emit('synced', true);
        }
        break;
      case 'ack':
        this._seen(msg.seq);
        if (this.pending.delete(msg.opId)) {
          this._emit('pending', this.pending.size);
          if (this.pending.size === 0) {
            this.lastSavedAt = Date.now();
            this._emit('saved', this.lastSavedAt);
          }
        }
        break;
      case 'presence':
        if (msg.status === 'left') {
          this.presence.delete(msg.userId);
        } else if (msg.userId !== this.userId) {
          this.presence.set(msg.userId, {
            userId: msg.userId,
            displayName: msg.displayName,
            color: msg.color,
            cursor: msg.cursor ?? null,
            status: msg.status,
          });
        }
        this._emit('presence', this.presence);
        break;
      case 'error':
        this._emit('error', msg);
        // An update the server refuses for its content can never succeed: drop it. A storage
        // failure is transient: the update stays pending and is resent on the next connection.
        if (msg.opId && (msg.code === 'INVALID_UPDATE' || msg.code === 'INVALID_MESSAGE' ||
                         msg.code === 'PAYLOAD_TOO_LARGE')) {
          this.pending.delete(msg.opId);
          this._emit('pending', this.pending.size);
        } else if (msg.code === 'STORAGE_UNAVAILABLE' && this._ws) {
          this._ws.close();
        } else if (msg.code === 'DOCUMENT_DELETED' || msg.code === 'NOT_FOUND') {
          this.disconnect();
        }
        break;
      default:
        break;
    }
  }
}
