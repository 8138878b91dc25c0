// PresenceAwareness: the small part of y-protocols' Awareness that y-codemirror.next uses
// (doc, getLocalState, setLocalStateField, getStates, on/off 'change'), fed from Quire's
// presence messages instead of the awareness protocol. Remote members get stable numeric
// ids derived from their userId; their cursors ({from, to} offsets on the wire) become
// relative positions in the shared Y.Text so the carets follow concurrent edits.
import * as Y from 'yjs';
import { Observable } from 'lib0/observable';

function hashId(userId) {
  let h = 2166136261;
  for (let i = 0; i < userId.length; i++) {
    h ^= userId.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) | 0x40000000; // never 0, unlikely to equal a Y.Doc clientID
}

export function lighten(color) {
  return /^#[0-9a-fA-F]{6}$/.test(color) ? `${color}33` : color;
}

export class PresenceAwareness extends Observable {
  constructor(doc, ytext, user) {
    super();
    this.doc = doc;
    this.ytext = ytext;
    this.clientID = doc.clientID;
    this.states = new Map([[doc.clientID, { user }]]);
    this._remoteIds = new Map(); // userId -> numeric id
  }

  getLocalState() {
    return this.states.get(this.clientID) ?? null;
  }

  setLocalStateField(field, value) {
    const state = { ...this.getLocalState(), [field]: value };
    this.states.set(this.clientID, state);
    this.emit('change', [{ added: [], updated: [this.clientID], removed: [] }, 'local']);
  }

  getStates() {
    return this.states;
  }

  // The offset of the named member's caret in the local document, or null.
  remoteCaret(name) {
    for (const [id, st] of this.states) {
      if (id === this.clientID || st.user?.name !== name || !st.cursor) continue;
      return Y.createAbsolutePositionFromRelativePosition(st.cursor.head, this.doc)?.index ?? null;
    }
    return null;
  }

  // Replaces the remote states with `members` (QuireClient's presence map).
  setRemote(members) {
    const added = [];
    const updated = [];
    const removed = [];
    const seen = new Set();
    for (const m of members.values()) {
      let id = this._remoteIds.get(m.userId);
      if (id === undefined) {
        id = hashId(m.userId);
        this._remoteIds.set(m.userId, id);
      }
      seen.add(id);
      const state = { user: { name: m.displayName, color: m.color, colorLight: lighten(m.color) } };
      if (m.cursor) {
        const len = this.ytext.length;
        state.cursor = {
          anchor: Y.createRelativePositionFromTypeIndex(this.ytext, Math.min(m.cursor.from, len)),
          head: Y.createRelativePositionFromTypeIndex(this.ytext, Math.min(m.cursor.to, len)),
        };
      }
      (this.states.has(id) ? updated : added).push(id);
      this.states.set(id, state);
    }
    for (const id of [...this.states.keys()]) {
      if (id !== this.clientID && !seen.has(id)) {
        this.states.delete(id);
        removed.push(id);
      }
    }
    if (added.length || updated.length || removed.length) {
      this.emit('change', [{ added, updated, removed }, 'remote']);
    }
  }

  destroy() {
    super.destroy();
  }
}
