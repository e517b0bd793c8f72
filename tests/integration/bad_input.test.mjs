// SPDX-License-Identifier: Apache-2.0
// (c) Bad input against one running collector: every malformed or refused
// request gets the status the OTLP spec gives, a span with an 8-byte trace id
// is rejected alone (partial success), and afterwards a normal SDK export to
// the same collector still succeeds; the file holds exactly the accepted spans.
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startCollector, makeTempDir, makeConfig, readJsonRecords, httpRequest } from './harness.mjs';
import { makeExporter, makeProvider, flushAndCheck, emitRichSpans, canonicalFromSdk, canonicalFromTracesData, assertSameSpans, rawSpan, serializeProto, serializeJson } from './otel.mjs';
import { decodeStatus, decodeExportResponse } from './pb.mjs';
import { grpcExport, grpcRawExport, GrpcStatus } from './sinks.mjs';
import { readFileSync } from 'node:fs';
import { scrape, metricSum, pollUntil } from './memory_limit_helpers.mjs';

const LIMIT = 1048576; // receivers.otlp.protocols.http.max_request_body_size
const PB = { 'content-type': 'application/x-protobuf' };
const JSONCT = { 'content-type': 'application/json' };
const TRACE = '7bf92f3577b34da6a3ce929d0e0e4736';

function validBody(prefix) {
  return serializeProto([1, 2, 3].map((i) => rawSpan({ traceId: TRACE, spanId: `${prefix}0000000000000${i}`, name: `ok-${prefix}-${i}` })));
}

