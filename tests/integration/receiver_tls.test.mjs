// SPDX-License-Identifier: Apache-2.0
// TLS on the OTLP receivers, end to end with the real OpenTelemetry JS SDK and
// certificates made at test time with the openssl CLI (tls_helpers.mjs):
//  1. TLS with a private CA: the SDK's gRPC (grpc-js SSL credentials),
//     http/protobuf and http/json (https agent with the CA) exporters all
//     export successfully and every span is in the file exporter's output,
//     field for field; a plaintext client gets nothing from either TLS port.
//  2. Mutual TLS (client_ca_file): the client certificate signed by the CA is
//     accepted on both ports; no client certificate, or one of another CA, is
//     refused (the export fails) and the collector accepts nothing from them.
//  3. Reload (reload_interval 1s): the served certificate is replaced on disk;
//     NEW TLS connections to both ports then get the new certificate (polled
//     with a deadline), while an HTTP keep-alive connection opened before
//     keeps working for its next request and a gRPC channel opened before
//     keeps exporting.
// `kansatsu validate` names a missing tls file and a missing key.
// Synchronisation: export results, TLS handshakes, /metrics polled with
// deadlines; never a fixed sleep.
import test from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { readJsonRecords, runBin, makeTempDir } from './harness.mjs';
import { makeProvider, emitSimpleSpans, canonicalFromSdk, canonicalFromTracesData, assertSameSpans, rawSpan, serializeProto } from './otel.mjs';
import { pipelineConfig, startJsonCollector, waitMetrics, metric } from './journey_helpers.mjs';
import { pollUntil } from './memory_limit_helpers.mjs';
import { makeCerts } from './tls_helpers.mjs';

const WAIT_MS = 30000;

function tlsBlock(certs, extra = {}) {
  return { cert_file: certs.serverCert, key_file: certs.serverKey, ...extra };
}

async function start(t, label, certs, extra) {
  return startJsonCollector(t, label, (dir) => {
    const c = pipelineConfig(dir, { batch: { send_batch_size: 512, timeout: '50ms' } }, ['batch']);
    c.receivers.otlp.protocols.grpc.tls = tlsBlock(certs, extra);
    c.receivers.otlp.protocols.http.tls = tlsBlock(certs, extra);
    return c;
  });
}

// The SDK exporters over TLS; client = {key, cert} buffers for mTLS, or null.
function exporter(transport, col, certs, client) {
  const ca = certs.read('ca.crt');
  if (transport === 'grpc') {
    const creds = client ? grpc.credentials.createSsl(ca, client.key, client.cert) : grpc.credentials.createSsl(ca);
    return new GrpcExporter({ url: `https://127.0.0.1:${col.grpcPort}`, credentials: creds, timeoutMillis: 10000 });
  }
  const agent = { ca, keepAlive: true, ...(client ? { key: client.key, cert: client.cert } : {}) };
  const url = `https://127.0.0.1:${col.httpPort}/v1/traces`;
  const Exp = transport === 'http/protobuf' ? ProtoExporter : JsonExporter;
  return new Exp({ url, httpAgentOptions: agent, timeoutMillis: 10000 });
}

// Exports n spans through the SDK; returns {ok, spans (SDK), results}.
async function sdkExport(transport, col, certs, client, n, tag) {
  const sdk = makeProvider(exporter(transport, col, certs, client));
  emitSimpleSpans(sdk.provider, n, tag);
  // a refused export makes forceFlush reject; the recording exporter has the result
  await sdk.provider.forceFlush().catch(() => {});
  const spans = [...sdk.memory.getFinishedSpans()]; // shutdown clears the in-memory exporter
  await sdk.provider.shutdown();
  const ok = sdk.recording.results.every((r) => r.code === ExportResultCode.SUCCESS);
  return { ok, spans, results: sdk.recording.results };
}

const accepted = (s) => metric(s, 'kansatsu_receiver_accepted_spans_total') || 0;
const sent = (s) => metric(s, 'kansatsu_exporter_sent_spans_total', { exporter: 'file' }) || 0;

