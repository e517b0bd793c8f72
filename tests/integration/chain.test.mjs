// SPDX-License-Identifier: Apache-2.0
// (b) Chains: SDK -> collector A -> (otlp gRPC | otlphttp exporter) ->
// collector B -> JSON file; B's file must equal the SDK's spans field by field.
// Then the W3C traceparent of an incoming request (HTTP header or gRPC
// metadata) must be continued on A's outgoing requests, checked with in-test
// HTTP and gRPC sinks that record what they receive.
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startCollector, makeTempDir, makeConfig, readJsonRecords, httpRequest } from './harness.mjs';
import { makeExporter, makeProvider, flushAndCheck, emitRichSpans, canonicalFromSdk, canonicalFromTracesData, assertSameSpans, rawSpan, serializeProto } from './otel.mjs';
import { startHttpSink, startGrpcSink, grpcExport } from './sinks.mjs';
import { spanIdsOfTracesData } from './pb.mjs';
import { gunzipSync } from 'node:zlib';

// span ids inside a request an exporter sent to a sink (gunzipped if needed)
function sinkSpanIds(req) {
  let body = req.body;
  if (req.headers && req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
  return spanIdsOfTracesData(body);
}

const variants = [
  { name: 'otlp (gRPC)', sdk: 'http/protobuf', exporter: (b) => ({ otlp: { endpoint: `127.0.0.1:${b.grpcPort}`, tls: { insecure: true } } }) },
  { name: 'otlphttp', sdk: 'grpc', exporter: (b) => ({ otlphttp: { endpoint: `http://127.0.0.1:${b.httpPort}` } }) },
  // issue 14: compressed by kansatsu itself, sent as an already-compressed
  // gRPC message (the two variants above take the default, gzip level 2 with
  // ISA-L igzip; level 6 here is libdeflate's; zstd over HTTP), over several
  // connections
  { name: 'otlp (gRPC, gzip level 6, connections 4)', sdk: 'http/protobuf',
    exporter: (b) => ({ otlp: { endpoint: `127.0.0.1:${b.grpcPort}`, tls: { insecure: true }, compression: 'gzip', compression_params: { level: 6 }, connections: 4 } }) },
  { name: 'otlp (gRPC, none, connections 3)', sdk: 'grpc',
    exporter: (b) => ({ otlp: { endpoint: `127.0.0.1:${b.grpcPort}`, tls: { insecure: true }, compression: 'none', connections: 3 } }) },
  { name: 'otlphttp (zstd, connections 4)', sdk: 'grpc',
    exporter: (b) => ({ otlphttp: { endpoint: `http://127.0.0.1:${b.httpPort}`, compression: 'zstd', connections: 4 } }) },
];

for (const v of variants) {
  test(`chain SDK(${v.sdk}) -> A -> ${v.name} -> B -> file`, async (t) => {
    const dirB = makeTempDir('chainB');
    const out = join(dirB, 'out.jsonl');
    const b = await startCollector(t, makeConfig(dirB, { exporters: { file: { path: out, format: 'json' } } }), 'kansatsu[B]', dirB);
    const dirA = makeTempDir('chainA');
    const a = await startCollector(t, makeConfig(dirA, { exporters: v.exporter(b) }), 'kansatsu[A]', dirA);
    const sdk = makeProvider(makeExporter(v.sdk, a));
    let expected;
    try {
      emitRichSpans(sdk.provider, v.name);
      await flushAndCheck(sdk, v.name);
      expected = canonicalFromSdk(sdk.memory.getFinishedSpans());
    } finally {
      await sdk.provider.shutdown();
    }
    await a.stop(); // A drains what it acknowledged into B before exiting
    await b.stop();
    assertSameSpans(canonicalFromTracesData(readJsonRecords(out)), expected, `chain via ${v.name}`);
  });
}

test('traceparent of an incoming request is continued on both exporters', async (t) => {
  const httpSink = await startHttpSink();
  const grpcSink = await startGrpcSink();
  t.after(() => Promise.all([httpSink.close(), grpcSink.close()]));
  const dir = makeTempDir('tp');
  const a = await startCollector(t, makeConfig(dir, {
    exporters: {
      otlphttp: { endpoint: `http://127.0.0.1:${httpSink.port}` },
      otlp: { endpoint: `127.0.0.1:${grpcSink.port}`, tls: { insecure: true } },
    },
  }), 'kansatsu[A]', dir);

  // 1: OTLP/HTTP request carrying a traceparent header
  const tp1 = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const body1 = serializeProto([rawSpan({ traceId: '5bf92f3577b34da6a3ce929d0e0e4736', spanId: '10f067aa0ba902b7', name: 'tp-http' })]);
  const r1 = await httpRequest({ port: a.httpPort, headers: { 'content-type': 'application/x-protobuf', traceparent: tp1 }, body: body1 });
  assert.equal(r1.status, 200, `POST /v1/traces with traceparent: status ${r1.status} body ${r1.body.toString()}\n${a.tail()}`);
  await httpSink.waitForCount(1, 20000, 'otlphttp exporter request at the HTTP sink');
  await grpcSink.waitForCount(1, 20000, 'otlp exporter request at the gRPC sink');
  assert.equal(httpSink.requests[0].path, '/v1/traces', 'otlphttp exporter path');
  assert.deepEqual(sinkSpanIds(httpSink.requests[0]), ['10f067aa0ba902b7'], 'otlphttp exporter request carries the span');
  assert.deepEqual(sinkSpanIds(grpcSink.requests[0]), ['10f067aa0ba902b7'], 'otlp exporter request carries the span');
  assert.equal(httpSink.requests[0].headers.traceparent, tp1, 'otlphttp exporter: traceparent header continued from the HTTP request');
  assert.equal(grpcSink.requests[0].metadata.traceparent, tp1, 'otlp exporter: traceparent metadata continued from the HTTP request');

  // 2: OTLP/gRPC request carrying traceparent metadata
  const tp2 = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const body2 = serializeProto([rawSpan({ traceId: '1af7651916cd43dd8448eb211c80319c', spanId: 'c7ad6b7169203331', name: 'tp-grpc' })]);
  const r2 = await grpcExport(a.grpcPort, body2, { traceparent: tp2 });
  assert.equal(r2.code, 0, `gRPC Export with traceparent: status ${r2.code} ${r2.details}\n${a.tail()}`);
  await httpSink.waitForCount(2, 20000, 'otlphttp exporter request at the HTTP sink');
  await grpcSink.waitForCount(2, 20000, 'otlp exporter request at the gRPC sink');
  assert.equal(httpSink.requests[1].headers.traceparent, tp2, 'otlphttp exporter: traceparent header continued from the gRPC request');
  assert.equal(grpcSink.requests[1].metadata.traceparent, tp2, 'otlp exporter: traceparent metadata continued from the gRPC request');
  await a.stop();
});