test('bad input is refused precisely and does not disturb the collector', async (t) => {
  const dir = makeTempDir('bad');
  const out = join(dir, 'out.jsonl');
  const col = await startCollector(t, makeConfig(dir, {
    http: { max_request_body_size: LIMIT },
    exporters: { file: { path: out, format: 'json' } },
  }), 'kansatsu[bad_input]', dir);
  const port = col.httpPort;
  const accepted = new Set(); // raw span ids that must come out
  const ctx = (r) => `status ${r.status} body ${JSON.stringify(r.body.toString('latin1').slice(0, 300))}\n${col.tail(15)}`;

  await t.test('malformed protobuf -> 400 + google.rpc.Status with a message', async () => {
    const r = await httpRequest({ port, headers: PB, body: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]) });
    assert.equal(r.status, 400, ctx(r));
    const st = decodeStatus(r.body);
    assert.ok(st.message.length > 0, `google.rpc.Status.message is empty: ${ctx(r)}`);
  });

  await t.test('malformed JSON -> 400', async () => {
    const r = await httpRequest({ port, headers: JSONCT, body: '{"resourceSpans": [ {"scopeSpans": [' });
    assert.equal(r.status, 400, ctx(r));
    const st = JSON.parse(r.body.toString()); // a JSON google.rpc.Status
    assert.ok(typeof st.message === 'string' && st.message.length > 0, `Status.message: ${ctx(r)}`);
  });

  await t.test('wrong content type -> 415', async () => {
    const r = await httpRequest({ port, headers: { 'content-type': 'text/plain' }, body: validBody('a0') });
    assert.equal(r.status, 415, ctx(r));
  });

  await t.test('unknown Content-Encoding -> 415', async () => {
    const r = await httpRequest({ port, headers: { ...PB, 'content-encoding': 'br' }, body: validBody('a1') });
    assert.equal(r.status, 415, ctx(r));
  });

  await t.test('unknown path -> 404', async () => {
    const r = await httpRequest({ port, path: '/v1/nope', headers: PB, body: validBody('a2') });
    assert.equal(r.status, 404, ctx(r));
  });

  await t.test('GET /v1/traces -> 405', async () => {
    const r = await httpRequest({ port, method: 'GET' });
    assert.equal(r.status, 405, ctx(r));
  });

  await t.test('body over max_request_body_size -> 413', async () => {
    const r = await httpRequest({ port, headers: PB, body: Buffer.alloc(LIMIT + 65536, 0x41) });
    assert.equal(r.status, 413, ctx(r));
  });

  await t.test('gzip bomb (100 MiB of zeros) -> 413', async () => {
    const bomb = gzipSync(Buffer.alloc(100 * 1024 * 1024), { level: 9 });
    assert.ok(bomb.length < LIMIT, 'the compressed bomb itself is under the limit');
    const r = await httpRequest({ port, headers: { ...PB, 'content-encoding': 'gzip' }, body: bomb });
    assert.equal(r.status, 413, ctx(r));
  });

  await t.test('8-byte trace id among valid spans (protobuf) -> 200, rejectedSpans 1', async () => {
    const spans = [
      rawSpan({ traceId: TRACE, spanId: 'b100000000000001', name: 'pb-valid-1' }),
      rawSpan({ traceId: '0102030405060708', spanId: 'b100000000000002', name: 'pb-short-trace-id' }),
      rawSpan({ traceId: TRACE, spanId: 'b100000000000003', name: 'pb-valid-2' }),
      rawSpan({ traceId: TRACE, spanId: 'b100000000000004', name: 'pb-valid-3' }),
    ];
    const r = await httpRequest({ port, headers: PB, body: serializeProto(spans) });
    assert.equal(r.status, 200, ctx(r));
    const resp = decodeExportResponse(r.body);
    assert.ok(resp.partialSuccess, `no partial_success in response: ${ctx(r)}`);
    assert.equal(resp.partialSuccess.rejectedSpans, 1, ctx(r));
    ['b100000000000001', 'b100000000000003', 'b100000000000004'].forEach((id) => accepted.add(id));
  });

  await t.test('8-byte trace id among valid spans (JSON) -> 200, partialSuccess.rejectedSpans 1', async () => {
    const spans = [
      rawSpan({ traceId: TRACE, spanId: 'c100000000000001', name: 'json-valid-1' }),
      rawSpan({ traceId: TRACE, spanId: 'c100000000000002', name: 'json-valid-2' }),
      rawSpan({ traceId: '0102030405060708', spanId: 'c100000000000003', name: 'json-short-trace-id' }),
    ];
    const r = await httpRequest({ port, headers: JSONCT, body: serializeJson(spans) });
    assert.equal(r.status, 200, ctx(r));
    const resp = JSON.parse(r.body.toString());
    assert.ok(resp.partialSuccess, `no partialSuccess: ${ctx(r)}`);
    assert.equal(Number(resp.partialSuccess.rejectedSpans), 1, ctx(r));
    ['c100000000000001', 'c100000000000002'].forEach((id) => accepted.add(id));
  });

  await t.test('gRPC: undecodable message -> INVALID_ARGUMENT', async () => {
    const r = await grpcExport(col.grpcPort, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    assert.equal(r.code, GrpcStatus.INVALID_ARGUMENT, `grpc status ${r.code} ${r.details}\n${col.tail(15)}`);
  });

  await t.test('gRPC: message over max_recv_msg_size_mib (4) -> RESOURCE_EXHAUSTED', async () => {
    const r = await grpcExport(col.grpcPort, Buffer.alloc(5 * 1024 * 1024, 0x41));
    assert.equal(r.code, GrpcStatus.RESOURCE_EXHAUSTED, `grpc status ${r.code} ${r.details}\n${col.tail(15)}`);
    // counted once (libgrpc answers the client; the receiver counts right after)
    const match = { transport: 'grpc', reason: 'too_large' };
    await pollUntil(async () => metricSum((await scrape(col)).samples,
      'kansatsu_receiver_refused_requests_total', match) === 1, 20000,
    'kansatsu_receiver_refused_requests_total{transport="grpc",reason="too_large"} == 1', 50);
  });

  // libgrpc 1.51 would inflate a whole gzip message before checking its size;
  // the receiver inflates it itself, stopping at max_recv_msg_size_mib
  const peakKiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${col.proc.pid}/status`, 'utf8'))[1]);
  await t.test('gRPC: gzip bomb (256 MiB of zeros) -> RESOURCE_EXHAUSTED, memory untouched', async () => {
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024), { level: 9 });
    const before = peakKiB();
    const r = await grpcRawExport(col.grpcPort, bomb, 'gzip');
    assert.equal(r.code, GrpcStatus.RESOURCE_EXHAUSTED, `grpc status ${r.code} ${r.details}\n${col.tail(15)}`);
    assert.match(r.details, /max_recv_msg_size_mib/);
    const grown = peakKiB() - before;
    assert.ok(grown < 64 * 1024, `peak RSS grew by ${grown} KiB for a ${bomb.length}-byte bomb`);
    const match = { transport: 'grpc', reason: 'too_large' };
    await pollUntil(async () => metricSum((await scrape(col)).samples,
      'kansatsu_receiver_refused_requests_total', match) === 2, 20000,
    'kansatsu_receiver_refused_requests_total{transport="grpc",reason="too_large"} == 2', 50);
  });

  await t.test('gRPC: corrupt gzip message -> INVALID_ARGUMENT', async () => {
    const gz = gzipSync(validBody('e0'));
    const r = await grpcRawExport(col.grpcPort, gz.subarray(0, gz.length - 9), 'gzip');
    assert.equal(r.code, GrpcStatus.INVALID_ARGUMENT, `grpc status ${r.code} ${r.details}\n${col.tail(15)}`);
  });

  await t.test('gRPC: grpc-encoding deflate -> UNIMPLEMENTED', async () => {
    const r = await grpcRawExport(col.grpcPort, gzipSync(validBody('e1')), 'deflate');
    assert.equal(r.code, GrpcStatus.UNIMPLEMENTED, `grpc status ${r.code} ${r.details}\n${col.tail(15)}`);
  });

  await t.test('gRPC: valid gzip message -> OK, its spans exported', async () => {
    const r = await grpcRawExport(col.grpcPort, gzipSync(validBody('e2')), 'gzip');
    assert.equal(r.code, 0, `grpc status ${r.code} ${r.details}\n${col.tail(15)}`);
    [1, 2, 3].forEach((i) => accepted.add(`e20000000000000${i}`));
  });

  await t.test('gRPC: 8-byte trace id among valid spans -> OK, rejected_spans 1', async () => {
    const spans = [
      rawSpan({ traceId: TRACE, spanId: 'd100000000000001', name: 'grpc-valid-1' }),
      rawSpan({ traceId: '0102030405060708', spanId: 'd100000000000002', name: 'grpc-short-trace-id' }),
    ];
    const r = await grpcExport(col.grpcPort, serializeProto(spans));
    assert.equal(r.code, 0, `grpc status ${r.code} ${r.details}\n${col.tail(15)}`);
    const resp = decodeExportResponse(r.response);
    assert.ok(resp.partialSuccess, 'no partial_success in the gRPC response');
    assert.equal(resp.partialSuccess.rejectedSpans, 1);
    accepted.add('d100000000000001');
  });

  // after all of that, a normal SDK export still works
  const sdk = makeProvider(makeExporter('http/protobuf', col));
  let expected;
  try {
    emitRichSpans(sdk.provider, 'after-bad-input');
    await flushAndCheck(sdk, 'SDK export after bad input');
    expected = canonicalFromSdk(sdk.memory.getFinishedSpans());
  } finally {
    await sdk.provider.shutdown();
  }
  await col.stop();

  const records = readJsonRecords(out);
  const ids = [];
  for (const td of records) for (const rs of td.resourceSpans || []) for (const ss of rs.scopeSpans || []) for (const s of ss.spans || []) ids.push(String(s.spanId).toLowerCase());
  const want = new Set([...accepted, ...expected.map((e) => e.spanId)]);
  const missing = [...want].filter((id) => !ids.includes(id));
  const unexpected = ids.filter((id) => !want.has(id));
  assert.deepEqual({ missing, unexpected }, { missing: [], unexpected: [] }, 'file exporter output: accepted spans exactly');
  const sdkIds = new Set(expected.map((e) => e.spanId));
  const actual = canonicalFromTracesData(records).filter((s) => sdkIds.has(s.spanId));
  assertSameSpans(actual, expected, 'SDK spans after bad input');
});