// The certificate serial a NEW TLS connection to port is served (lowercase hex).
function servedSerial(port, certs, alpn) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: certs.read('ca.crt'), ALPNProtocols: alpn,
      key: certs.read('client.key'), cert: certs.read('client.crt') }, () => {
      const serial = s.getPeerCertificate().serialNumber.toLowerCase();
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

test('TLS: the SDK exports over gRPC, http/protobuf and http/json with a private CA; plaintext gets nothing', async (t) => {
  const certs = makeCerts('tls-plain');
  const { col, out } = await start(t, 'tls', certs, {});
  const want = [];
  for (const [i, tr] of ['grpc', 'http/protobuf', 'http/json'].entries()) {
    const r = await sdkExport(tr, col, certs, null, 20, `tls-${i}`);
    assert.ok(r.ok, `${tr} over TLS: ${JSON.stringify(r.results.map((x) => x.error && x.error.message))}`);
    want.push(...r.spans);
  }
  await waitMetrics(col, (s) => sent(s) === want.length, WAIT_MS, `${want.length} spans exported to the file`);
  assertSameSpans(canonicalFromTracesData(readJsonRecords(out)), canonicalFromSdk(want), 'spans received over TLS');
  // plaintext clients: an HTTP request and a gRPC channel without TLS
  const plain = await fetch(`http://127.0.0.1:${col.httpPort}/v1/traces`, {
    method: 'POST', headers: { 'content-type': 'application/x-protobuf' },
    body: serializeProto([rawSpan({ traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8) })]),
  }).then((r) => r.status, (e) => `error ${e.cause ? e.cause.code : e.message}`);
  assert.ok(typeof plain !== 'number' || plain >= 400, `plaintext HTTP to the TLS port: ${plain}`);
  const insecure = new GrpcExporter({ url: `http://127.0.0.1:${col.grpcPort}`, timeoutMillis: 3000 });
  const sdk = makeProvider(insecure);
  emitSimpleSpans(sdk.provider, 3, 'plain');
  await sdk.provider.forceFlush().catch(() => {});
  await sdk.provider.shutdown();
  assert.ok(sdk.recording.results.every((r) => r.code !== ExportResultCode.SUCCESS), 'plaintext gRPC export fails');
  const s = await waitMetrics(col, () => true, WAIT_MS, 'scrape');
  assert.equal(accepted(s), want.length, 'nothing accepted from plaintext clients');
  await col.stop();
});

test('mutual TLS: the CA-signed client certificate is accepted; none or another CA\'s is refused', async (t) => {
  const certs = makeCerts('tls-mutual');
  const { col } = await start(t, 'mtls', certs, { client_ca_file: certs.ca });
  const good = { key: certs.read('client.key'), cert: certs.read('client.crt') };
  const bad = { key: certs.read('intruder.key'), cert: certs.read('intruder.crt') };
  let n = 0;
  for (const tr of ['grpc', 'http/protobuf']) {
    const ok = await sdkExport(tr, col, certs, good, 10, `mtls-${tr}`);
    assert.ok(ok.ok, `${tr} with the right client certificate: ${JSON.stringify(ok.results.map((x) => x.error && x.error.message))}`);
    n += 10;
    for (const [what, client] of [['no client certificate', null], ['another CA\'s certificate', bad]]) {
      const r = await sdkExport(tr, col, certs, client, 5, `refused-${tr}`);
      assert.ok(r.results.length > 0 && r.results.every((x) => x.code !== ExportResultCode.SUCCESS), `${tr} with ${what}: refused`);
    }
  }
  const s = await waitMetrics(col, (x) => sent(x) === n, WAIT_MS, `${n} spans exported`);
  assert.equal(accepted(s), n, 'only the authorised clients\' spans were accepted');
  await col.stop();
});

