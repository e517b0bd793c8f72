// SPDX-License-Identifier: Apache-2.0
// Helpers for journey.test.mjs and sli_prometheus.test.mjs that the shared
// harness does not have:
// - collector configs written as JSON (valid YAML) so lists of maps
//   (journey `propagate`, sli `slis`) keep their shape, and a collector
//   started from one;
// - real OpenTelemetry JS SDK "services" (one provider per service.name, its
//   own exporter and connection), recording every export result, with an
//   optional sampler that puts a tracestate on every span;
// - spans with explicit ids, times and status as the http/protobuf exporter
//   encodes them (raw OTLP/HTTP requests);
// - the expected attributes after the journey processor's rewrite, in the
//   canonical form of otel.mjs;
// - a real Prometheus server (/usr/bin/prometheus, Debian package) run as a
//   child on an ephemeral port (found through /proc, never guessed), its
//   HTTP API, and promtool.
// Synchronisation: metrics, API answers and process exit, polled with
// deadlines (pollUntil); nothing waits on a fixed time.
// Ownership: every child process and temp dir is owned by the returned object
// and released by its cleanup (registered on the node:test context).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync, readdirSync, readlinkSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { SpanKind, SpanStatusCode, TraceFlags, SamplingDecision } from '@opentelemetry/api';
import { ExportResultCode, TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { makeTempDir, Collector, READY_TIMEOUT_MS, withTimeout, httpRequest } from './harness.mjs';
import { makeExporter, serializeProto } from './otel.mjs';
import { decodeExportResponse } from './pb.mjs';
import { scrape, metricSum, pollUntil } from './memory_limit_helpers.mjs';

export { SpanKind, SpanStatusCode };
export const MS = 1000000n;
export const hr = (ns) => [Number(ns / 1000000000n), Number(ns % 1000000000n)];
export const nowNs = () => BigInt(Date.now()) * MS;

// The chat journey's latency SLI (head "POST /messages" in api -> push.deliver
// in notifier, 300 ms, objective 99, per head tenant.plan), shared by the
// journey tests in one process and across a fleet.
export const CHAT_SLI = {
  name: 'post_to_push',
  start: { service: 'api', name: 'POST /messages', kind: 'server' },
  end: { service: 'notifier', name: 'push.deliver' },
  threshold: '300ms',
  objective: 99,
  dimensions: [{ name: 'plan', from: 'head', key: 'tenant.plan' }],
};

// ---- collector -----------------------------------------------------------------
// A full config: OTLP receivers on ephemeral ports, the given processors in
// the given order, a file exporter (OTLP/JSON) into dir/out.jsonl.
export function pipelineConfig(dir, processors, order) {
  return {
    receivers: { otlp: { protocols: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } } } },
    processors,
    exporters: { file: { path: join(dir, 'out.jsonl'), format: 'json' } },
    extensions: { health_check: { endpoint: '127.0.0.1:0' } },
    service: {
      extensions: ['health_check'],
      telemetry: { metrics: { address: '127.0.0.1:0' } },
      pipelines: { traces: { receivers: ['otlp'], processors: order, exporters: ['file'] } },
    },
    kansatsu: { shards: 2, memory_limit_mib: 256, shutdown_timeout: '10s' },
  };
}

// Writes config (JSON is YAML) into a fresh temp dir, spawns the binary and
// waits for "kansatsu: ready". makeConfig(dir) -> config.
export async function startJsonCollector(t, label, makeConfig) {
  const dir = makeTempDir(label);
  const config = makeConfig(dir);
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, JSON.stringify(config, null, 1));
  const col = new Collector(`kansatsu[${label}]`, dir, configPath);
  t.after(() => col.cleanup());
  await col.waitForLine(/^kansatsu: ready/m, READY_TIMEOUT_MS);
  return { col, dir, out: join(dir, 'out.jsonl') };
}

// Polls /metrics until pred(samples) holds; returns the samples. On timeout
// the message carries the metric lines whose names start with one of `show`.
export async function waitMetrics(col, pred, ms, what, show = ['kansatsu_journey_', 'kansatsu_sli_', 'kansatsu_exporter_sent']) {
  let last = null;
  try {
    return await pollUntil(async () => {
      last = await scrape(col);
      return pred(last.samples) ? last.samples : null;
    }, ms, what, 50);
  } catch (e) {
    const lines = last ? last.text.split('\n').filter((l) => !l.startsWith('#') && show.some((p) => l.startsWith(p))) : [];
    throw new Error(`${e.message}\n${lines.join('\n')}\n${col.tail(20)}`);
  }
}

export const metric = (samples, name, match = {}) => metricSum(samples, name, match);

// ---- SDK services ----------------------------------------------------------------
class RecordingExporter {
  constructor(inner) { this.inner = inner; this.results = []; }
  export(spans, cb) { this.inner.export(spans, (r) => { this.results.push({ n: spans.length, ...r }); cb(r); }); }
  shutdown() { return this.inner.shutdown(); }
  forceFlush() { return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve(); }
}

