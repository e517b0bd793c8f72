// SPDX-License-Identifier: Apache-2.0
// A real Redis (the Debian package's /usr/bin/redis-server) run as a child
// for the journey registry tests: loopback only, no persistence, its own
// temp dir, stopped by pid (SIGTERM, then the exit awaited). Redis cannot
// take an ephemeral TCP port (port 0 turns TCP off), so the port is one the
// kernel just handed out to a probe socket; a start that loses that port to
// someone else ("Address already in use") is retried on another.
// Synchronisation: Redis's own "Ready to accept connections" line and its
// exit; never a fixed sleep.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { makeTempDir } from './harness.mjs';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_CLI = '/usr/bin/redis-cli';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export class Redis {
  constructor(dir, port) { this.dir = dir; this.port = port; this.out = ''; this.proc = null; this.exited = null; }

  // Starts redis-server on this.port; resolves when it accepts connections.
  start(ms = 20000) {
    this.out = '';
    this.proc = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no', '--protected-mode', 'yes'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    const p = this.proc;
    this.exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis on ${this.port}: not ready in ${ms} ms\n${this.out}`)), ms);
      const onData = (d) => {
        this.out += d;
        if (/Ready to accept connections/.test(this.out)) { clearTimeout(timer); resolve(this); }
      };
      p.stdout.setEncoding('utf8');
      p.stderr.setEncoding('utf8');
      p.stdout.on('data', onData);
      p.stderr.on('data', onData);
      this.exited.then((ex) => { clearTimeout(timer); reject(new Error(`redis on ${this.port} exited ${JSON.stringify(ex)}\n${this.out}`)); });
    });
  }

  // SIGTERM by pid, then its exit.
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    await this.exited;
  }

  // redis-cli against this server; returns stdout (throws on failure).
  cli(...args) {
    const r = spawnSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(this.port), ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  // Commands the server executed, by name, from INFO commandstats.
  commandStats() {
    const out = {};
    for (const m of this.cli('INFO', 'commandstats').matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
    return out;
  }
}

// A started Redis on a fresh port, stopped when the test ends.
export async function startRedis(t, label = 'redis') {
  const dir = makeTempDir(label);
  let lastErr;
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = new Redis(dir, await freePort());
    try {
      await r.start();
      t.after(() => r.stop());
      return r;
    } catch (e) {
      lastErr = e;
      await r.stop();
      if (!/Address already in use/.test(r.out)) break;
    }
  }
  throw lastErr;
}
