// The Quire page: a document list (REST API v1) and a collaborative editor (CodeMirror 6 +
// y-codemirror.next on QuireClient). Routes: #/ (list), #/d/{id} (editor). The user's name
// comes from ?user=NAME, else from localStorage (a generated guest name).
import * as Y from 'yjs';
import { EditorView, keymap, drawSelection, highlightActiveLine, lineNumbers } from '@codemirror/view';
import { EditorState } from '@codemirror/state';
import { defaultKeymap, historyKeymap } from '@codemirror/commands';
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next';
import { QuireClient } from './quire-client.js';
import { PresenceAwareness, lighten } from './presence-awareness.js';

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#d81b60'];
const PAGE_SIZE = 10;

const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function identity() {
  const params = new URLSearchParams(location.search);
  let name = params.get('user');
  if (!name) {
    name = localStorage.getItem('quire.name');
    if (!name) {
      name = `Guest ${Math.floor(1000 + Math.random() * 9000)}`;
      localStorage.setItem('quire.name', name);
    }
  }
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  const userId = `${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${h.toString(36)}`;
  return { name, userId: userId.slice(0, 128), color: PALETTE[h % PALETTE.length] };
}
const me = identity();

async function api(method, path, body) {
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: { 'x-user-id': me.userId, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(data?.error?.message ?? `HTTP ${res.status}`);
  return data;
}

function showError(message) {
  const bar = $('#error');
  bar.textContent = message;
  bar.hidden = !message;
}

function relativeTime(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return new Date(ms).toLocaleString();
}

// ---- Document list -------------------------------------------------------------------------

const listState = { page: 1, query: '', showDeleted: false };

async function renderList(main) {
  main.replaceChildren(
    el('section', { class: 'list' },
      el('form', { class: 'create', onsubmit: async (e) => {
        e.preventDefault();
        const title = $('#new-title').value.trim() || 'Untitled';
        try {
          const doc = await api('POST', '/documents', { title });
          location.hash = `#/d/${encodeURIComponent(doc.id)}`;
        } catch (err) { showError(err.message); }
      } },
        el('input', { id: 'new-title', placeholder: 'New document title', maxlength: 256 }),
        el('button', { type: 'submit', id: 'create' }, 'Create')),
      el('div', { class: 'filters' },
        el('input', { id: 'search', type: 'search', placeholder: 'Search titles', value: listState.query,
          oninput: debounce((e) => { listState.query = e.target.value; listState.page = 1; loadList(); }, 200) }),
        el('label', {}, el('input', { type: 'checkbox', id: 'show-deleted', checked: listState.showDeleted,
          onchange: (e) => { listState.showDeleted = e.target.checked; listState.page = 1; loadList(); } }), ' show deleted')),
      el('table', { id: 'docs' }, el('thead', {}, el('tr', {}, el('th', {}, 'Title'), el('th', {}, 'Updated'), el('th', {}, 'Changes'), el('th', {}, ''))), el('tbody')),
      el('nav', { class: 'pager' },
        el('button', { id: 'prev', onclick: () => { listState.page--; loadList(); } }, '‹ Prev'),
        el('span', { id: 'page-info' }),
        el('button', { id: 'next', onclick: () => { listState.page++; loadList(); } }, 'Next ›'))));
  await loadList();
}

function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

async function loadList() {
  const params = new URLSearchParams({ page: listState.page, page_size: PAGE_SIZE });
  if (listState.query) params.set('query', listState.query);
  if (listState.showDeleted) params.set('include_deleted', 'true');
  let data;
  try {
    data = await api('GET', `/documents?${params}`);
    showError('');
  } catch (err) { showError(err.message); return; }
  const pages = Math.max(1, Math.ceil(data.total / data.page_size));
  const tbody = $('#docs tbody');
  if (!tbody) return;
  tbody.replaceChildren(...data.items.map((d) => el('tr', { class: d.deleted ? 'deleted' : '' },
    el('td', {}, d.deleted ? el('span', {}, d.title) : el('a', { href: `#/d/${encodeURIComponent(d.id)}` }, d.title)),
    el('td', {}, relativeTime(Date.parse(d.updated_at))),
    el('td', {}, d.update_count),
    el('td', { class: 'actions' },
      el('button', { onclick: async () => {
        const title = prompt('Rename document', d.title);
        if (title === null || !title.trim()) return;
        try { await api('PATCH', `/documents/${encodeURIComponent(d.id)}`, { title }); } catch (err) { showError(err.message); }
        loadList();
      } }, 'Rename'),
      el('button', { onclick: async () => {
        try { await api('PATCH', `/documents/${encodeURIComponent(d.id)}`, { deleted: !d.deleted }); } catch (err) { showError(err.message); }
        loadList();
      } }, d.deleted ? 'Restore' : 'Delete')))));
  if (data.items.length === 0) tbody.append(el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'No documents yet.')));
  $('#page-info').textContent = `Page ${data.page} of ${pages} · ${data.total} documents`;
  $('#prev').disabled = data.page <= 1;
  $('#next').disabled = data.page >= pages;
}

