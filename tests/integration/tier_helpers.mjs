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
// - a tail workload of the same shape whose tail_sampling evidence (an
//   ERROR span, the late end that makes a trace slow, the span count) is
//   never in a trace's first request, the decisions the TAIL_WHOLE policies
//   should make computed from it (decideWhole), and readers of the kept
//   traces for comparing a tier with a single instance;
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
import { span as timedSpan, MS, BASE_NS, exportedSpans } from './tail_helpers.mjs';

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

// Whole-trace policies: each looks at evidence that the workload of
// makeTailWorkload puts in a later request than a trace's first spans, so
// only an instance holding the whole trace decides as the workload says
// (decideWhole). decision_wait is far longer than sending the workload
// takes, so every part of a trace is in before its decision; the test
// checks that no span arrived late rather than trusting this.
export const TAIL_THRESHOLD_MS = 500n;  // latency policy, earliest start -> latest end
export const TAIL_MIN_SPANS = 10;       // span_count policy
export const TAIL_WHOLE = {
  decision_wait: '15s',
  policy_attribute: 'sampling.policy',
  policies: [
    { name: 'errors', type: 'status_code', status_code: { status_codes: ['ERROR'] } },
    { name: 'slow', type: 'latency', latency: { threshold_ms: Number(TAIL_THRESHOLD_MS) } },
    { name: 'big', type: 'span_count', span_count: { min_spans: TAIL_MIN_SPANS } },
  ],
};

