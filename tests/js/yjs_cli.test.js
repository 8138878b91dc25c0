// `quire yjs` as an operator uses it: raw binary files, stdin, --base64, --json, exit codes.
'use strict'
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const Y = require('yjs')
const { quireBinary } = require('./lib/quire')

function run (args, input) {
  const r = spawnSync(quireBinary(), ['yjs', ...args], { input, maxBuffer: 1 << 26 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() }
}

function fixture () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-yjs-cli-'))
  const doc = new Y.Doc()
  doc.clientID = 5
  const updates = []
  doc.on('update', u => updates.push(u))
  doc.getText('t').insert(0, 'héllo 😀')
  doc.getMap('m').set('k', new Uint8Array([1, 2, 3]))
  doc.getText('t').delete(1, 2)
  const files = updates.map((u, i) => {
    const f = path.join(dir, `u${i}.bin`)
    fs.writeFileSync(f, u)
    return f
  })
  return { dir, doc, updates, files }
}

test('merge, state-vector and diff on binary files match yjs', () => {
  const { dir, doc, updates, files } = fixture()
  const merged = run(['merge', ...files])
  assert.equal(merged.code, 0, merged.stderr)
  assert.deepEqual(new Uint8Array(merged.stdout), Y.mergeUpdates(updates))
  const mergedFile = path.join(dir, 'merged.bin')
  fs.writeFileSync(mergedFile, merged.stdout)

  const sv = run(['state-vector', mergedFile])
  assert.equal(sv.code, 0, sv.stderr)
  assert.deepEqual(new Uint8Array(sv.stdout), Y.encodeStateVector(doc))

  const partial = new Y.Doc()
  Y.applyUpdate(partial, updates[0])
  const svFile = path.join(dir, 'sv.bin')
  fs.writeFileSync(svFile, Y.encodeStateVector(partial))
  const diff = run(['diff', mergedFile, svFile])
  assert.equal(diff.code, 0, diff.stderr)
  Y.applyUpdate(partial, diff.stdout)
  assert.equal(partial.getText('t').toString(), doc.getText('t').toString())
  fs.rmSync(dir, { recursive: true })
})

test('stdin and --base64', () => {
  const { dir, updates, files } = fixture()
  const viaStdin = run(['merge', files[0], '-', files[2]], fs.readFileSync(files[1]))
  assert.equal(viaStdin.code, 0, viaStdin.stderr)
  const b64 = run(['merge', '--base64', '-'], Buffer.from(updates[0]).toString('base64') + '\n')
  assert.equal(b64.code, 0, b64.stderr)
  assert.equal(b64.stdout.toString(), Buffer.from(updates[0]).toString('base64') + '\n')
  const b64files = updates.map((u, i) => {
    const f = path.join(dir, `u${i}.txt`)
    fs.writeFileSync(f, Buffer.from(u).toString('base64'))
    return f
  })
  const merged = run(['merge', '--base64', ...b64files])
  assert.equal(merged.code, 0, merged.stderr)
  assert.deepEqual(new Uint8Array(Buffer.from(merged.stdout.toString().trim(), 'base64')), Y.mergeUpdates(updates))
  assert.equal(run(['merge', '-', '-'], Buffer.alloc(0)).code, 2)
  fs.rmSync(dir, { recursive: true })
})

test('inspect describes the structs', () => {
  const { dir, files } = fixture()
  const json = run(['inspect', '--json', files[0]])
  assert.equal(json.code, 0, json.stderr)
  const described = JSON.parse(json.stdout.toString())
  assert.equal(described.structs[0].content.str, 'héllo 😀')
  assert.equal(described.structs[0].content.utf16_len, 8)
  assert.deepEqual(described.structs[0].parent, { root: 't' })
  const text = run(['inspect', files[0]])
  assert.equal(text.code, 0)
  assert.match(text.stdout.toString(), /Item \(5,0\) len 8 parent root "t"/)
  fs.rmSync(dir, { recursive: true })
})

test('invalid input exits 1 with a reason, bad usage exits 2', () => {
  const { dir, files } = fixture()
  const bad = path.join(dir, 'bad.bin')
  const good = fs.readFileSync(files[0])
  fs.writeFileSync(bad, good.subarray(0, good.length - 3))
  for (const args of [['validate', bad], ['merge', files[0], bad], ['state-vector', bad], ['inspect', bad], ['diff', bad, files[0]]]) {
    const r = run(args)
    assert.equal(r.code, 1, args.join(' '))
    assert.match(r.stderr, /InvalidArgument: .*yjs: /)
  }
  assert.equal(run(['validate', ...files]).code, 0)
  assert.equal(run(['frobnicate', files[0]]).code, 2)
  assert.equal(run(['diff', files[0]]).code, 2)
  assert.equal(run(['merge', path.join(dir, 'missing.bin')]).code, 2)
  assert.equal(run(['merge', '--base64', files[0]]).code, 2) // binary is not base64
  fs.rmSync(dir, { recursive: true })
})
