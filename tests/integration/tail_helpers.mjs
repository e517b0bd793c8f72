// SPDX-License-Identifier: Apache-2.0
// Helpers for tail_sampling.test.mjs that the shared harness does not have:
// - spans with chosen ids, start/end times, status and attributes, encoded
//   into an ExportTraceServiceRequest by the OpenTelemetry JS serializer (the
//   bytes the http/protobuf exporter sends);
// - a flood request factory: one serialized template of K traces x S spans,
//   trace and span ids patched per request, so thousands of distinct
//   requests cost one copy each (no re-encoding);
// - reading the file exporter's OTLP/JSON output into one row per span;
// - a tail_sampling config built on the harness's makeConfig, and the
//   tail_sampling metrics in one object.
// Ownership: everything returned is plain data owned by the caller.
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { makeConfig, readJsonRecords, httpRequest } from './harness.mjs';
import { serializeProto } from './otel.mjs';
import { decodeExportResponse } from './pb.mjs';
import { scrape, metricSum } from './memory_limit_helpers.mjs';

export const MS = 1000000n;                    // nanoseconds per millisecond
export const BASE_NS = 1700000000000000000n;   // an arbitrary fixed epoch for span times
export const PB = { 'content-type': 'application/x-protobuf' };

const STATUS = { UNSET: SpanStatusCode.UNSET, OK: SpanStatusCode.OK, ERROR: SpanStatusCode.ERROR };
const hr = (ns) => [Number(ns / 1000000000n), Number(ns % 1000000000n)];
const resource = resourceFromAttributes({ 'service.name': 'kansatsu-tailit' });
const scope = { name: 'kansatsu-tailit', version: '1' };

// A ReadableSpan-shaped object for the OTLP serializer.
export function span({ traceId, spanId, parentSpanId, name = 'op', startNs = BASE_NS, endNs, status = 'UNSET',
  attributes = {}, kind = SpanKind.INTERNAL }) {
  assert.ok(status in STATUS, `status ${status}`);
  const end = endNs === undefined ? startNs + 10n * MS : endNs;
  return {
    name, kind,
    spanContext: () => ({ traceId, spanId, traceFlags: TraceFlags.SAMPLED }),
    parentSpanContext: parentSpanId ? { traceId, spanId: parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: false } : undefined,
    startTime: hr(startNs), endTime: hr(end), duration: hr(end - startNs), ended: true,
    status: { code: STATUS[status], message: status === 'ERROR' ? 'failed' : undefined },
    attributes, links: [], events: [], resource, instrumentationScope: scope,
    droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0,
  };
}

export const encode = (spans) => serializeProto(spans);

// 16-byte trace id / 8-byte span id as hex from small integers.
const hex = (n, bytes) => BigInt(n).toString(16).padStart(bytes * 2, '0');
export const traceIdOf = (tag, n) => hex(tag, 4) + hex(0, 4) + hex(n, 8);
export const spanIdOf = (n, i) => hex(n, 6) + hex(i + 1, 2);

// POST /v1/traces (protobuf); resolves the response and fails the test unless
// it is a 200 without rejected spans.
export async function postOk(port, spans, what) {
  const res = await httpRequest({ port, headers: PB, body: encode(spans) });
  assert.equal(res.status, 200, `${what}: HTTP ${res.status} ${res.body}`);
  const ps = decodeExportResponse(res.body).partialSuccess;
  assert.ok(!ps || ps.rejectedSpans === 0, `${what}: partial success ${JSON.stringify(ps)}`);
  return res;
}

// ---- flood requests -----------------------------------------------------------------
function offsetsOf(buf, hexStr) {
  const needle = Buffer.from(hexStr, 'hex');
  const offs = [];
  for (let o = buf.indexOf(needle); o >= 0; o = buf.indexOf(needle, o + 1)) offs.push(o);
  return offs;
}