// Samples everything and gives every span the tracestate `ts` (the SDK keeps
// a sampler's tracestate on the span context; children inherit it).
class TraceStateSampler {
  constructor(ts) { this.ts = new TraceState(ts); }
  shouldSample() { return { decision: SamplingDecision.RECORD_AND_SAMPLED, traceState: this.ts }; }
  toString() { return `TraceStateSampler(${this.ts.serialize()})`; }
}

// One service: its own resource, its own exporter (transport: grpc |
// http/protobuf | http/json) and so its own connection. Spans are held by a
// BatchSpanProcessor until flush(), so the test decides when (and in which
// order) services export.
export function makeService(collector, { name, version, transport, traceState }) {
  const memory = new InMemorySpanExporter();
  const recording = new RecordingExporter(makeExporter(transport, collector));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': name, 'service.version': version }),
    sampler: traceState ? new TraceStateSampler(traceState) : undefined,
    spanProcessors: [
      new BatchSpanProcessor(recording, { maxExportBatchSize: 200, maxQueueSize: 10000, scheduledDelayMillis: 600000 }),
      new SimpleSpanProcessor(memory),
    ],
  });
  const svc = {
    name, provider, memory, recording,
    tracer: provider.getTracer(`journeyit-${name}`, '1.0.0'),
    // forceFlush; every export must have succeeded and every span gone out.
    async flush(label) {
      await provider.forceFlush();
      const failed = recording.results.filter((r) => r.code !== ExportResultCode.SUCCESS);
      assert.equal(failed.length, 0, `${label}: ${failed.length} export(s) failed: ${failed.map((r) => r.error && r.error.message).join('; ')}`);
      const exported = recording.results.reduce((a, r) => a + r.n, 0);
      assert.equal(exported, memory.getFinishedSpans().length, `${label}: exported span count`);
    },
    shutdown: () => provider.shutdown(),
  };
  return svc;
}

// ---- raw OTLP/HTTP spans ------------------------------------------------------------
const hex = (n, bytes) => BigInt(n).toString(16).padStart(bytes * 2, '0');
export const traceIdOf = (tag, n) => hex(tag, 4) + hex(0, 4) + hex(n, 8);
export const spanIdOf = (n, i) => hex(n, 6) + hex(i + 1, 2);

// A ReadableSpan-shaped object for the OTLP serializer, with the service's
// resource; the request bytes are what the http/protobuf exporter sends.
export function rawSpan({ service, traceId, spanId, name, startNs, endNs, error = false, kind = SpanKind.SERVER, attributes = {} }) {
  return {
    name, kind,
    spanContext: () => ({ traceId, spanId, traceFlags: TraceFlags.SAMPLED }),
    parentSpanContext: undefined,
    startTime: hr(startNs), endTime: hr(endNs), duration: hr(endNs - startNs), ended: true,
    status: error ? { code: SpanStatusCode.ERROR, message: 'failed' } : { code: SpanStatusCode.UNSET },
    attributes, links: [], events: [],
    resource: resourceFromAttributes({ 'service.name': service }),
    instrumentationScope: { name: 'journeyit-raw', version: '1' },
    droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  };
}

// POST /v1/traces (protobuf); fails unless 200 without rejected spans.
export async function postSpans(port, spans, what) {
  const res = await httpRequest({ port, headers: { 'content-type': 'application/x-protobuf' }, body: serializeProto(spans) });
  assert.equal(res.status, 200, `${what}: HTTP ${res.status} ${res.body}`);
  const ps = decodeExportResponse(res.body).partialSuccess;
  assert.ok(!ps || ps.rejectedSpans === 0, `${what}: partial success ${JSON.stringify(ps)}`);
}

// ---- expected rewrite ------------------------------------------------------------------
// Canonical attribute value (otel.mjs's canonical form) of an SDK value.
export function canonValue(v) {
  if (typeof v === 'string') return ['string', v];
  if (typeof v === 'boolean') return ['bool', v];
  if (typeof v === 'number') return Number.isInteger(v) ? ['int', String(v)] : ['double', v];
  if (Array.isArray(v)) return ['array', v.map(canonValue)];
  throw new Error(`unexpected attribute value ${v}`);
}

