// SPDX-License-Identifier: Apache-2.0
// The OpenTelemetry JS SDK side of the tests: builds providers around the real
// OTLP exporters (gRPC, HTTP/protobuf, HTTP/JSON), emits a fixed set of
// "rich" spans (every attribute type, events, links, status, kinds, remote
// parent with tracestate), and converts both what the SDK saw
// (InMemorySpanExporter) and what kansatsu wrote (OTLP/JSON TracesData lines)
// into one canonical form so they can be compared field by field.
import assert from 'node:assert/strict';
import { trace, context, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, TraceState } from '@opentelemetry/core';
import { resourceFromAttributes, defaultResource } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ProtobufTraceSerializer, JsonTraceSerializer } from '@opentelemetry/otlp-transformer';

export { trace, context, ROOT_CONTEXT, SpanKind, SpanStatusCode, ProtobufTraceSerializer, JsonTraceSerializer };

// transport: 'grpc' | 'http/protobuf' | 'http/json'; compression: 'none' | 'gzip'
export function makeExporter(transport, collector, compression = 'none') {
  const common = { compression, timeoutMillis: 15000 };
  if (transport === 'grpc') return new GrpcExporter({ url: `http://127.0.0.1:${collector.grpcPort}`, ...common });
  const url = `http://127.0.0.1:${collector.httpPort}/v1/traces`;
  if (transport === 'http/protobuf') return new ProtoExporter({ url, ...common });
  if (transport === 'http/json') return new JsonExporter({ url, ...common });
  throw new Error(`unknown transport ${transport}`);
}

// Wraps an exporter and records every ExportResult, so a test can require that
// each export reported success (SimpleSpanProcessor only logs failures).
class RecordingExporter {
  constructor(inner) { this.inner = inner; this.results = []; }
  export(spans, cb) {
    this.inner.export(spans, (r) => { this.results.push({ n: spans.length, ...r }); cb(r); });
  }
  shutdown() { return this.inner.shutdown(); }
  forceFlush() { return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve(); }
}

export const RESOURCE_ATTRS = {
  'service.name': 'kansatsu-it',
  'service.version': '1.4.2-canary',
  'deployment.environment': 'test',
  'host.cpu.count': 2,
  'process.pid.fraction': 0.25,
  'it.flag': true,
  'it.tags': ['a', 'b'],
};

// batch: export through a BatchSpanProcessor (for many spans: the OTLP
// exporters refuse more than 30 concurrent exports, which SimpleSpanProcessor
// would start); forceFlush still waits for every export.
export function makeProvider(exporter, { batch = false } = {}) {
  const memory = new InMemorySpanExporter();
  const recording = new RecordingExporter(exporter);
  const resource = defaultResource().merge(resourceFromAttributes(RESOURCE_ATTRS));
  const toCollector = batch
    ? new BatchSpanProcessor(recording, { maxExportBatchSize: 100, maxQueueSize: 10000, scheduledDelayMillis: 60000 })
    : new SimpleSpanProcessor(recording);
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [toCollector, new SimpleSpanProcessor(memory)],
  });
  return { provider, memory, recording };
}

// forceFlush, then require that every export reported SUCCESS.
export async function flushAndCheck(sdk, label) {
  await sdk.provider.forceFlush();
  const exported = sdk.recording.results.reduce((a, r) => a + r.n, 0);
  const failed = sdk.recording.results.filter((r) => r.code !== ExportResultCode.SUCCESS);
  assert.equal(failed.length, 0,
    `${label}: ${failed.length} export(s) failed: ${failed.map((r) => r.error && r.error.message).join('; ')}`);
  assert.equal(exported, sdk.memory.getFinishedSpans().length, `${label}: exported span count`);
}

const hr = (s, ns) => [s, ns];

