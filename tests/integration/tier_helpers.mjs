// SPDX-License-Identifier: Apache-2.0
// Helpers for the two-tier tests (tier.test.mjs, tier_dns.test.mjs): an
// agent (otlp receiver -> batch -> loadbalancing exporter) in front of
// sampling instances (otlp gRPC receiver -> [tail_sampling] -> batch -> file).
// - TierProc: a kansatsu child started from any argv (the DNS test wraps the
//   agent in `unshare -m sh -c 'mount --bind ... && exec kansatsu ...'`, which
//   harness.mjs's Collector cannot do) that also records listening lines on
//   127.0.0.X addresses. Same contract as harness.mjs: waits on log lines
//   and process exit only, each with a bound; stop() requires exit code 0,
//   "kansatsu: stopped" and no sanitizer report.
// - the ring of kn_lb_ring.h re-implemented from its documentation (FNV-1a
//   64 + MurmurHash3 finaliser, 256 points per endpoint), so the tests check
//   that each trace went to the endpoint the documented ring names;
// - a workload of many traces, each split into 3-5 parts sent in different
//   requests, interleaved with other traces, over OTLP/HTTP (protobuf and
//   JSON) and OTLP/gRPC, with a bounded client-side retry of refusals;
// - readers for the instances' JSON files and the agent's metrics.
// Ownership: each TierProc owns its child and (unless KANSATSU_IT_KEEP is
// set) its temp dir; cleanup() is registered with the node:test context.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import grpc from '@grpc/grpc-js';
import { BIN, READY_TIMEOUT_MS, EXIT_TIMEOUT_MS, makeTempDir, sanitizerReport, withTimeout, readJsonRecords, httpRequest } from './harness.mjs';
import { rawSpan, serializeProto, serializeJson } from './otel.mjs';
import { decodeExportResponse } from './pb.mjs';
import { EXPORT_PATH } from './sinks.mjs';
import { parseProm, metricSum, pause } from './memory_limit_helpers.mjs';

export { parseProm, metricSum };

// ---- YAML ---------------------------------------------------------------------
// Block-style YAML like users write, with sequences of mappings (tail_sampling
// policies), which harness.mjs's toYaml does not emit.
function scalar(v) {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  if (/^[A-Za-z0-9_/.][A-Za-z0-9_.:/\-]*$/.test(s) && !/^(true|false|yes|no|on|off|null|~|[0-9.]+)$/i.test(s) && !/:$/.test(s)) return s;
  return JSON.stringify(s);
}

export function yaml(obj, indent = '') {
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      if (v.length === 0 || v.every((x) => x === null || typeof x !== 'object')) {
        out += `${indent}${k}: [${v.map((x) => (typeof x === 'string' ? JSON.stringify(x) : scalar(x))).join(', ')}]\n`;
      } else {
        out += `${indent}${k}:\n`;
        for (const item of v) {
          const body = yaml(item, `${indent}    `);
          out += `${indent}  - ${body.slice(indent.length + 4)}`;
        }
      }
    } else if (v !== null && typeof v === 'object') {
      out += Object.keys(v).length === 0 ? `${indent}${k}: {}\n` : `${indent}${k}:\n${yaml(v, `${indent}  `)}`;
    } else {
      out += `${indent}${k}: ${scalar(v)}\n`;
    }
  }
  return out;
}

// ---- processes ------------------------------------------------------------------
const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.proc.kill('SIGKILL'); } catch { /* gone */ }
  }
});

export class TierProc {
  // argv[0] is the program; the child's pid is kansatsu's own pid when the
  // wrappers exec (unshare without --fork, sh -c 'exec ...').
  constructor(label, dir, argv) {
    this.label = label;
    this.dir = dir;
    this.out = '';
    this.ports = {};   // name -> port of "kansatsu: listening <name> <host>:<port>"
    this.hosts = {};   // name -> host
    this.exit = null;
    this.signalled = false;
    this._waiters = [];
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.exited = new Promise((resolve) => {
      const done = (ex) => {
        if (this.exit) return;
        this.exit = ex;
        live.delete(this);
        this._check();
        resolve(ex);
      };
      this.proc.on('exit', (code, signal) => done({ code, signal }));
      this.proc.on('error', (error) => done({ code: null, signal: null, error: error.message }));
    });
    for (const s of [this.proc.stdout, this.proc.stderr]) {
      s.setEncoding('utf8');
      s.on('data', (d) => {
        this.out += d;
        for (const m of this.out.matchAll(/^kansatsu: listening (\S+) (\S+):(\d+)\s*$/gm)) {
          this.ports[m[1]] = Number(m[3]);
          this.hosts[m[1]] = m[2];
        }
        this._check();
      });
    }
  }