// make(r) -> {body, traces: [{traceId, spanIds, error}]}: request r holds
// tracesPerRequest whole traces of spansPerTrace spans (span 0 the root, the
// others its children, each with a payloadBytes string attribute); trace k
// of request r has id traceIdOf(tag, r * tracesPerRequest + k) and span ids
// spanIdOf(same n, i). errorKs(r) lists the k whose last span has status
// ERROR; one template is serialized per distinct list and then only patched.
export function floodFactory({ tag, tracesPerRequest: K, spansPerTrace: S, payloadBytes, errorKs }) {
  assert.ok(K >= 1 && K <= 200 && S >= 1 && S <= 200, 'flood shape');
  const tTrace = (k) => `f1e2d3c4b5a69788776655443322${hex(k, 2)}`;
  const tSpan = (k, i) => `e9d8c7${hex(k, 1)}${hex(i, 1)}a5a5b4`;
  const templates = new Map(); // error pattern key -> {buf, traceOffs, spanOffs}
  const templateFor = (ks) => {
    const key = ks.join(',');
    if (templates.has(key)) return templates.get(key);
    const spans = [];
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < S; i++) {
        spans.push(span({
          traceId: tTrace(k), spanId: tSpan(k, i), parentSpanId: i === 0 ? undefined : tSpan(k, 0),
          name: `flood-${i}`, startNs: BASE_NS + BigInt(i) * MS, endNs: BASE_NS + BigInt(i + 1) * MS,
          status: i === S - 1 && ks.includes(k) ? 'ERROR' : 'UNSET',
          attributes: { 'flood.index': i, 'flood.payload': 'x'.repeat(payloadBytes) },
        }));
      }
    }
    const buf = encode(spans);
    const traceOffs = [];
    const spanOffs = [];
    for (let k = 0; k < K; k++) {
      const to = offsetsOf(buf, tTrace(k));
      assert.equal(to.length, S, `flood template: occurrences of trace id ${k}`);
      traceOffs.push(to);
      const per = [];
      for (let i = 0; i < S; i++) {
        const so = offsetsOf(buf, tSpan(k, i));
        assert.equal(so.length, i === 0 ? S : 1, `flood template: occurrences of span id ${k}/${i}`);
        per.push(so);
      }
      spanOffs.push(per);
    }
    const tpl = { buf, traceOffs, spanOffs };
    templates.set(key, tpl);
    return tpl;
  };
  return (r) => {
    const ks = errorKs(r);
    const tpl = templateFor(ks);
    const body = Buffer.from(tpl.buf);
    const traces = [];
    for (let k = 0; k < K; k++) {
      const n = r * K + k;
      const traceId = traceIdOf(tag, n);
      const tb = Buffer.from(traceId, 'hex');
      for (const o of tpl.traceOffs[k]) tb.copy(body, o);
      const spanIds = [];
      for (let i = 0; i < S; i++) {
        const sid = spanIdOf(n, i);
        const sb = Buffer.from(sid, 'hex');
        for (const o of tpl.spanOffs[k][i]) sb.copy(body, o);
        spanIds.push(sid);
      }
      traces.push({ traceId, spanIds, error: ks.includes(k) });
    }
    return { body, traces };
  };
}

// ---- file exporter output ----------------------------------------------------------
const anyValue = (v) => {
  if (!v) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  return JSON.stringify(v);
};

// One row per exported span: {traceId, spanId, name, status, attrs: [[key, value]...]}.
export function exportedSpans(path) {
  const rows = [];
  for (const td of readJsonRecords(path)) {
    for (const rs of td.resourceSpans || []) {
      for (const ss of rs.scopeSpans || []) {
        for (const sp of ss.spans || []) {
          rows.push({
            traceId: String(sp.traceId || '').toLowerCase(),
            spanId: String(sp.spanId || '').toLowerCase(),
            name: sp.name,
            status: sp.status && sp.status.code !== undefined ? sp.status.code : 0,
            attrs: (sp.attributes || []).map((a) => [a.key, anyValue(a.value)]),
          });
        }
      }
    }
  }
  return rows;
}

// Map traceId -> array of rows.
export function byTrace(rows) {
  const m = new Map();
  for (const r of rows) {
    if (!m.has(r.traceId)) m.set(r.traceId, []);
    m.get(r.traceId).push(r);
  }
  return m;
}

// ---- config and metrics ---------------------------------------------------------------
// The harness config with processors [tail_sampling, batch] and a file
// exporter (json) at <dir>/out.jsonl.
export function tailConfig(dir, tail, opts = {}) {
  const config = makeConfig(dir, { format: 'json', ...opts });
  config.processors = { tail_sampling: tail, batch: { send_batch_size: 512, timeout: '50ms' } };
  config.service.pipelines.traces.processors = ['tail_sampling', 'batch'];
  return config;
}

// The tail_sampling processor's counters and gauges (processor="tail_sampling").
export function tailMetrics(samples) {
  const p = { processor: 'tail_sampling' };
  const v = (name, extra = {}) => metricSum(samples, name, { ...p, ...extra });
  return {
    tracesSampled: v('kansatsu_tail_traces_total', { decision: 'sampled' }),
    tracesNotSampled: v('kansatsu_tail_traces_total', { decision: 'not_sampled' }),
    spansSampled: v('kansatsu_tail_spans_total', { decision: 'sampled' }),
    spansNotSampled: v('kansatsu_tail_spans_total', { decision: 'not_sampled' }),
    lateSampled: v('kansatsu_tail_late_spans_total', { decision: 'sampled' }),
    lateNotSampled: v('kansatsu_tail_late_spans_total', { decision: 'not_sampled' }),
    earlyMemory: v('kansatsu_tail_traces_decided_early_total', { reason: 'memory' }),
    earlyNumTraces: v('kansatsu_tail_traces_decided_early_total', { reason: 'num_traces' }),
    earlyShutdown: v('kansatsu_tail_traces_decided_early_total', { reason: 'shutdown' }),
    tooLarge: v('kansatsu_tail_traces_too_large_total'),
    lost: v('kansatsu_tail_spans_lost_total'),
    budgetOverrun: v('kansatsu_tail_budget_overrun_spans_total'),
    tracesInMemory: v('kansatsu_tail_traces_in_memory'),
    spansInMemory: v('kansatsu_tail_spans_in_memory'),
    bytesInMemory: v('kansatsu_tail_bytes_in_memory'),
    policy: (policy, decision) => v('kansatsu_tail_policy_decisions_total', { policy, decision }),
  };
}

export async function scrapeTail(col) {
  const { text, samples } = await scrape(col);
  return { text, samples, m: tailMetrics(samples) };
}
