// SPDX-License-Identifier: Apache-2.0
// Test harness: runs the real kansatsu binary (env KANSATSU_BIN) as a child
// process. Writes a YAML config into a fresh temp dir, spawns the collector,
// collects stderr and synchronises only on real events: the "kansatsu: ready"
// and "kansatsu: listening ..." lines, process exit, HTTP responses. Every
// wait has a generous bound and fails the test with the stderr tail attached.
// Ownership: each Collector owns its child and temp dir; stop() or kill()
// reaps the child; a process-exit hook SIGKILLs any child a failed test left.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';

export const BIN = process.env.KANSATSU_BIN;
export const READY_TIMEOUT_MS = 20000;
export const EXIT_TIMEOUT_MS = 30000;

// First line of a sanitizer report in text, or null.
export function sanitizerReport(text) {
  const m = text.match(/^.*(runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer).*$/m);
  return m ? m[0] : null;
}

const live = new Set();
process.on('exit', () => {
  for (const c of live) {
    try { c.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// ---- YAML -----------------------------------------------------------------
// A small block-style emitter so configs look like the ones users write.
function yamlScalar(v) {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  if (/^[A-Za-z_/][A-Za-z0-9_.:/\-]*$/.test(s) && !/^(true|false|yes|no|on|off|null|~)$/i.test(s) && !/:(\s|$)/.test(s)) return s;
  if (/^[0-9][0-9a-z.]*$/.test(s) && !/^[0-9.]+$/.test(s)) return s; // durations like 200ms, 10s
  return JSON.stringify(s);
}

export function toYaml(obj, indent = '') {
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      out += `${indent}${k}: [${v.map(yamlScalar).join(', ')}]\n`;
    } else if (v !== null && typeof v === 'object') {
      if (Object.keys(v).length === 0) out += `${indent}${k}: {}\n`;
      else out += `${indent}${k}:\n${toYaml(v, indent + '  ')}`;
    } else {
      out += `${indent}${k}: ${yamlScalar(v)}\n`;
    }
  }
  return out;
}

export function makeTempDir(label = 'it') {
  return mkdtempSync(join(tmpdir(), `kansatsu-${label}-`));
}

// A config in the contract's shape. opts.exporters replaces the default file
// exporter; opts.pipelineExporters names the pipeline's exporters.
export function makeConfig(dir, opts = {}) {
  const http_ = { endpoint: '127.0.0.1:0', ...(opts.http || {}) };
  const exporters = opts.exporters || { file: { path: join(dir, 'out.jsonl'), format: opts.format || 'json' } };
  return {
    receivers: { otlp: { protocols: { grpc: { endpoint: '127.0.0.1:0', ...(opts.grpc || {}) }, http: http_ } } },
    processors: { batch: { send_batch_size: 512, timeout: '200ms' } },
    exporters,
    extensions: { health_check: { endpoint: '127.0.0.1:0' } },
    service: {
      extensions: ['health_check'],
      telemetry: { metrics: { address: '127.0.0.1:0' } },
      pipelines: {
        traces: {
          receivers: ['otlp'],
          processors: ['batch'],
          exporters: opts.pipelineExporters || Object.keys(exporters),
        },
      },
    },
    kansatsu: { memory_limit_mib: opts.memory_limit_mib || 256, shards: 2, shutdown_timeout: '10s' },
  };
}

// ---- waiting --------------------------------------------------------------
export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// ---- the collector process -------------------------------------------------
export class Collector {
  constructor(label, dir, configPath) {
    this.label = label;
    this.dir = dir;
    this.configPath = configPath;
    this.stderr = '';
    this.stdout = '';
    this.ports = {};
    this.exit = null; // {code, signal} once exited
    this.signalled = false;
    this._waiters = [];
    this.proc = spawn(BIN, ['--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        this._check();
        resolve(this.exit);
      });
      this.proc.on('error', (err) => {
        this.exit = { code: null, signal: null, error: err };
        live.delete(this);
        this._check();
        resolve(this.exit);
      });
    });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => { this.stdout += d; });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => {
      this.stderr += d;
      for (const m of d.matchAll(/^kansatsu: listening (\S+) 127\.0\.0\.1:(\d+)/gm)) {
        this.ports[m[1]] = Number(m[2]);
      }
      // re-scan the whole text: a line may have been split across chunks
      for (const m of this.stderr.matchAll(/^kansatsu: listening (\S+) 127\.0\.0\.1:(\d+)\s*$/gm)) {
        this.ports[m[1]] = Number(m[2]);
      }
      this._check();
    });
  }

  tail(n = 40) {
    const lines = (this.stderr + this.stdout).split('\n');
    return `--- ${this.label} output (last ${n} lines) ---\n${lines.slice(-n).join('\n')}`;
  }

  _check() {
    this._waiters = this._waiters.filter((w) => {
      if (w.re.test(this.stderr)) { w.resolve(); return false; }
      if (this.exit) {
        w.reject(new Error(`${this.label}: exited (${JSON.stringify(this.exit)}) before printing ${w.re}\n${this.tail()}`));
        return false;
      }
      return true;
    });
  }

  waitForLine(re, ms = READY_TIMEOUT_MS) {
    const p = new Promise((resolve, reject) => { this._waiters.push({ re, resolve, reject }); });
    this._check();
    return withTimeout(p, ms, `${this.label}: ${re}`).catch((e) => {
      throw new Error(`${e.message}\n${this.tail()}`);
    });
  }

  port(name) {
    const p = this.ports[name];
    if (!p) throw new Error(`${this.label}: no "kansatsu: listening ${name} 127.0.0.1:<port>" line\n${this.tail()}`);
    return p;
  }

  get grpcPort() { return this.port('otlp/grpc'); }
  get httpPort() { return this.port('otlp/http'); }
  get metricsPort() { return this.port('metrics'); }
  get healthPort() { return this.port('health'); }

  // Sends SIGTERM once (a second signal may mean "quit now" to the collector).
  terminate() {
    if (!this.exit && !this.signalled) {
      this.signalled = true;
      this.proc.kill('SIGTERM');
    }
  }

  // SIGTERM, then wait for the exit; asserts exit code 0 and "kansatsu: stopped".
  async stop(ms = EXIT_TIMEOUT_MS) {
    this.terminate();
    const ex = await withTimeout(this.exited, ms, `${this.label} to exit after SIGTERM`).catch((e) => {
      this.kill();
      throw new Error(`${e.message}\n${this.tail()}`);
    });
    if (ex.code !== 0) throw new Error(`${this.label}: exit ${JSON.stringify(ex)} after SIGTERM, expected code 0\n${this.tail()}`);
    if (!/^kansatsu: stopped/m.test(this.stderr)) throw new Error(`${this.label}: no "kansatsu: stopped" line\n${this.tail()}`);
    this.checkSanitizers();
    return ex;
  }

  // UBSan reports do not change the exit code: fail on any sanitizer report.
  checkSanitizers() {
    const m = sanitizerReport(this.stderr);
    if (m) throw new Error(`${this.label}: sanitizer report: ${m}\n${this.tail(60)}`);
  }

  kill() {
    if (!this.exit) {
      try { this.proc.kill('SIGKILL'); } catch { /* gone */ }
    }
  }

  cleanup() {
    this.kill();
    if (!process.env.KANSATSU_IT_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}

// Writes the config, spawns the binary and waits for "kansatsu: ready".
// Registers cleanup with the node:test context t when given.
export async function startCollector(t, config, label = 'kansatsu', dir = undefined) {
  if (!BIN || !existsSync(BIN)) throw new Error(`KANSATSU_BIN (${BIN}) does not exist; build the kansatsu target first`);
  dir = dir || makeTempDir(label);
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, toYaml(config));
  const c = new Collector(label, dir, configPath);
  if (t) t.after(() => c.cleanup());
  await c.waitForLine(/^kansatsu: ready/m);
  return c;
}

