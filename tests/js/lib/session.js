// Random Yjs editing sessions (seeded) and a deterministic rendering of a Y.Doc's content.
'use strict'
const Y = require('yjs')

const REMOTE = 'remote'

function mulberry32 (seed) {
  let a = seed >>> 0
  return function () {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Text with 1-, 2-, 3- and 4-byte UTF-8 and UTF-16 surrogate pairs.
const ALPHABET = ['a', 'b', 'c', ' ', '\n', 'é', 'ß', 'Ω', '日', '本', '😀', '👍🏽', '𝄞']

// An index into `str` that does not split a surrogate pair.
function safeIndex (str, idx) {
  if (idx > 0 && idx < str.length) {
    const c = str.charCodeAt(idx)
    if (c >= 0xDC00 && c <= 0xDFFF) return idx - 1
  }
  return idx
}

// The text as Y.Text indexes it: an embed counts as one unit (toString() leaves it out).
function unitView (text) {
  return text.toDelta().map(op => typeof op.insert === 'string' ? op.insert : '\u0001').join('')
}

// [index, length] of a non-empty range of at most about `max` units starting near `idx` that
// splits no surrogate pair. (yjs replaces both halves of a split pair with U+FFFD, and where it
// splits depends on how updates were batched: no application should do that.)
function safeRange (str, idx, max) {
  const start = safeIndex(str, idx)
  let end = safeIndex(str, Math.min(str.length, start + max))
  if (end <= start) {
    const c = str.charCodeAt(start)
    end = Math.min(str.length, start + (c >= 0xD800 && c <= 0xDBFF ? 2 : 1))
  }
  return [start, end - start]
}

/**
 * Runs a random session of `ops` operations on `clients` docs and returns every update the
 * clients produced, in the order they produced them (so every prefix is causally complete).
 * Besides the `update` event blobs, some clients occasionally send their whole state, or their
 * state since an older state vector, as one update (the last-write-wins style of some apps).
 */
function runSession (seed, { clients = 3, ops = 300 } = {}) {
  const rnd = mulberry32(seed)
  const int = n => Math.floor(rnd() * n)
  const pick = arr => arr[int(arr.length)]
  const ids = []
  while (ids.length < clients) {
    const id = pick([int(128), 128 + int(16000), int(2 ** 32)])
    if (!ids.includes(id)) ids.push(id)
  }
  const log = []
  const docs = ids.map(id => {
    const doc = new Y.Doc()
    doc.clientID = id
    doc.on('update', (u, origin) => { if (origin !== REMOTE) log.push(u) })
    return doc
  })
  const oldSVs = docs.map(d => Y.encodeStateVector(d))
  const randStr = () => { let s = ''; for (let i = 0, n = 1 + int(5); i < n; i++) s += pick(ALPHABET); return s }
  // bigint values are allowed by Y.Map#set only.
  const randAny = (bigint = false) => pick([
    () => int(1000) - 500,
    () => 2 ** 31 + int(1000),
    () => 0.5,
    () => rnd(),
    () => randStr(),
    () => true,
    () => false,
    () => null,
    () => ({ n: int(10), list: [1, 'two', { deep: randStr() }], empty: {} }),
    () => [int(5), randStr()],
    () => new Uint8Array(Array.from({ length: int(40) }, () => int(256))),
    () => bigint ? BigInt(2 ** 53) + BigInt(int(1000)) : -0.25
  ])()
  let serial = 0

  for (let op = 0; op < ops; op++) {
    const i = int(docs.length)
    const doc = docs[i]
    const t = doc.getText('t')
    const m = doc.getMap('m')
    const a = doc.getArray('a')
    const x = doc.getXmlFragment('x')
    const str = unitView(t)
    const r = rnd()
    if (r < 0.28 || str.length === 0) {
      const attrs = pick([undefined, undefined, { bold: true }, { italic: true, color: '#c00' }])
      const idx = safeIndex(str, int(str.length + 1))
      if (rnd() < 0.3) {
        // typing: one transaction per character; the doc joins them into one item, so later
        // full-state updates overlap several of these updates
        let at = idx
        for (const ch of randStr() + randStr()) { t.insert(at, ch, attrs); at += ch.length }
      } else {
        t.insert(idx, randStr(), attrs)
      }
    } else if (r < 0.40) {
      const [idx, len] = safeRange(str, int(str.length), 1 + int(6))
      t.delete(idx, len)
    } else if (r < 0.46) {
      const [idx, len] = safeRange(str, int(str.length), 1 + int(8))
      t.format(idx, len, pick([{ bold: true }, { bold: null }, { link: 'https://q.example/' + int(9) }]))
    } else if (r < 0.49) {
      t.insertEmbed(safeIndex(str, int(str.length + 1)), { image: 'img' + int(100), w: int(500) }, pick([undefined, { bold: true }]))
    } else if (r < 0.58) {
      m.set('k' + int(8), randAny(true))
    } else if (r < 0.60) {
      const keys = Array.from(m.keys())
      if (keys.length) m.delete(pick(keys))
    } else if (r < 0.64) {
      // nested types: create one, or edit an existing one (deleting a nested type GCs its content)
      const key = 'nested' + int(3)
      const cur = m.get(key)
      if (cur instanceof Y.Text && rnd() < 0.7) cur.insert(safeIndex(cur.toString(), int(cur.length + 1)), randStr())
      else if (cur instanceof Y.Array && rnd() < 0.7) cur.push([randAny()])
      else m.set(key, pick([() => new Y.Text(randStr()), () => Y.Array.from([randAny()]), () => new Y.Map()])())
    } else if (r < 0.71) {
      const values = Array.from({ length: 1 + int(4) }, () => randAny())
      if (rnd() < 0.15) values.push(new Y.Map())
      a.insert(int(a.length + 1), values)
    } else if (r < 0.74) {
      if (a.length) { const idx = int(a.length); a.delete(idx, Math.min(a.length - idx, 1 + int(3))) }
    } else if (r < 0.79) {
      const kind = rnd()
      if (kind < 0.5 || x.length === 0) {
        const el = new Y.XmlElement(pick(['p', 'h1', 'li']))
        x.insert(int(x.length + 1), [el])
        el.setAttribute('class', 'c' + int(5))
        el.insert(0, [new Y.XmlText(randStr())])
      } else if (kind < 0.6) {
        x.insert(int(x.length + 1), [new Y.XmlHook('hook' + int(3))])
      } else {
        const el = x.get(int(x.length))
        if (el instanceof Y.XmlElement) {
          el.setAttribute('data-n', String(int(100)))
          const txt = el.get(0)
          if (txt instanceof Y.XmlText) txt.insert(0, randStr(), pick([undefined, { bold: true }]))
        } else {
          x.delete(0, 1)
        }
      }
    } else if (r < 0.81) {
      m.set('doc' + int(3), new Y.Doc({ guid: `sub-${seed}-${serial++}`, meta: { n: int(10) } }))
    } else if (r < 0.94) {
      const other = docs[(i + 1 + int(docs.length - 1)) % docs.length]
      Y.applyUpdate(other, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(other)), REMOTE)
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(other, Y.encodeStateVector(doc)), REMOTE)
    } else if (r < 0.97) {
      log.push(Y.encodeStateAsUpdate(doc))
    } else {
      log.push(Y.encodeStateAsUpdate(doc, oldSVs[i]))
      oldSVs[i] = Y.encodeStateVector(doc)
    }
  }
  return { ids, updates: log }
}

