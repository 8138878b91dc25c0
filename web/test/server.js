// Starts the real `quire serve` as a subprocess for the tests (127.0.0.1 only) and waits for
// its "listening" log line to learn the port.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export function quireBinary() {
  const bin = process.env.QUIRE_BIN;
  if (!bin) throw new Error('QUIRE_BIN is not set (web/test.sh sets it)');
  return bin;
}

export class QuireProcess {
  constructor({ databaseUrl = 'memory://', port = 0, webRoot = 'none', extraArgs = [] } = {}) {
    this.databaseUrl = databaseUrl;
    this.port = port;
    this.webRoot = webRoot;
    this.extraArgs = extraArgs;
    this.proc = null;
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  // Starts (again, on the same port once one was picked) and resolves once it listens.
  start(timeoutMs = 10000) {
    const args = ['serve', '--host', '127.0.0.1', '--port', String(this.port), '--database-url',
      this.databaseUrl, '--web-root', this.webRoot, '--sync', 'normal', ...this.extraArgs];
    const proc = spawn(quireBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('quire serve did not start')), timeoutMs);
      const lines = createInterface({ input: proc.stderr });
      lines.on('line', (line) => {
        if (process.env.QUIRE_TEST_VERBOSE) process.stderr.write(`[quire] ${line}\n`);
        if (!line.includes('"listening"')) return;
        const m = line.match(/"port":(\d+)/);
        if (m) {
          this.port = Number(m[1]);
          clearTimeout(timer);
          resolve(this);
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`quire serve exited with ${code} before listening`));
      });
    });
  }

  // SIGTERM (graceful) or SIGKILL; resolves with the exit status.
  async stop(signal = 'SIGTERM') {
    if (!this.proc) return null;
    const proc = this.proc;
    this.proc = null;
    proc.kill(signal);
    return this.exited;
  }
}

export async function api(server, method, path, body) {
  const res = await fetch(`${server.httpUrl}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

// Resolves when `predicate()` is true; polls every 10 ms.
export async function waitFor(predicate, what, timeoutMs = 10000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