// `kansatsu <args>` to completion (validate, --version, --help).
export function runBin(args, timeoutMs = 20000) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

// ---- file exporter output ---------------------------------------------------
// Quotes integer literals of 16+ digits so JSON.parse keeps uint64 values exact
// (OTLP/JSON allows them as numbers or strings). Only applied outside strings.
export function parseJsonLossless(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
      const lit = text.slice(i, j);
      out += /^-?\d{16,}$/.test(lit) ? `"${lit}"` : lit;
      i = j;
    } else {
      out += ch;
      i++;
    }
  }
  return JSON.parse(out);
}

export function readJsonRecords(path) {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l, n) => {
    try { return parseJsonLossless(l); } catch (e) { throw new Error(`${path}:${n + 1}: not JSON: ${e.message}: ${l.slice(0, 200)}`); }
  });
}

// format: proto -> 4-byte big-endian length + TracesData bytes per record.
export function readProtoRecords(path) {
  if (!existsSync(path)) return [];
  const buf = readFileSync(path);
  const recs = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 4 > buf.length) throw new Error(`${path}: truncated length prefix at byte ${off}`);
    const n = buf.readUInt32BE(off);
    if (off + 4 + n > buf.length) throw new Error(`${path}: record at byte ${off} claims ${n} bytes, only ${buf.length - off - 4} left`);
    recs.push(buf.subarray(off + 4, off + 4 + n));
    off += 4 + n;
  }
  return recs;
}

// ---- HTTP client ----------------------------------------------------------
// One request; resolves {status, headers, body} or rejects on a transport error.
// A server may answer (413) before it has read the whole body and close the
// connection: a write error after the response has started is ignored.
export function httpRequest({ port, method = 'POST', path = '/v1/traces', headers = {}, body, agent = false, timeoutMs = 30000 }) {
  return withTimeout(new Promise((resolve, reject) => {
    let responded = false;
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      responded = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', (e) => { if (!responded) reject(e); });
    if (body !== undefined) req.end(body); else req.end();
  }), timeoutMs, `${method} 127.0.0.1:${port}${path}`);
}

export async function httpGet(port, path) {
  return httpRequest({ port, method: 'GET', path });
}