  tail(n = 40) {
    return `--- ${this.label} output (last ${n} lines) ---\n${this.out.split('\n').slice(-n).join('\n')}`;
  }

  _check() {
    this._waiters = this._waiters.filter((w) => {
      if (w.re.test(this.out)) { w.resolve(); return false; }
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
    return withTimeout(p, ms, `${this.label}: ${re}`).catch((e) => { throw new Error(`${e.message}\n${this.tail()}`); });
  }

  port(name) {
    const p = this.ports[name];
    if (!p) throw new Error(`${this.label}: no "kansatsu: listening ${name} <host>:<port>" line\n${this.tail()}`);
    return p;
  }

  get grpcPort() { return this.port('otlp/grpc'); }
  get httpPort() { return this.port('otlp/http'); }
  get metricsPort() { return this.port('metrics'); }

  terminate() {
    if (!this.exit && !this.signalled) {
      this.signalled = true;
      this.proc.kill('SIGTERM');
    }
  }

  async stop(ms = EXIT_TIMEOUT_MS) {
    this.terminate();
    const ex = await withTimeout(this.exited, ms, `${this.label} to exit after SIGTERM`).catch((e) => {
      this.kill();
      throw new Error(`${e.message}\n${this.tail()}`);
    });
    if (ex.code !== 0) throw new Error(`${this.label}: exit ${JSON.stringify(ex)} after SIGTERM, expected code 0\n${this.tail()}`);
    if (!/^kansatsu: stopped/m.test(this.out)) throw new Error(`${this.label}: no "kansatsu: stopped" line\n${this.tail()}`);
    this.checkSanitizers();
    return ex;
  }

  // "kansatsu: warn: ..." and "kansatsu: error: ..." lines (for diagnostics)
  warnings() {
    return this.out.split('\n').filter((l) => /^kansatsu: (warn|error):/.test(l));
  }

  checkSanitizers() {
    const m = sanitizerReport(this.out);
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

export function checkBin() {
  if (!BIN || !existsSync(BIN)) throw new Error(`KANSATSU_BIN (${BIN}) does not exist; build the kansatsu target first`);
}

// Writes config.yaml into dir and starts kansatsu on it, through wrap(argv)
// when given; waits for "kansatsu: ready".
export async function startKansatsu(t, label, dir, config, wrap = (argv) => argv) {
  checkBin();
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, yaml(config));
  const p = new TierProc(label, dir, wrap([BIN, '--config', configPath]));
  if (t) t.after(() => p.cleanup());
  await p.waitForLine(/^kansatsu: ready/m);
  return p;
}

function baseService(pipelineProcessors, exporters) {
  return {
    extensions: { health_check: { endpoint: '127.0.0.1:0' } },
    service: {
      extensions: ['health_check'],
      telemetry: { metrics: { address: '127.0.0.1:0' } },
      pipelines: { traces: { receivers: ['otlp'], processors: pipelineProcessors, exporters: Object.keys(exporters) } },
    },
    kansatsu: { memory_limit_mib: 256, shards: 2, shutdown_timeout: '15s' },
  };
}

// decision_wait short enough that traces are decided while the test runs
// (not only at shutdown), so parts arriving later are late spans that must
// follow the sampled decision.
export const TAIL_SAMPLING = {
  decision_wait: '300ms',
  policies: [{ name: 'all', type: 'always_sample' }],
};

// A sampling instance: OTLP/gRPC on host:port (port 0 = ephemeral) -> [tail_sampling] ->
// batch -> file (json). The returned process carries outPath and endpoint ("host:port").
export async function startInstance(t, { label, host = '127.0.0.1', port = 0, tailSampling = false }) {
  const dir = makeTempDir('tier-inst');
  const outPath = join(dir, 'out.jsonl');
  const exporters = { file: { path: outPath, format: 'json' } };
  const processors = { batch: { send_batch_size: 512, timeout: '100ms' } };
  if (tailSampling) processors.tail_sampling = TAIL_SAMPLING;
  const config = {
    receivers: { otlp: { protocols: { grpc: { endpoint: `${host}:${port}` } } } },
    processors,
    exporters,
    ...baseService(tailSampling ? ['tail_sampling', 'batch'] : ['batch'], exporters),
  };
  const p = await startKansatsu(t, label, dir, config);
  p.outPath = outPath;
  assert.equal(p.hosts['otlp/grpc'], host, `${label}: listening host`);
  p.endpoint = `${host}:${p.grpcPort}`;
  return p;
}

// The agent: OTLP gRPC + HTTP on 127.0.0.1:0 -> batch -> loadbalancing with
// the given resolver ({static: {hostnames}} or {dns: {...}}).
export async function startAgent(t, { label = 'agent', resolver, wrap }) {
  const dir = makeTempDir('tier-agent');
  const exporters = {
    loadbalancing: {
      routing_key: 'traceID',
      protocol: {
        otlp: {
          tls: { insecure: true },
          retry_on_failure: { initial_interval: '20ms', max_interval: '100ms', max_elapsed_time: 0 },
        },
      },
      resolver,
    },
  };
  const config = {
    receivers: { otlp: { protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } } } },
    processors: { batch: { send_batch_size: 256, timeout: '100ms' } },
    exporters,
    ...baseService(['batch'], exporters),
  };
  return startKansatsu(t, label, dir, config, wrap);
}

// `kansatsu validate` of an instance config with tail_sampling: null when
// valid, else the reason (the processor is written by others and may be
// missing or incomplete).
export function tailSamplingUnavailable() {
  checkBin();
  const dir = makeTempDir('tier-validate');
  try {
    const exporters = { file: { path: join(dir, 'out.jsonl'), format: 'json' } };
    const config = {
      receivers: { otlp: { protocols: { grpc: { endpoint: '127.0.0.1:0' } } } },
      processors: { tail_sampling: TAIL_SAMPLING, batch: {} },
      exporters,
      ...baseService(['tail_sampling', 'batch'], exporters),
    };
    writeFileSync(join(dir, 'config.yaml'), yaml(config));
    const r = spawnSync(BIN, ['validate', '--config', join(dir, 'config.yaml')], { encoding: 'utf8', timeout: 20000 });
    if (r.status === 0) return null;
    return `kansatsu validate rejects a tail_sampling processor (exit ${r.status}): ${(r.stderr || '').trim().split('\n').pop()}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the documented ring (kn_lb_ring.h) ------------------------------------------------
const MASK64 = (1n << 64n) - 1n;
export function lbHash(bytes) {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & MASK64;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  return h;
}

export class Ring {
  constructor(endpoints) {
    this.endpoints = [...new Set(endpoints)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    this.points = [];
    this.endpoints.forEach((ep, i) => {
      for (let k = 0; k < 256; k++) this.points.push({ hash: lbHash(Buffer.from(`${ep}#${k}`)), ep: i });
    });
    this.points.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.ep - b.ep));
  }

  // the endpoint a trace id (32 hex digits) routes to
  lookup(traceIdHex) {
    const key = lbHash(Buffer.from(traceIdHex, 'hex'));
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.points[mid].hash < key) lo = mid + 1; else hi = mid;
    }
    return this.endpoints[this.points[lo === this.points.length ? 0 : lo].ep];
  }
}

