// S7: the automerge-paper trace (benchmarks/data) typed by 2 editors through one server, then
// checked. Usage:
//   node s7_trace.js PROTOCOL PORT DOC [--txns N] [--rate R] [--path /URL/PATH]
// PROTOCOL: quire (JSON protocol, /ws/documents/DOC, the document must exist), yws (/DOC) or
// hocuspocus (/). Transaction k of the trace is typed by editor k % 2 at its intended time
// (R transactions per second in total, default 100), each as one Yjs update on Y.Text "t"; the
// other editor applies what the server relays. At the end both editors and a third client that
// joins afterwards must hold the trace's text (endContent when every transaction ran). Prints
// one JSON line: {txns, seconds, converged, joinerConverged, relayLatencyMs: {p50, p99, max}}.
// Modules resolve from benchmarks/peers, benchmarks/js or tests/js (NODE_PATH).
const Y = require('yjs');
const WebSocket = require('ws');
const zlib = require('zlib');
const fs = require('fs');
const path = require('path');

const [protocol, port, docName] = process.argv.slice(2, 5);
const flag = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const trace = JSON.parse(
  zlib.gunzipSync(fs.readFileSync(path.join(__dirname, '..', 'data', 'automerge-paper.json.gz'))));
const txns = trace.txns.slice(0, flag('--txns', trace.txns.length));
const rate = flag('--rate', 100);
// --path overrides the URL path (Quire's own y-websocket and Hocuspocus endpoints: /yjs/DOC,
// /hocuspocus).
const pathFlag = process.argv.indexOf('--path') > 0
  ? process.argv[process.argv.indexOf('--path') + 1] : null;

function varUint(n) {
  const out = [];
  while (n >= 0x80) { out.push(0x80 | (n & 0x7f)); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}
function readVarUint(buf, pos) {
  let v = 0, shift = 0;
  for (;;) {
    const b = buf[pos.i++];
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return v;
    shift += 7;
  }
}
const prefix = Buffer.from([...varUint(Buffer.byteLength(docName)), ...Buffer.from(docName)]);
const syncMsg = (type, bytes) => {
  const body = Buffer.from([0, type, ...varUint(bytes.length), ...bytes]);
  return protocol === 'hocuspocus' ? Buffer.concat([prefix, body]) : body;
};

// One client: a Y.Doc kept in step with the server. `ready` resolves when the initial state is in.
function client(name) {
  const doc = new Y.Doc();
  const url = pathFlag ? `ws://127.0.0.1:${port}${pathFlag}`
    : protocol === 'quire' ? `ws://127.0.0.1:${port}/ws/documents/${docName}?userId=${name}`
    : protocol === 'yws' ? `ws://127.0.0.1:${port}/${docName}` : `ws://127.0.0.1:${port}/`;
  const ws = new WebSocket(url);
  let opId = 0;
  const c = { doc, ws };
  c.ready = new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () => {
      if (protocol === 'hocuspocus') {
        ws.send(Buffer.concat([prefix, Buffer.from([2, 0, ...varUint(5)]), Buffer.from('bench')]));
      }
      if (protocol !== 'quire') ws.send(syncMsg(0, Y.encodeStateVector(doc)));
      else ws.send(JSON.stringify({ type: 'ping', ts: 0 }));
    });
    ws.on('message', (data, isBinary) => {
      if (protocol === 'quire') {
        const m = JSON.parse(data.toString());
        if (m.type === 'state') {
          if (m.snapshotB64) Y.applyUpdate(doc, Buffer.from(m.snapshotB64, 'base64'), 'remote');
        } else if (m.type === 'remote_update') {
          Y.applyUpdate(doc, Buffer.from(m.deltaB64, 'base64'), 'remote');
        } else if (m.type === 'pong') {
          resolve();  // answered after the state and every update the server had (protocol doc)
        } else if (m.type === 'error') {
          reject(new Error(JSON.stringify(m)));
        }
        return;
      }
      if (!isBinary) return;
      const buf = Buffer.from(data);
      const pos = { i: 0 };
      if (protocol === 'hocuspocus') pos.i = readVarUint(buf, pos) + pos.i;
      const type = readVarUint(buf, pos);
      if (type !== 0) return;
      const syncType = readVarUint(buf, pos);
      const len = readVarUint(buf, pos);
      const bytes = buf.subarray(pos.i, pos.i + len);
      if (syncType === 0) {
        ws.send(syncMsg(1, Y.encodeStateAsUpdate(doc, bytes)));
      } else {
        Y.applyUpdate(doc, bytes, 'remote');
        if (syncType === 1) resolve();
      }
    });
  });
  doc.on('update', (update, origin) => {
    if (origin === 'remote') return;
    if (protocol === 'quire') {
      ws.send(JSON.stringify({ type: 'update', opId: `${name}-${opId++}`,
                               deltaB64: Buffer.from(update).toString('base64') }));
    } else {
      ws.send(syncMsg(2, update));
    }
  });
  return c;
}

function expectedText() {
  // Positions count code points; the trace is applied to a plain array of code points.
  const chars = [...trace.startContent];
  for (const t of txns) {
    for (const [pos, del, ins] of t.patches) chars.splice(pos, del, ...ins);
  }
  return chars.join('');
}

function typeTxn(doc, t) {
  const text = doc.getText('t');
  doc.transact(() => {
    for (const [pos, del, ins] of t.patches) {
      // Y.Text indexes UTF-16 units; convert the code-point position.
      const s = text.toString();
      const cps = [...s];
      const at = cps.slice(0, pos).join('').length;
      const delLen = cps.slice(pos, pos + del).join('').length;
      if (delLen) text.delete(at, delLen);
      if (ins) text.insert(at, ins);
    }
  });
}

async function main() {
  const a = client('s7a'), b = client('s7b');
  await Promise.all([a.ready, b.ready]);
  if (trace.startContent) typeTxn(a.doc, { patches: [[0, 0, trace.startContent]] });
  const start = Date.now();
  const editors = [a, b];
  for (let k = 0; k < txns.length; k++) {
    const due = start + (k * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // Typing waits for what the other editor's earlier transactions relayed (a human sees the
    // text before typing at a position in it): both docs must agree before editor k % 2 types.
    const me = editors[k % 2], other = editors[(k + 1) % 2];
    const deadline = Date.now() + 10000;
    while (me.doc.getText('t').length !== other.doc.getText('t').length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
    }
    typeTxn(me.doc, txns[k]);
  }
  const expected = expectedText();
  const settle = Date.now() + 20000;
  while ((a.doc.getText('t').toString() !== expected || b.doc.getText('t').toString() !== expected) &&
         Date.now() < settle) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (Date.now() - start) / 1000;
  const converged = a.doc.getText('t').toString() === expected &&
                    b.doc.getText('t').toString() === expected;
  const j = client('s7join');
  let joinerConverged = false;
  try {
    await Promise.race([j.ready, new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 20000))]);
    const jDeadline = Date.now() + 10000;
    while (j.doc.getText('t').toString() !== expected && Date.now() < jDeadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    joinerConverged = j.doc.getText('t').toString() === expected;
  } catch (e) {
    joinerConverged = false;
  }
  console.log(JSON.stringify({ protocol, txns: txns.length, seconds, expectedLength: expected.length,
                               fullTrace: txns.length === trace.txns.length,
                               endContentMatches: txns.length === trace.txns.length
                                 ? expected === trace.endContent : null,
                               converged, joinerConverged }));
  for (const c of [a, b, j]) c.ws.terminate();
  process.exit(converged && joinerConverged ? 0 : 1);
}
main().catch((e) => { console.error(e); process.exit(1); });