// Emits a fixed, varied set of spans; returns how many were ended.
export function emitRichSpans(provider, tag = 'x') {
  const tracer = provider.getTracer('kansatsu-it', '1.2.3');
  const other = provider.getTracer('kansatsu-it-other', '0.0.1-beta+exp.sha.5114f85');
  const base = 1700000000;
  const allTypes = {
    'str': 'plain',
    'str.unicode': 'héllo "quoted" \\ back\nnew\ttab ✓ 日本語 🚀',
    'str.empty': '',
    'bool.true': true,
    'bool.false': false,
    'int.zero': 0,
    'int.pos': 42,
    'int.neg': -7,
    'int.max_safe': Number.MAX_SAFE_INTEGER,
    'int.min_safe': Number.MIN_SAFE_INTEGER,
    'double.pi': 3.141592653589793,
    'double.neg': -0.5,
    'double.tiny': 5e-324,
    'double.precise': 0.30000000000000004,
    'double.small': 6.02214076e-23,
    'double.third': 1 / 3,
    'arr.str': ['a', '', 'ü', 'x y'],
    'arr.bool': [true, false, true],
    'arr.int': [1, -2, 0, 1099511627776],
    'arr.double': [0.1, -2.5, 1e-10],
    'arr.empty': [],
    'it.tag': tag,
  };

  const root = tracer.startSpan('GET /journey/{id}', {
    kind: SpanKind.SERVER, startTime: hr(base, 123456789), attributes: allTypes,
  }, ROOT_CONTEXT);
  const rootCtx = trace.setSpan(ROOT_CONTEXT, root);

  const client = tracer.startSpan('db.query', {
    kind: SpanKind.CLIENT, startTime: hr(base, 200000001), attributes: { 'db.system': 'postgresql', 'db.rows': 3 },
  }, rootCtx);
  client.addEvent('query.start', { 'db.statement': 'SELECT 1', 'retry': 0, 'ratio': 0.75, 'ok': true, 'ids': [1, 2] }, hr(base, 200000002));
  client.addEvent('no-attrs', hr(base, 200000003));
  client.setStatus({ code: SpanStatusCode.ERROR, message: 'deadline exceeded: ünïcode' });
  client.end(hr(base, 299999999));

  const producer = tracer.startSpan('chat publish', {
    kind: SpanKind.PRODUCER, startTime: hr(base, 300000000), attributes: { 'messaging.system': 'kafka' },
  }, rootCtx);
  producer.end(hr(base + 1, 0));

  root.setStatus({ code: SpanStatusCode.OK });
  root.end(hr(base + 2, 999999999));

  // async consumer: a new trace that links back to the producer (and the client)
  const consumer = other.startSpan('chat process', {
    kind: SpanKind.CONSUMER, startTime: hr(base + 3, 1),
    links: [
      { context: producer.spanContext(), attributes: { 'link.kind': 'producer', 'link.n': 1, 'link.d': 2.5, 'link.b': false, 'link.arr': ['p', 'q'] } },
      { context: client.spanContext() },
    ],
  }, ROOT_CONTEXT);
  const consumerCtx = trace.setSpan(ROOT_CONTEXT, consumer);
  const internal = other.startSpan('render push', { kind: SpanKind.INTERNAL, startTime: hr(base + 3, 500) }, consumerCtx);
  internal.addEvent('exception', { 'exception.type': 'Error', 'exception.message': 'boom' }, hr(base + 3, 600));
  internal.setStatus({ code: SpanStatusCode.ERROR });
  internal.end(hr(base + 3, 700));
  consumer.end(hr(base + 4, 0));

  // continues a remote parent carrying a tracestate
  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED, isRemote: true, traceState: new TraceState('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'),
  });
  const cont = tracer.startSpan('continue remote', { kind: SpanKind.SERVER, startTime: hr(base + 5, 5) }, remote);
  cont.end(hr(base + 5, 6));
  return 6;
}

// Many small spans with unique ids; returns the count ended.
export function emitSimpleSpans(provider, n, tag = 's') {
  const tracer = provider.getTracer('kansatsu-it-load', '9.9.9');
  for (let i = 0; i < n; i++) {
    const s = tracer.startSpan(`op-${i}`, { attributes: { 'i': i, 'tag': tag } }, ROOT_CONTEXT);
    s.end();
  }
  return n;
}

// The OTel probabilistic_sampler's hash_seed decision for a trace id (hex):
// FNV-1a-32 over the seed's 4 little-endian bytes and the 16 id bytes, kept
// when its low 14 bits are below floor(pct * 163.84) in float32.
export function otelKeeps(traceIdHex, seed, pct) {
  let h = 0x811c9dc5;
  const step = (b) => { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; };
  for (let i = 0; i < 4; i++) step((seed >>> (8 * i)) & 0xff);
  for (let i = 0; i < 16; i++) step(parseInt(traceIdHex.slice(2 * i, 2 * i + 2), 16));
  const scaled = Math.floor(Math.fround(Math.fround(pct) * Math.fround(163.84)));
  return (h & 0x3fff) < scaled;
}

