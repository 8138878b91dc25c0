// Node side of benchmarks/yjs_merge_bench (npm install in benchmarks/js first).
//   node yjs_trace.js convert TRACE.json.gz OUT.bin
//     Replays the editing trace into a Y.Doc, one transaction (and so one update) per trace
//     transaction, checks the text against endContent, and writes the updates as
//     [u32le length, bytes]*.
//   node yjs_trace.js check TRACE.json.gz MERGED.bin
//     Whether one Y.applyUpdate of MERGED.bin gives the trace's endContent.
//   node yjs_trace.js bench UPDATES.bin PREFIX FOLD_SIZE FOLDS [QUIRE_PREFIX_MERGE]
//     Times Y.mergeUpdates on the first PREFIX updates and on FOLDS folds of FOLD_SIZE
//     consecutive updates; prints one JSON object (identical_to_quire: whether the prefix
//     merge equals the bytes in QUIRE_PREFIX_MERGE).
'use strict'
const fs = require('fs')
const zlib = require('zlib')
const crypto = require('crypto')
const Y = require('yjs')

function convert (tracePath, outPath) {
  const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(tracePath)).toString('utf8'))
  const doc = new Y.Doc()
  doc.clientID = 1 // deterministic output
  const text = doc.getText('text')
  const updates = []
  doc.on('update', u => updates.push(u))
  if (trace.startContent) doc.transact(() => text.insert(0, trace.startContent))
  const astral = /[\u{10000}-\u{10FFFF}]/u
  for (const txn of trace.txns) {
    doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        // Positions count code points; Y.Text counts UTF-16 units: equal without astral text.
        if (astral.test(ins)) throw new Error('astral characters need position conversion')
        if (del > 0) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      }
    })
  }
  if (text.toString() !== trace.endContent) throw new Error('converted text differs from endContent')
  if (updates.length !== trace.txns.length + (trace.startContent ? 1 : 0)) throw new Error('not one update per edit')
  const parts = []
  for (const u of updates) {
    const len = Buffer.alloc(4)
    len.writeUInt32LE(u.length)
    parts.push(len, Buffer.from(u))
  }
  fs.writeFileSync(outPath, Buffer.concat(parts))
  console.log(JSON.stringify({ updates: updates.length, bytes: parts.reduce((n, p) => n + p.length, 0), textLength: trace.endContent.length }))
}

function readUpdates (path) {
  const buf = fs.readFileSync(path)
  const out = []
  for (let at = 0; at < buf.length;) {
    const n = buf.readUInt32LE(at)
    out.push(new Uint8Array(buf.buffer, buf.byteOffset + at + 4, n))
    at += 4 + n
  }
  return out
}

function bench (path, prefix, foldSize, folds, quirePrefixPath) {
  const updates = readUpdates(path)
  const part = updates.slice(0, Math.min(prefix, updates.length))
  Y.mergeUpdates(part.slice(0, 1000)) // warm up the JIT
  const t0 = process.hrtime.bigint()
  const merged = Y.mergeUpdates(part)
  const wholeNs = Number(process.hrtime.bigint() - t0)
  const foldNs = []
  const stride = Math.max(foldSize, Math.floor((updates.length - foldSize) / folds))
  for (let i = 0; i < folds; ++i) {
    const start = (i * stride) % (updates.length - foldSize)
    const group = updates.slice(start, start + foldSize)
    const f0 = process.hrtime.bigint()
    Y.mergeUpdates(group)
    foldNs.push(Number(process.hrtime.bigint() - f0))
  }
  foldNs.sort((a, b) => a - b)
  console.log(JSON.stringify({
    updates: part.length,
    whole_ns: wholeNs,
    whole_output_bytes: merged.length,
    whole_output_sha256: crypto.createHash('sha256').update(merged).digest('hex'),
    fold_size: foldSize,
    folds: foldNs.length,
    fold_median_ns: foldNs[Math.floor(foldNs.length / 2)],
    fold_p99_ns: foldNs[Math.floor(foldNs.length * 0.99)],
    identical_to_quire: quirePrefixPath ? Buffer.from(merged).equals(fs.readFileSync(quirePrefixPath)) : null,
    node: process.version
  }))
}

// Applies a merged update to a fresh Y.Doc and compares its text with the trace's endContent.
function check (tracePath, mergedPath) {
  const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(tracePath)).toString('utf8'))
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(fs.readFileSync(mergedPath)))
  const ok = doc.getText('text').toString() === trace.endContent && doc.store.pendingStructs === null
  console.log(JSON.stringify({ end_content_matches: ok }))
}

const [cmd, ...args] = process.argv.slice(2)
if (cmd === 'convert') convert(args[0], args[1])
else if (cmd === 'check') check(args[0], args[1])
else if (cmd === 'bench') bench(args[0], Number(args[1]), Number(args[2]), Number(args[3]), args[4])
else {
  console.error('usage: yjs_trace.js convert TRACE.json.gz OUT.bin | bench UPDATES.bin PREFIX FOLD_SIZE FOLDS')
  process.exit(2)
}