// ---- Editor --------------------------------------------------------------------------------

let session = null; // { client, view, timer }

function closeSession() {
  if (!session) return;
  clearInterval(session.timer);
  session.view.destroy();
  session.client.destroy();
  session.awareness.destroy();
  session = null;
  window.quire = undefined;
}

async function renderEditor(main, id) {
  let meta;
  try { meta = await api('GET', `/documents/${encodeURIComponent(id)}`); } catch (err) {
    main.replaceChildren(el('p', { class: 'empty' }, err.message, ' ', el('a', { href: '#/' }, 'Back to documents')));
    return;
  }
  const title = el('input', { id: 'title', value: meta.title, maxlength: 256, 'aria-label': 'Document title' });
  const saveTitle = async () => {
    const t = title.value.trim();
    if (!t || t === meta.title) { title.value = meta.title; return; }
    try { meta = await api('PATCH', `/documents/${encodeURIComponent(id)}`, { title: t }); document.title = `${meta.title} · Quire`; } catch (err) { showError(err.message); title.value = meta.title; }
  };
  title.addEventListener('blur', saveTitle);
  title.addEventListener('keydown', (e) => { if (e.key === 'Enter') title.blur(); });

  const connDot = el('span', { class: 'dot' });
  const connText = el('span', { class: 'conn-text' }, 'Connecting…');
  const retry = el('button', { id: 'retry', hidden: true }, 'Retry');
  const conn = el('span', { id: 'connection', class: 'indicator connecting', 'data-status': 'connecting' }, connDot, connText, retry);
  const saved = el('span', { id: 'save-state', class: 'indicator' }, 'All changes saved');
  const people = el('span', { id: 'people' });
  const host = el('div', { id: 'editor' });
  document.title = `${meta.title} · Quire`;
  main.replaceChildren(el('section', { class: 'editor-page' },
    el('div', { class: 'doc-bar' }, el('a', { href: '#/', class: 'back' }, '← Documents'), title, people, conn, saved),
    host));

  const doc = new Y.Doc();
  const ytext = doc.getText('codemirror');
  const awareness = new PresenceAwareness(doc, ytext, { name: me.name, color: me.color, colorLight: lighten(me.color) });
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // ?attempts=N: reconnect attempts before showing "offline" (the default suits people, a
  // small number suits tests).
  const attempts = Number(new URLSearchParams(location.search).get('attempts')) || undefined;
  const client = new QuireClient({ url: `${scheme}//${location.host}`, docId: id, doc, userId: me.userId, displayName: me.name, color: me.color, maxAttempts: attempts });
  const undoManager = new Y.UndoManager(ytext);

  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: '',
      extensions: [
        lineNumbers(), drawSelection(), highlightActiveLine(), EditorView.lineWrapping,
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap, ...historyKeymap]),
        yCollab(ytext, awareness, { undoManager }),
        // Local selection -> presence as offsets; after any change, since offsets move even
        // when the relative position y-codemirror.next keeps does not (typing at the end).
        EditorView.updateListener.of((update) => {
          if (!update.selectionSet && !update.docChanged) return;
          const sel = update.state.selection.main;
          client.setPresence({ cursor: { from: sel.anchor, to: sel.head } });
        }),
      ],
    }),
  });

  client.on('presence', (members) => {
    awareness.setRemote(members);
    people.replaceChildren(...[...members.values()].map((m) => el('span', { class: 'person', style: `background:${m.color}`, title: m.displayName }, m.displayName)));
  });

  const labels = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Offline' };
  client.on('status', (status) => {
    conn.className = `indicator ${status}`;
    conn.dataset.status = status;
    connText.textContent = labels[status];
    retry.hidden = status !== 'offline';
  });
  retry.addEventListener('click', () => client.connect());

  const renderSave = () => {
    if (client.pendingCount > 0) {
      saved.textContent = 'Saving…';
      saved.dataset.state = 'saving';
    } else if (client.lastSavedAt) {
      saved.textContent = `Saved ${relativeTime(client.lastSavedAt)}`;
      saved.dataset.state = 'saved';
    } else {
      saved.textContent = 'All changes saved';
      saved.dataset.state = 'saved';
    }
  };
  client.on('pending', renderSave);
  client.on('saved', renderSave);
  client.on('error', (e) => showError(`${e.code}: ${e.message}`));
  const timer = setInterval(renderSave, 1000);
  window.addEventListener('online', () => { if (client.status === 'offline') client.connect(); });

  client.connect();
  session = { client, view, awareness, timer };
  window.quire = { client, view, doc, ytext, awareness, remoteCaret: (name) => awareness.remoteCaret(name) }; // for the browser test and the curious
}

// ---- Routing -------------------------------------------------------------------------------

async function route() {
  closeSession();
  showError('');
  const main = $('#main');
  const m = location.hash.match(/^#\/d\/(.+)$/);
  if (m) await renderEditor(main, decodeURIComponent(m[1]));
  else { document.title = 'Quire'; await renderList(main); }
}

$('#me').textContent = me.name;
$('#me').style.background = me.color;
window.addEventListener('hashchange', route);
route();