// ---- canonical form --------------------------------------------------------
const hrToNs = (t) => (BigInt(t[0]) * 1000000000n + BigInt(t[1])).toString();

function sdkValue(v) {
  if (typeof v === 'string') return ['string', v];
  if (typeof v === 'boolean') return ['bool', v];
  if (typeof v === 'number') return Number.isInteger(v) ? ['int', String(v)] : ['double', v];
  if (Array.isArray(v)) return ['array', v.map(sdkValue)];
  throw new Error(`unexpected attribute value ${v}`);
}
const sortAttrs = (list) => list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
const sdkAttrs = (attrs) => sortAttrs(Object.entries(attrs || {}).map(([k, v]) => [k, sdkValue(v)]));
const flagsOf = (sc, parentRemote) => ((sc.traceFlags & 0xff) | 0x100 | (parentRemote ? 0x200 : 0));

export function canonicalFromSdk(spans) {
  return spans.map((s) => {
    const sc = s.spanContext();
    return {
      traceId: sc.traceId,
      spanId: sc.spanId,
      parentSpanId: s.parentSpanContext ? s.parentSpanContext.spanId : '',
      traceState: sc.traceState ? sc.traceState.serialize() : '',
      flags: flagsOf(sc, s.parentSpanContext && s.parentSpanContext.isRemote),
      name: s.name,
      kind: s.kind + 1,
      startTimeUnixNano: hrToNs(s.startTime),
      endTimeUnixNano: hrToNs(s.endTime),
      attributes: sdkAttrs(s.attributes),
      events: s.events.map((e) => ({ name: e.name, timeUnixNano: hrToNs(e.time), attributes: sdkAttrs(e.attributes) })),
      links: s.links.map((l) => ({
        traceId: l.context.traceId, spanId: l.context.spanId,
        traceState: l.context.traceState ? l.context.traceState.serialize() : '',
        flags: flagsOf(l.context, l.context.isRemote),
        attributes: sdkAttrs(l.attributes),
      })),
      status: { code: s.status.code, message: s.status.message || '' },
      resource: sdkAttrs(s.resource.attributes),
      scope: { name: s.instrumentationScope.name, version: s.instrumentationScope.version || '' },
    };
  });
}

