// SPDX-License-Identifier: Apache-2.0
// Helpers for memory_limit.test.mjs that the shared harness does not have:
// - a switchable OTLP/HTTP sink: "refuse" answers 503 (no Retry-After, so the
//   exporter keeps its own short backoff) to every request, "hold" leaves
//   requests unanswered, "accept" answers 200 and records the span ids of
//   each request (gunzipped when needed); switching to "accept" accepts the
//   held requests too. Waiting is on sink events (a promise per condition);
// - a request factory: one serialized template of N spans, trace and span ids
//   patched per request so every request carries distinct ids;
// - Prometheus text parsing, the process RSS from /proc, and a bounded poll.
// Ownership: the sink owns its server; close() ends it and its connections.
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { withTimeout, httpGet } from './harness.mjs';
import { rawSpan, serializeProto } from './otel.mjs';
import { spanIdsOfTracesData } from './pb.mjs';

// ---- switchable sink -----------------------------------------------------------
export async function startSwitchableSink(mode = 'refuse') {
  const sink = {
    mode,
    refused: 0,          // requests answered 503
    held: [],            // unanswered requests in "hold" mode: {body, headers, res}
    heldTotal: 0,
    accepted: 0,         // requests answered 200
    errors: [],          // requests the sink could not read (answered 400)
    paths: new Set(),
    counts: new Map(),   // span id -> times received in an accepted request
    _waiters: [],
  };
  const check = () => {
    sink._waiters = sink._waiters.filter((w) => {
      if (w.pred()) { w.resolve(); return false; }
      return true;
    });
  };
  const accept = (body, headers, res) => {
    let ids;
    try {
      if (headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      ids = spanIdsOfTracesData(body);
    } catch (e) {
      sink.errors.push(`request body: ${e.message}`);
      res.writeHead(400, { 'content-length': 0 });
      res.end();
      return;
    }
    sink.accepted++;
    for (const id of ids) sink.counts.set(id, (sink.counts.get(id) || 0) + 1);
    res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
    res.end();
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      sink.paths.add(req.url);
      const body = Buffer.concat(chunks);
      if (sink.mode === 'refuse') {
        sink.refused++;
        res.writeHead(503, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
        res.end();
      } else if (sink.mode === 'hold') {
        sink.held.push({ body, headers: req.headers, res });
        sink.heldTotal++;
      } else {
        accept(body, req.headers, res);
      }
      check();
    });
  });
  // "accept" also accepts (and records) every request held so far.
  sink.setMode = (m) => {
    assert.ok(['refuse', 'hold', 'accept'].includes(m), `sink mode ${m}`);
    sink.mode = m;
    if (m === 'accept') for (const h of sink.held.splice(0)) accept(h.body, h.headers, h.res);
    check();
  };
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  sink.port = server.address().port;
  // Resolves once pred() holds (checked after every request the sink answers).
  sink.waitFor = (pred, ms, what) => {
    const p = pred() ? Promise.resolve() : new Promise((resolve) => sink._waiters.push({ pred, resolve }));
    return withTimeout(p, ms, what);
  };
  sink.hasAll = (ids) => { for (const id of ids) if (!sink.counts.has(id)) return false; return true; };
  sink.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return sink;
}

// ---- requests with distinct ids ----------------------------------------------------
const TEMPLATE_TRACE = 'f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff';
const templateSpanId = (i) => `c3a5c3a5c3a5c3${i.toString(16).padStart(2, '0')}`;

function offsetsOf(buf, hex) {
  const needle = Buffer.from(hex, 'hex');
  const offs = [];
  for (let o = buf.indexOf(needle); o >= 0; o = buf.indexOf(needle, o + 1)) offs.push(o);
  return offs;
}

// Returns make(r) -> {body, spanIds[]}: request r has trace id
// 6d656d62..<r+1> and span ids <r+1>:<i>:b0d9, all distinct across requests.
export function requestFactory(spansPerRequest, payloadBytes) {
  assert.ok(spansPerRequest >= 1 && spansPerRequest <= 255, 'spansPerRequest in [1, 255]');
  const spans = [];
  for (let i = 0; i < spansPerRequest; i++) {
    spans.push(rawSpan({
      traceId: TEMPLATE_TRACE, spanId: templateSpanId(i), parentSpanId: i === 0 ? undefined : templateSpanId(0),
      name: `budget-${i}`, attributes: { 'budget.index': i, 'budget.payload': 'p'.repeat(payloadBytes) },
    }));
  }
  const template = serializeProto(spans);
  const traceOffs = offsetsOf(template, TEMPLATE_TRACE);
  assert.equal(traceOffs.length, spansPerRequest, 'template: one trace id per span');
  const spanOffs = [];
  for (let i = 0; i < spansPerRequest; i++) {
    const offs = offsetsOf(template, templateSpanId(i));
    assert.equal(offs.length, i === 0 ? spansPerRequest : 1, `template: occurrences of span id ${i}`);
    spanOffs.push(offs);
  }
  return (r) => {
    const body = Buffer.from(template);
    const traceId = Buffer.alloc(16);
    traceId.writeUInt32BE(0x6d656d62, 0);
    traceId.writeUInt32BE(r + 1, 12);
    for (const o of traceOffs) traceId.copy(body, o);
    const ids = [];
    for (let i = 0; i < spansPerRequest; i++) {
      const sid = Buffer.alloc(8);
      sid.writeUInt32BE(r + 1, 0);
      sid.writeUInt16BE(i, 4);
      sid.writeUInt16BE(0xb0d9, 6);
      for (const o of spanOffs[i]) sid.copy(body, o);
      ids.push(sid.toString('hex'));
    }
    return { body, spanIds: ids };
  };
}

// ---- metrics ---------------------------------------------------------------------
// Prometheus text -> [{name, labels, value}]
export function parseProm(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/);
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// Sum of the samples of `name` whose labels include `match`; null when the
// metric has no such sample at all (so "missing" differs from "0").
export function metricSum(samples, name, match = {}) {
  const hits = samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
  return hits.length ? hits.reduce((a, s) => a + s.value, 0) : null;
}

export async function scrape(col) {
  const r = await httpGet(col.metricsPort, '/metrics');
  assert.equal(r.status, 200, `GET /metrics: ${r.status}`);
  const text = r.body.toString();
  return { text, samples: parseProm(text) };
}

// ---- process ---------------------------------------------------------------------
// VmRSS of a live process in bytes (throws when the process is gone).
export function rssBytes(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB$/m);
  assert.ok(m, `/proc/${pid}/status has no VmRSS line`);
  return Number(m[1]) * 1024;
}

// Calls fn() until it returns a truthy value, pausing `everyMs` between
// calls; fails after `ms` with what + the last value. A poll of a real
// condition with a deadline, not a sleep standing in for one.
export async function pollUntil(fn, ms, what, everyMs = 25) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() >= end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const pause = (ms) => new Promise((r) => setTimeout(r, ms));