// Everything observable in the roots the sessions use (formatting included), as plain JSON.
function observe (doc) {
  return {
    t: render(doc.getText('t')),
    m: render(doc.getMap('m')),
    a: render(doc.getArray('a')),
    x: render(doc.getXmlFragment('x'))
  }
}

function render (v) {
  const r = render
  if (v instanceof Y.XmlHook) return { hook: v.hookName, map: r(Object.fromEntries(v.entries())) }
  if (v instanceof Y.XmlElement) {
    return { element: v.nodeName, attrs: r(v.getAttributes()), children: v.toArray().map(r) }
  }
  if (v instanceof Y.XmlFragment) return { fragment: v.toArray().map(r) }
  if (v instanceof Y.Text) { // and Y.XmlText
    const delta = v.toDelta().map(op => ({ insert: r(op.insert), attributes: op.attributes || null }))
    return { delta }
  }
  if (v instanceof Y.Map) {
    const o = {}
    for (const k of Array.from(v.keys()).sort()) o[k] = r(v.get(k))
    return { map: o }
  }
  if (v instanceof Y.Array) return { array: v.toArray().map(r) }
  if (v instanceof Y.Doc) return { subdoc: v.guid, meta: v.meta === undefined ? null : r(v.meta) }
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('base64') }
  if (typeof v === 'bigint') return { bigint: v.toString() }
  if (v === undefined) return { undefined: true }
  if (Array.isArray(v)) return v.map(r)
  if (v !== null && typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = r(v[k])
    return o
  }
  return v
}

// A fresh doc with `updates` applied in order.
function docOf (updates) {
  const doc = new Y.Doc()
  doc.clientID = 424242 // never writes
  for (const u of updates) Y.applyUpdate(doc, u, REMOTE)
  return doc
}

function hasGcStruct (update) {
  return Y.decodeUpdate(update).structs.some(s => s instanceof Y.GC)
}

module.exports = { mulberry32, runSession, observe, docOf, hasGcStruct, REMOTE }