test('reload: a replaced certificate is served to new connections; open connections keep working', async (t) => {
  const certs = makeCerts('tls-reload');
  const { col } = await start(t, 'tls-reload', certs, { reload_interval: '1s' });
  const first = certs.serial(join(certs.dir, 'server.crt'));
  const second = certs.serial(join(certs.dir, 'server2.crt'));
  assert.notEqual(first, second);
  assert.equal(await servedSerial(col.httpPort, certs, ['http/1.1']), first, 'HTTP port serves the first certificate');
  assert.equal(await servedSerial(col.grpcPort, certs, ['h2']), first, 'gRPC port serves the first certificate');
  // an HTTP keep-alive connection and a gRPC channel, opened before the swap
  const agent = new https.Agent({ ca: certs.read('ca.crt'), keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const post = (tag) => new Promise((resolve, reject) => {
    const body = serializeProto([rawSpan({ traceId: tag.repeat(16), spanId: tag.repeat(8) })]);
    const req = https.request({ host: '127.0.0.1', port: col.httpPort, path: '/v1/traces', method: 'POST', agent,
      headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.deepEqual(await post('a1'), { status: 200, reused: false }, 'first request on a new connection');
  const grpcSdk = makeProvider(exporter('grpc', col, certs, null));
  emitSimpleSpans(grpcSdk.provider, 5, 'before');
  await grpcSdk.provider.forceFlush();

  certs.serve('server2');
  await pollUntil(async () => (await servedSerial(col.httpPort, certs, ['http/1.1'])) === second, WAIT_MS,
    'the HTTP port serves the new certificate to new connections', 100);
  await pollUntil(async () => (await servedSerial(col.grpcPort, certs, ['h2'])) === second, WAIT_MS,
    'the gRPC port serves the new certificate to new connections', 100);
  assert.deepEqual(await post('b2'), { status: 200, reused: true }, 'the keep-alive connection from before still works');
  emitSimpleSpans(grpcSdk.provider, 5, 'after');
  await grpcSdk.provider.forceFlush();
  await grpcSdk.provider.shutdown();
  assert.ok(grpcSdk.recording.results.length >= 2 && grpcSdk.recording.results.every((r) => r.code === ExportResultCode.SUCCESS),
    'the gRPC channel from before keeps exporting');
  await waitMetrics(col, (s) => sent(s) === 12, WAIT_MS, 'every span of both clients exported');
  await col.stop();
});

test('validate: the tls block\'s files and keys are checked', async () => {
  const certs = makeCerts('tls-validate');
  const dir = makeTempDir('tls-validate-cfg');
  const cases = [
    [{ cert_file: join(certs.dir, 'missing.crt'), key_file: certs.serverKey },
      /receivers\.otlp\.protocols\.grpc\.tls\.cert_file: cannot read ".*missing\.crt"/],
    [{ cert_file: certs.serverCert }, /receivers\.otlp\.protocols\.grpc\.tls\.key_file: missing/],
    [{ cert_file: certs.serverKey, key_file: certs.serverKey }, /tls\.cert_file: ".*" holds no PEM certificate that loads/],
    [{ cert_file: certs.serverCert, key_file: certs.serverKey, min_version: '1.4' }, /tls\.min_version/],
    [{ cert_file: certs.serverCert, key_file: join(certs.dir, 'client.key') },
      /receivers\.otlp\.protocols\.grpc\.tls\.key_file: ".*client\.key" is not the key of the certificate in cert_file/],
    [{ cert_file: certs.serverCert, key_file: certs.serverKey, min_version: '1.3', max_version: '1.2' }, /tls\.max_version: "1\.2" is below min_version "1\.3"/],
  ];
  cases.push([{ http: true, cert_file: certs.serverCert, key_file: join(certs.dir, 'client.key') },
    /receivers\.otlp\.protocols\.http\.tls\.key_file: ".*client\.key" is not the key of the certificate/]);
  for (const [i, [spec, re]] of cases.entries()) {
    const c = pipelineConfig(dir, { batch: {} }, ['batch']);
    const { http, ...block } = spec;
    c.receivers.otlp.protocols[http ? 'http' : 'grpc'].tls = block;
    const f = join(dir, `c${i}.yaml`);
    writeFileSync(f, JSON.stringify(c));
    const r = runBin(['validate', '--config', f]);
    assert.equal(r.code, 1, `case ${i}: exit ${r.code} ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re, `case ${i}`);
    assert.ok(!/BEGIN/.test(r.stderr), `case ${i}: no key material in the message`);
  }
});