// The journey processor's documented rewrite (overwrite: false): the span's
// own attributes, plus each propagated [key, value] it does not have yet,
// plus the journey id attribute (replacing any own one). Sorted by key.
export function rewrittenAttrs(own, propagated, journeyIdKey, journeyId) {
  const out = own.filter(([k]) => k !== journeyIdKey);
  const have = new Set(out.map(([k]) => k));
  for (const [k, v] of propagated) if (!have.has(k)) { out.push([k, canonValue(v)]); have.add(k); }
  out.push([journeyIdKey, ['string', journeyId]]);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

// ---- Prometheus ---------------------------------------------------------------------------
export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

// TCP sockets a live process listens on (IPv4 and IPv6), from its socket
// inodes in /proc/<pid>/fd and the LISTEN rows (state 0A) of /proc/net/tcp*:
// [{ family: 4 | 6, addr: the kernel's hex of the local address, port }].
export function listeningSockets(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let l;
    try { l = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    const m = l.match(/^socket:\[(\d+)\]$/);
    if (m) inodes.add(m[1]);
  }
  const out = [];
  for (const [f, family] of [['/proc/net/tcp', 4], ['/proc/net/tcp6', 6]]) {
    if (!existsSync(f)) continue;
    for (const row of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const c = row.trim().split(/\s+/);
      if (c.length < 10 || c[3] !== '0A' || !inodes.has(c[9])) continue;
      const [addr, port] = c[1].split(':');
      out.push({ family, addr, port: parseInt(port, 16) });
    }
  }
  return out;
}

export const listeningPorts = (pid) => listeningSockets(pid).map((s) => s.port);

// GET on Prometheus's HTTP API; resolves the parsed JSON `data`.
export async function promApi(port, path) {
  const r = await httpRequest({ port, method: 'GET', path, timeoutMs: 10000 });
  assert.equal(r.status, 200, `GET ${path}: HTTP ${r.status} ${r.body.toString().slice(0, 300)}`);
  const j = JSON.parse(r.body.toString());
  assert.equal(j.status, 'success', `GET ${path}: ${r.body.toString().slice(0, 300)}`);
  return j.data;
}

export const promQuery = (port, q) => promApi(port, `/api/v1/query?query=${encodeURIComponent(q)}`);

// Starts Prometheus scraping `target` (host:port, or a list of them) every second with the
// rule files given, evaluating every second; resolves once /-/ready is 200.
// The TSDB and config live in a fresh temp dir removed at cleanup.
export async function startPrometheus(t, target, ruleFiles, label = 'prom') {
  assert.ok(existsSync(PROMETHEUS), `${PROMETHEUS} missing: install the Debian package prometheus (deploy/dev.sh test does)`);
  const dir = makeTempDir(label);
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: ruleFiles,
    scrape_configs: [{ job_name: 'kansatsu', static_configs: [{ targets: [].concat(target) }] }],
  };
  const configPath = join(dir, 'prometheus.yml');
  writeFileSync(configPath, JSON.stringify(config, null, 1));
  const proc = spawn(PROMETHEUS, [
    `--config.file=${configPath}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    '--web.listen-address=127.0.0.1:0', '--web.enable-lifecycle', '--log.level=info',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { dir, proc, out: '', exit: null, port: 0 };
  p.tail = (n = 30) => `--- prometheus output (last ${n} lines) ---\n${p.out.split('\n').slice(-n).join('\n')}`;
  p.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => { p.exit = { code, signal }; resolve(p.exit); });
    proc.on('error', (err) => { p.exit = { error: err.message }; resolve(p.exit); });
  });
  for (const s of [proc.stdout, proc.stderr]) { s.setEncoding('utf8'); s.on('data', (d) => { p.out += d; }); }
  p.stop = async () => {
    if (!p.exit) proc.kill('SIGTERM');
    await withTimeout(p.exited, 30000, 'prometheus to exit after SIGTERM').catch((e) => {
      proc.kill('SIGKILL');
      throw new Error(`${e.message}\n${p.tail()}`);
    });
  };
  t.after(async () => {
    if (!p.exit) { proc.kill('SIGKILL'); await p.exited; }
    if (!process.env.KANSATSU_IT_KEEP) rmSync(dir, { recursive: true, force: true });
  });
  const fail = (e) => { throw new Error(`${e.message}\n${p.tail()}`); };
  // the web listener appears once the TSDB is open; then wait for /-/ready
  p.port = await pollUntil(() => {
    if (p.exit) throw new Error(`prometheus exited: ${JSON.stringify(p.exit)}`);
    const ports = listeningPorts(proc.pid);
    return ports.length === 1 ? ports[0] : null;
  }, 30000, 'prometheus to listen', 50).catch(fail);
  await pollUntil(async () => {
    if (p.exit) throw new Error(`prometheus exited: ${JSON.stringify(p.exit)}`);
    const r = await httpRequest({ port: p.port, method: 'GET', path: '/-/ready', timeoutMs: 5000 }).catch(() => null);
    return r && r.status === 200;
  }, 30000, 'prometheus /-/ready', 50).catch(fail);
  return p;
}

// promtool <args> [stdin]; {code, out}.
export function promtool(args, input) {
  assert.ok(existsSync(PROMTOOL), `${PROMTOOL} missing: install the Debian package prometheus`);
  const r = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 30000 });
  return { code: r.status, out: `${r.stdout || ''}${r.stderr || ''}`, error: r.error };
}

// GET /metrics with the plain Prometheus text Accept header (no OpenMetrics).
export async function scrapeText(col) {
  const r = await httpRequest({ port: col.metricsPort, method: 'GET', path: '/metrics', headers: { accept: 'text/plain; version=0.0.4' } });
  assert.equal(r.status, 200, `GET /metrics: ${r.status}`);
  return { text: r.body.toString(), contentType: r.headers['content-type'] };
}

