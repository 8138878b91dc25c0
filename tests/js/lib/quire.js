// Drives `quire yjs batch` (one process, one line per operation) and `quire yjs` file commands.
'use strict'
const { spawn } = require('child_process')

const b64 = u => Buffer.from(u).toString('base64')
const unb64 = s => new Uint8Array(Buffer.from(s, 'base64'))

function quireBinary () {
  const bin = process.env.QUIRE_BIN
  if (!bin) throw new Error('QUIRE_BIN is not set: run the tests with tests/js/run.sh BINARY')
  return bin
}

class QuireYjs {
  constructor (bin = quireBinary()) {
    this.proc = spawn(bin, ['yjs', 'batch'], { stdio: ['pipe', 'pipe', 'inherit'] })
    this.waiting = []
    this.buffered = ''
    this.proc.stdin.on('error', () => {}) // reported through 'exit'
    this.proc.stdout.setEncoding('utf8')
    this.proc.stdout.on('data', chunk => {
      this.buffered += chunk
      let nl
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl)
        this.buffered = this.buffered.slice(nl + 1)
        this.waiting.shift().resolve(line)
      }
    })
    this.proc.on('exit', code => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`quire yjs batch exited with ${code}`))
    })
  }

  // Resolves to the reply after "ok "; rejects with the message after "error ".
  call (command, ...blobs) {
    return new Promise((resolve, reject) => {
      this.waiting.push({
        resolve: line => line.startsWith('ok ')
          ? resolve(line.slice(3))
          : reject(new Error(`quire yjs ${command}: ${line}`)),
        reject
      })
      this.proc.stdin.write([command, ...blobs.map(b64)].join(' ') + '\n')
    })
  }

  async merge (updates) { return unb64(await this.call('merge', ...updates)) }
  async diff (update, sv) { return unb64(await this.call('diff', update, sv)) }
  async stateVector (update) { return unb64(await this.call('state-vector', update)) }
  async validate (update) { return this.call('validate', update) }
  async inspect (update) { return JSON.parse(await this.call('inspect', update)) }

  close () {
    this.proc.stdin.end()
    return new Promise(resolve => this.proc.once('close', resolve))
  }
}

module.exports = { QuireYjs, quireBinary, b64, unb64 }