// A sampling instance: OTLP/gRPC on host:port (port 0 = ephemeral), and
// OTLP/HTTP on host:0 when `http` (so makeSender can drive it directly) ->
// [tail_sampling] -> batch -> file (json). tailSampling: false, true
// (TAIL_SAMPLING) or a tail_sampling block. The returned process carries
// outPath and endpoint ("host:port" of gRPC).
export async function startInstance(t, { label, host = '127.0.0.1', port = 0, tailSampling = false, http: withHttp = false }) {
  const dir = makeTempDir('tier-inst');
  const outPath = join(dir, 'out.jsonl');
  const exporters = { file: { path: outPath, format: 'json' } };
  const processors = { batch: { send_batch_size: 512, timeout: '100ms' } };
  if (tailSampling) processors.tail_sampling = tailSampling === true ? TAIL_SAMPLING : tailSampling;
  const protocols = { grpc: { endpoint: `${host}:${port}` } };
  if (withHttp) protocols.http = { endpoint: `${host}:0` };
  const config = {
    receivers: { otlp: { protocols } },
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
export function tailSamplingUnavailable(tailSampling = TAIL_SAMPLING) {
  checkBin();
  const dir = makeTempDir('tier-validate');
  try {
    const exporters = { file: { path: join(dir, 'out.jsonl'), format: 'json' } };
    const config = {
      receivers: { otlp: { protocols: { grpc: { endpoint: '127.0.0.1:0' } } } },
      processors: { tail_sampling: tailSampling, batch: {} },
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
  const requests = packRequests(partsOf, rnd, partsPerRequest);
  return { traces, requests, totalSpans: seen.size };
}

// ---- tail workload -----------------------------------------------------------------
// What TAIL_WHOLE decides for a set of spans [{startNs, endNs, status}],
// computed the way the policies are documented: status_code matches any
// ERROR span; latency is (latest end - earliest start) in whole milliseconds,
// truncated, >= TAIL_THRESHOLD_MS; span_count is the number of spans >=
// TAIL_MIN_SPANS. Returns {matches: [policy names], policy: the first or null}.
export function decideWhole(spans) {
  const matches = [];
  if (spans.some((s) => s.status === 'ERROR')) matches.push('errors');
  if (spans.length) {
    let mn = spans[0].startNs;
    let mx = spans[0].endNs;
    for (const s of spans) {
      if (s.startNs < mn) mn = s.startNs;
      if (s.endNs > mx) mx = s.endNs;
    }
    if ((mx - mn) / MS >= TAIL_THRESHOLD_MS) matches.push('slow');
  }
  if (spans.length >= TAIL_MIN_SPANS) matches.push('big');
  return { matches, policy: matches.length ? matches[0] : null };
}

// Kinds of trace in makeTailWorkload and the policy that keeps each (null: none).
const TAIL_KINDS = ['plain', 'error', 'slow', 'near', 'big', 'plain'];
const TAIL_KIND_POLICY = { plain: null, near: null, error: 'errors', slow: 'slow', big: 'big' };

// nTraces traces split into 3-5 parts each, packed like makeWorkload's, whose
// deciding evidence is never in the first part (so never in the request
// holding a trace's first spans):
//  - plain: 6-9 short spans within 60 ms of the trace's start, no ERROR;
//  - error: like plain, plus one ERROR span sent in the last part only;
//  - slow:  6-9 spans; the root and the other early spans (within 60 ms)
//           in the parts before the last, 1-2 short late spans ending
//           500 ms (exactly, every third) to 900 ms after the root's start
//           alone in the last part: no part alone lasts 500 ms;
//  - near:  like slow but ending 300-499.999999 ms after the start (kept by
//           no policy; every third one at 499.999999 ms, which truncates to
//           499);
//  - big:   10-14 short spans, at most 5 in any part.
// Every kept trace matches exactly one policy (so the sampling.policy
// attribute is known), and no first part alone would be kept: checked here.
// Returns makeWorkload's {traces, requests, totalSpans} plus info: Map
// traceId -> {kind, policy, partPolicies, spans: [{spanId, startNs, endNs, status}]}.
export function makeTailWorkload({ label, nTraces, seed = 1, partsPerRequest = 6 }) {
  const rnd = prng(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const traces = new Map();
  const info = new Map();
  const partsOf = [];
  let totalSpans = 0;
  const perKind = {};
  for (let i = 0; i < nTraces; i++) {
    const traceId = hexOf(`${label}/${seed}/tail-trace/${i}`, 32);
    const kind = TAIL_KINDS[i % TAIL_KINDS.length];
    const nth = perKind[kind] = (perKind[kind] || 0) + 1;
    const nSpans = kind === 'big' ? int(TAIL_MIN_SPANS, TAIL_MIN_SPANS + 4) : int(6, TAIL_MIN_SPANS - 1);
    const nParts = int(3, 5);
    const t0 = BASE_NS + BigInt(i) * 10000n * MS;
    const descs = [];
    for (let j = 0; j < nSpans; j++) {
      const startNs = t0 + BigInt(j * 5) * MS;
      descs.push({
        j, spanId: hexOf(`${label}/${seed}/tail-span/${i}/${j}`, 16),
        startNs, endNs: startNs + 10n * MS, status: j % 3 === 1 ? 'OK' : 'UNSET',
      });
    }
    // evidence: spans other than the root, sent in the last part
    const evidence = [];
    if (kind === 'error') {
      const e = descs[int(1, nSpans - 1)];
      e.status = 'ERROR';
      evidence.push(e);
    } else if (kind === 'slow' || kind === 'near') {
      let endNs;
      if (kind === 'slow') endNs = t0 + (nth % 3 === 0 ? TAIL_THRESHOLD_MS : BigInt(int(501, 900))) * MS;
      else endNs = t0 + (nth % 3 === 0 ? TAIL_THRESHOLD_MS * MS - 1n : BigInt(int(300, 499)) * MS);
      const nLate = int(1, 2);
      for (let k = 0; k < nLate; k++) {
        const d = descs[nSpans - 1 - k];
        d.endNs = endNs - BigInt(k * 15) * MS;
        d.startNs = d.endNs - 10n * MS;
        evidence.push(d);
      }
    }
    const rest = descs.filter((d) => !evidence.includes(d));
    for (let k = rest.length - 1; k > 0; k--) {
      const m = int(0, k);
      [rest[k], rest[m]] = [rest[m], rest[k]];
    }
    const parts = Array.from({ length: nParts }, () => []);
    const spread = kind === 'slow' || kind === 'near' ? nParts - 1 : nParts; // the late spans' part holds nothing else
    rest.forEach((d, k) => parts[k % spread].push(d));
    parts[nParts - 1].push(...evidence);

    const whole = decideWhole(descs);
    const partPolicies = parts.map((p) => decideWhole(p).policy);
    assert.ok(parts.every((p) => p.length > 0), `tail workload: trace ${i} (${kind}) has an empty part`);
    assert.equal(whole.policy, TAIL_KIND_POLICY[kind], `tail workload: trace ${i} (${kind}) decided ${JSON.stringify(whole)}`);
    assert.ok(whole.matches.length <= 1, `tail workload: trace ${i} (${kind}) matches ${whole.matches}`);
    assert.equal(partPolicies[0], null, `tail workload: trace ${i} (${kind}): its first part alone would be kept`);
    if (kind !== 'error') assert.ok(partPolicies.every((p) => p === null), `tail workload: trace ${i} (${kind}): a part alone would be kept: ${partPolicies}`);

    const root = descs[0].spanId;
    const mk = (d) => timedSpan({
      traceId, spanId: d.spanId, parentSpanId: d.j === 0 ? undefined : root, name: `${label}-t${i}-s${d.j}`,
      startNs: d.startNs, endNs: d.endNs, status: d.status,
      attributes: { 'tier.trace': i, 'tier.span': d.j, 'tier.run': label, 'tier.kind': kind },
    });
    partsOf.push(parts.map((p) => ({ traceId, spans: p.map(mk) })));
    traces.set(traceId, descs.map((d) => d.spanId));
    info.set(traceId, { kind, policy: whole.policy, partPolicies, spans: descs });
    totalSpans += nSpans;
  }
  const requests = packRequests(partsOf, rnd, partsPerRequest);
  return { traces, requests, totalSpans, info };
}

// The kept traces of a set of file exporter outputs, as a Map traceId ->
// sorted ["<spanId> <sampling.policy>"], plus where each trace was found and
// the spans written more than once: {kept, ownersOf: Map traceId -> Set
// owner, duplicates}. files: [{owner, path}].
export function keptTraces(files) {
  const kept = new Map();
  const ownersOf = new Map();
  const seen = new Set();
  let duplicates = 0;
  for (const { owner, path } of files) {
    for (const r of exportedSpans(path)) {
      if (seen.has(r.spanId)) duplicates++;
      seen.add(r.spanId);
      const pol = r.attrs.filter(([k]) => k === 'sampling.policy').map(([, v]) => v).join('+') || '(none)';
      if (!kept.has(r.traceId)) { kept.set(r.traceId, []); ownersOf.set(r.traceId, new Set()); }
      kept.get(r.traceId).push(`${r.spanId} ${pol}`);
      ownersOf.get(r.traceId).add(owner);
    }
  }
  for (const l of kept.values()) l.sort();
  return { kept, ownersOf, duplicates };
}

// The differences between two Maps traceId -> sorted span list, named a and b:
// ["<trace>: only in a", "<trace>: only in b", "<trace>: spans differ ..."].
export function diffTraceSets(a, b, nameA, nameB) {
  const out = [];
  for (const [id, l] of a) {
    if (!b.has(id)) out.push(`${id}: only in ${nameA}`);
    else if (l.join() !== b.get(id).join()) out.push(`${id}: spans differ, ${nameA} ${JSON.stringify(l)} vs ${nameB} ${JSON.stringify(b.get(id))}`);
  }
  for (const id of b.keys()) if (!a.has(id)) out.push(`${id}: only in ${nameB}`);
  return out;
}

// Orders the parts round by round (first parts of all traces, shuffled with
// rnd, then second parts, ...) and packs them `partsPerRequest` to a
// request, never two parts of one trace in one request; transports rotate.
// partsOf: per trace, [{traceId, spans: [span]}] (at most 5 parts).
function packRequests(partsOf, rnd, partsPerRequest) {
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
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
  return requests;
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