// ---- workload ------------------------------------------------------------------------
// A small seeded PRNG (mulberry32) so a failure can be replayed.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const hexOf = (s, n) => createHash('sha256').update(s).digest('hex').slice(0, n);
const TRANSPORTS = ['http/protobuf', 'grpc', 'http/json', 'grpc'];

// nTraces traces of 6-12 spans; each trace split into 3-5 parts; parts
// ordered round by round (first parts of all traces, shuffled, then second
// parts, ...) and packed `partsPerRequest` to a request, never two parts of
// one trace in one request, so every trace spans 3-5 requests interleaved
// with other traces. Returns {traces: Map traceId -> spanIds[], requests:
// [{transport, spans: [rawSpan], spanIds, traceIds}]}.
export function makeWorkload({ label, nTraces, seed = 1, partsPerRequest = 6 }) {
  const rnd = prng(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const traces = new Map();
  const partsOf = [];
  const seen = new Set();
  for (let i = 0; i < nTraces; i++) {
    const traceId = hexOf(`${label}/${seed}/trace/${i}`, 32);
    const nSpans = int(6, 12);
    const spans = [];
    for (let j = 0; j < nSpans; j++) {
      const spanId = hexOf(`${label}/${seed}/span/${i}/${j}`, 16);
      assert.ok(!seen.has(spanId) && !/^0+$/.test(spanId), 'workload: span ids distinct and non-zero');
      seen.add(spanId);
      spans.push(rawSpan({
        traceId, spanId, parentSpanId: j === 0 ? undefined : spans[0].spanContext().spanId,
        name: `${label}-t${i}-s${j}`, startNs: 1700000000000000000n + BigInt(i) * 1000000n + BigInt(j),
        attributes: { 'tier.trace': i, 'tier.span': j, 'tier.run': label },
      }));
    }
    traces.set(traceId, spans.map((s) => s.spanContext().spanId));
    // split into nParts non-empty parts of shuffled spans
    const nParts = Math.min(int(3, 5), nSpans);
    const order = spans.slice().sort(() => rnd() - 0.5);
    const parts = Array.from({ length: nParts }, () => []);
    order.forEach((s, k) => parts[k < nParts ? k : int(0, nParts - 1)].push(s));
    partsOf.push(parts.map((p) => ({ traceId, spans: p })));
  }
  const ordered = [];
  for (let round = 0; round < 5; round++) {
    const r = partsOf.filter((ps) => ps.length > round).map((ps) => ps[round]);
    for (let k = r.length - 1; k > 0; k--) {
      const m = int(0, k);
      [r[k], r[m]] = [r[m], r[k]];
    }
    ordered.push(...r);
  }
  const requests = [];
  let cur = null;
  for (const part of ordered) {
    if (!cur || cur.traceIds.has(part.traceId) || cur.traceIds.size >= partsPerRequest) {
      cur = { transport: TRANSPORTS[requests.length % TRANSPORTS.length], spans: [], traceIds: new Set() };
      requests.push(cur);
    }
    cur.spans.push(...part.spans);
    cur.traceIds.add(part.traceId);
  }
  for (const r of requests) r.spanIds = r.spans.map((s) => s.spanContext().spanId);
  return { traces, requests, totalSpans: seen.size };
}

// ---- sending ---------------------------------------------------------------------------
const ident = (b) => b;
const RETRYABLE_HTTP = new Set([429, 502, 503, 504]);
const RETRYABLE_GRPC = new Set([grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED]);

// A sender to one agent: keep-alive HTTP agent and one gRPC client, reused.
export function makeSender(agent) {
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const client = new grpc.Client(`127.0.0.1:${agent.grpcPort}`, grpc.credentials.createInsecure());
  const httpPort = agent.httpPort;

  // One attempt: {ack: true} | {retry: reason} | {fail: reason}
  async function once(req) {
    if (req.transport === 'grpc') {
      const body = serializeProto(req.spans);
      const r = await new Promise((resolve) => {
        client.makeUnaryRequest(EXPORT_PATH, ident, ident, body, new grpc.Metadata(), { deadline: Date.now() + 30000 },
          (err, resp) => resolve(err ? { code: err.code, details: err.details } : { code: 0, resp }));
      });
      if (r.code === 0) {
        const ps = decodeExportResponse(r.resp).partialSuccess;
        if (ps && ps.rejectedSpans) return { fail: `gRPC partial success rejected ${ps.rejectedSpans}: ${ps.errorMessage}` };
        return { ack: true };
      }
      return RETRYABLE_GRPC.has(r.code) ? { retry: `gRPC ${r.code} ${r.details}` } : { fail: `gRPC status ${r.code} ${r.details}` };
    }
    const json = req.transport === 'http/json';
    const body = json ? serializeJson(req.spans) : serializeProto(req.spans);
    let r;
    try {
      r = await httpRequest({ port: httpPort, headers: { 'content-type': json ? 'application/json' : 'application/x-protobuf' }, body, agent: httpAgent });
    } catch (e) {
      return { retry: `HTTP transport: ${e.message}` };
    }
    if (r.status === 200) {
      let ps = null;
      if (json) {
        const o = r.body.length ? JSON.parse(r.body.toString()) : {};
        ps = o.partialSuccess || null;
      } else {
        ps = decodeExportResponse(r.body).partialSuccess;
      }
      if (ps && Number(ps.rejectedSpans || 0) > 0) return { fail: `HTTP partial success rejected ${ps.rejectedSpans}: ${ps.errorMessage}` };
      return { ack: true };
    }
    return RETRYABLE_HTTP.has(r.status) ? { retry: `HTTP ${r.status}` } : { fail: `HTTP ${r.status}: ${r.body.toString().slice(0, 200)}` };
  }

  // Sends every request with `concurrency` in flight; a refusal is retried
  // (as an OTLP client does) up to `attempts` times with a growing pause.
  // Resolves {acked: Set spanId, failures: [string], retries, sent: n};
  // onAck(n) is called with the number of requests acknowledged so far;
  // once stopWhen() returns true no further request is started.
  async function sendAll(requests, { concurrency = 8, attempts = 60, onAck, stopWhen = () => false } = {}) {
    const acked = new Set();
    const failures = [];
    let retries = 0;
    let next = 0;
    let nAcked = 0;
    const worker = async () => {
      while (next < requests.length && !stopWhen()) {
        const req = requests[next++];
        let last = '';
        for (let a = 0; a < attempts; a++) {
          const r = await once(req);
          if (r.ack) {
            for (const id of req.spanIds) acked.add(id);
            nAcked++;
            if (onAck) onAck(nAcked);
            last = null;
            break;
          }
          if (r.fail) { last = r.fail; break; }
          last = r.retry;
          retries++;
          await pause(Math.min(20 * (a + 1), 250)); // client backoff, not synchronisation
        }
        if (last !== null) failures.push(`${req.transport} request with ${req.spans.length} spans: ${last}`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { acked, failures, retries, sent: next };
  }

  return {
    sendAll,
    close() { client.close(); httpAgent.destroy(); },
  };
}

// ---- instance output -----------------------------------------------------------------------
// [{traceId, spanId}] of every span in a file exporter's JSON output.
export function spansInFile(path) {
  const out = [];
  readJsonRecords(path).forEach((td, n) => {
    for (const rs of td.resourceSpans || []) {
      for (const ss of rs.scopeSpans || []) {
        for (const s of ss.spans || []) {
          assert.ok(/^[0-9a-f]{32}$/.test(s.traceId) && /^[0-9a-f]{16}$/.test(s.spanId),
            `${path} record ${n + 1}: span ids not lower-case hex: ${JSON.stringify({ traceId: s.traceId, spanId: s.spanId })}`);
          out.push({ traceId: s.traceId, spanId: s.spanId });
        }
      }
    }
  });
  return out;
}

// Groups the outputs of "owners" (ring endpoints; one owner may have
// several files, e.g. a stopped instance and its successor on the same
// port): {byOwner: Map owner -> Map traceId -> spanId[]}, spanOwners: Map
// spanId -> [owner...] (one entry per copy), duplicates: copies beyond the first.
export function collectOutputs(files) {
  const byOwner = new Map();
  const spanOwners = new Map();
  let duplicates = 0;
  for (const { owner, path } of files) {
    if (!byOwner.has(owner)) byOwner.set(owner, new Map());
    const m = byOwner.get(owner);
    for (const { traceId, spanId } of spansInFile(path)) {
      if (!m.has(traceId)) m.set(traceId, []);
      m.get(traceId).push(spanId);
      if (spanOwners.has(spanId)) { duplicates++; spanOwners.get(spanId).push(owner); } else spanOwners.set(spanId, [owner]);
    }
  }
  return { byOwner, spanOwners, duplicates };
}

// ---- agent metrics ---------------------------------------------------------------------
export async function scrapeSamples(proc) {
  const r = await httpRequest({ port: proc.metricsPort, method: 'GET', path: '/metrics' });
  assert.equal(r.status, 200, `${proc.label}: GET /metrics: ${r.status}`);
  return parseProm(r.body.toString());
}

// Per-endpoint counters of the loadbalancing exporter with id `id`:
// {routed: {ep: n}, sent: {ep: n}, failed: {ep: n}}.
export function lbEndpointCounters(samples, id = 'loadbalancing') {
  const routed = {};
  const sent = {};
  const failed = {};
  for (const s of samples) {
    if (s.name === 'kansatsu_loadbalancer_routed_spans_total' && s.labels.exporter === id) routed[s.labels.endpoint] = s.value;
    const m = s.labels.exporter && s.labels.exporter.startsWith(`${id}/`) ? s.labels.exporter.slice(id.length + 1) : null;
    if (m && s.name === 'kansatsu_exporter_sent_spans_total') sent[m] = s.value;
    if (m && s.name === 'kansatsu_exporter_failed_requests_total') failed[m] = s.value;
  }
  return { routed, sent, failed };
}

export const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