// OTLP/JSON (as written by the file exporter) -> the same canonical form.
// Strict where the OTLP/JSON spec is strict: ids are hex, enums integers;
// 64-bit integers may be strings or numbers.
function u64(v, what) {
  if (v === undefined || v === null) return '0';
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v).toString();
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  throw new Error(`${what}: not an integer: ${JSON.stringify(v)}`);
}
function hexId(v, bytes, what) {
  if (v === undefined || v === '') return '';
  if (typeof v !== 'string' || !new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(v)) {
    throw new Error(`${what}: expected ${bytes}-byte hex id, got ${JSON.stringify(v)}`);
  }
  return v.toLowerCase();
}
function enumInt(v, what) {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${what}: enum must be an integer, got ${JSON.stringify(v)}`);
  return v;
}
function jsonValue(v, what) {
  if (!v || typeof v !== 'object') throw new Error(`${what}: AnyValue must be an object, got ${JSON.stringify(v)}`);
  if ('stringValue' in v) return ['string', v.stringValue];
  if ('boolValue' in v) return ['bool', v.boolValue];
  if ('intValue' in v) return ['int', u64(v.intValue, what)];
  if ('doubleValue' in v) {
    const d = v.doubleValue;
    if (typeof d === 'number') return ['double', d];
    if (typeof d === 'string') return ['double', Number(d)];
    throw new Error(`${what}: bad doubleValue ${JSON.stringify(d)}`);
  }
  if ('arrayValue' in v) return ['array', ((v.arrayValue && v.arrayValue.values) || []).map((x, i) => jsonValue(x, `${what}[${i}]`))];
  throw new Error(`${what}: unsupported AnyValue ${JSON.stringify(v)}`);
}
const jsonAttrs = (list, what) => sortAttrs((list || []).map((kv) => [kv.key, jsonValue(kv.value, `${what}.${kv.key}`)]));

export function canonicalFromTracesData(records) {
  const out = [];
  records.forEach((td, ri) => {
    for (const rs of td.resourceSpans || []) {
      const resource = jsonAttrs(rs.resource && rs.resource.attributes, `record ${ri} resource`);
      for (const ss of rs.scopeSpans || []) {
        const scope = { name: (ss.scope && ss.scope.name) || '', version: (ss.scope && ss.scope.version) || '' };
        for (const s of ss.spans || []) {
          const w = `span ${s.name}`;
          out.push({
            traceId: hexId(s.traceId, 16, `${w}.traceId`),
            spanId: hexId(s.spanId, 8, `${w}.spanId`),
            parentSpanId: hexId(s.parentSpanId, 8, `${w}.parentSpanId`),
            traceState: s.traceState || '',
            flags: s.flags === undefined ? 0 : Number(s.flags),
            name: s.name || '',
            kind: enumInt(s.kind, `${w}.kind`),
            startTimeUnixNano: u64(s.startTimeUnixNano, `${w}.startTimeUnixNano`),
            endTimeUnixNano: u64(s.endTimeUnixNano, `${w}.endTimeUnixNano`),
            attributes: jsonAttrs(s.attributes, `${w}.attributes`),
            events: (s.events || []).map((e) => ({
              name: e.name || '', timeUnixNano: u64(e.timeUnixNano, `${w}.event.time`), attributes: jsonAttrs(e.attributes, `${w}.event`),
            })),
            links: (s.links || []).map((l) => ({
              traceId: hexId(l.traceId, 16, `${w}.link.traceId`), spanId: hexId(l.spanId, 8, `${w}.link.spanId`),
              traceState: l.traceState || '', flags: l.flags === undefined ? 0 : Number(l.flags),
              attributes: jsonAttrs(l.attributes, `${w}.link`),
            })),
            status: { code: enumInt(s.status && s.status.code, `${w}.status.code`), message: (s.status && s.status.message) || '' },
            resource,
            scope,
          });
        }
      }
    }
  });
  return out;
}

// Field-by-field comparison of two canonical span lists (matched by span id).
export function assertSameSpans(actual, expected, label) {
  const byId = new Map();
  for (const s of actual) {
    assert.ok(!byId.has(s.spanId), `${label}: span ${s.spanId} (${s.name}) appears more than once in the output`);
    byId.set(s.spanId, s);
  }
  const missing = expected.filter((e) => !byId.has(e.spanId)).map((e) => `${e.spanId} (${e.name})`);
  const expIds = new Set(expected.map((e) => e.spanId));
  const extra = actual.filter((a) => !expIds.has(a.spanId)).map((a) => `${a.spanId} (${a.name})`);
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${label}: span sets differ`);
  for (const e of expected) {
    const a = byId.get(e.spanId);
    for (const field of Object.keys(e)) {
      assert.deepStrictEqual(a[field], e[field], `${label}: span "${e.name}" (${e.spanId}) field ${field} differs`);
    }
  }
}

// ---- raw requests ------------------------------------------------------------
// A ReadableSpan-shaped object for the serializer, with ids chosen by the test
// (a non-16-byte trace id is how bad_input builds a span kansatsu must reject).
const rawResource = resourceFromAttributes({ 'service.name': 'kansatsu-it-raw' });
export function rawSpan({ traceId, spanId, parentSpanId, name = 'raw', startNs = 1700000000000000000n, attributes = {} }) {
  const t = [Number(startNs / 1000000000n), Number(startNs % 1000000000n)];
  return {
    name, kind: SpanKind.INTERNAL,
    spanContext: () => ({ traceId, spanId, traceFlags: TraceFlags.SAMPLED }),
    parentSpanContext: parentSpanId ? { traceId, spanId: parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: false } : undefined,
    startTime: t, endTime: [t[0] + 1, t[1]], duration: [1, 0], ended: true,
    status: { code: SpanStatusCode.UNSET }, attributes, links: [], events: [],
    resource: rawResource, instrumentationScope: { name: 'kansatsu-it-raw', version: '1' },
    droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  };
}

// ExportTraceServiceRequest bytes, as the proto exporter would send them.
export function serializeProto(spans) {
  return Buffer.from(ProtobufTraceSerializer.serializeRequest(spans));
}
export function serializeJson(spans) {
  return Buffer.from(JsonTraceSerializer.serializeRequest(spans));
}
