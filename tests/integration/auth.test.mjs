// SPDX-License-Identifier: Apache-2.0
// Authenticators end to end, with the real OpenTelemetry JS SDK exporters and
// the real binary:
//  1. bearertokenauth on both receivers: the SDK's gRPC, http/protobuf and
//     http/json exporters export with the right token and every span is in
//     the file exporter's output, field for field; a wrong or a missing token
//     makes every export fail, nothing of it is accepted, and each refusal
//     is counted in kansatsu_receiver_auth_failures_total by transport and
//     reason (and as reason "unauthenticated" of refused requests); a raw
//     request shows the 401 answer (WWW-Authenticate, Status{code 16}).
//  2. the token file rotated on disk: after kansatsu_auth_reloads_total
//     counts the re-read, the old token is refused and the new one accepted
//     on both transports.
//  3. basicauth with an htpasswd file (apr1 made by `openssl passwd`, bcrypt,
//     {SHA}): right passwords accepted, a wrong one refused as "denied"; a
//     user added to the file is accepted once the reload is counted.
//  4. a chain SDK -> A -> B where B requires a bearer token on gRPC and Basic
//     credentials on HTTP: A's otlp exporter (bearertokenauth), otlphttp
//     exporter (basicauth client_auth) and loadbalancing exporter
//     (protocol.otlp.auth) deliver every span; an exporter of A with a wrong
//     token is refused by B, which counts it, and A counts the spans it
//     dropped.
// Synchronisation: export results and /metrics polled with deadlines; never
// a fixed sleep.
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync, renameSync, appendFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { readJsonRecords, httpRequest } from './harness.mjs';
import { makeProvider, emitSimpleSpans, canonicalFromSdk, canonicalFromTracesData, assertSameSpans, rawSpan, serializeProto } from './otel.mjs';
import { pipelineConfig, startJsonCollector, waitMetrics, metric } from './journey_helpers.mjs';

const WAIT_MS = 30000;
const TRANSPORTS = ['grpc', 'http/protobuf', 'http/json'];
const SHOW = ['kansatsu_receiver_', 'kansatsu_auth_', 'kansatsu_exporter_'];

// An SDK exporter sending `authorization` (a header value, or none).
function exporter(transport, col, authorization) {
  if (transport === 'grpc') {
    const metadata = new grpc.Metadata();
    if (authorization) metadata.set('authorization', authorization);
    return new GrpcExporter({ url: `http://127.0.0.1:${col.grpcPort}`, metadata, timeoutMillis: 10000 });
  }
  const url = `http://127.0.0.1:${col.httpPort}/v1/traces`;
  const headers = authorization ? { Authorization: authorization } : {};
  const Exp = transport === 'http/protobuf' ? ProtoExporter : JsonExporter;
  return new Exp({ url, headers, timeoutMillis: 10000 });
}

// Exports n spans (one export call each); returns {ok, failed, calls, spans}.
async function sdkExport(transport, col, authorization, n, tag) {
  const sdk = makeProvider(exporter(transport, col, authorization));
  emitSimpleSpans(sdk.provider, n, tag);
  await sdk.provider.forceFlush().catch(() => {}); // a refused export rejects; the results tell
  const spans = [...sdk.memory.getFinishedSpans()];
  await sdk.provider.shutdown();
  const rs = sdk.recording.results;
  return {
    ok: rs.length > 0 && rs.every((r) => r.code === ExportResultCode.SUCCESS),
    failed: rs.length > 0 && rs.every((r) => r.code !== ExportResultCode.SUCCESS),
    calls: rs.length,
    spans,
    errors: rs.map((r) => r.error && r.error.message),
  };
}

const accepted = (s, transport) => metric(s, 'kansatsu_receiver_accepted_spans_total', transport ? { transport } : {}) || 0;
const sent = (s, exporter = 'file') => metric(s, 'kansatsu_exporter_sent_spans_total', { exporter }) || 0;
const authFailures = (s, transport, reason) => metric(s, 'kansatsu_receiver_auth_failures_total', { transport, reason }) || 0;
const reloads = (s, extension, result = 'ok') => metric(s, 'kansatsu_auth_reloads_total', { extension, result }) || 0;
const wire = (t) => (t === 'grpc' ? 'grpc' : 'http');

function withAuth(c, ext, extName, grpcAuth, httpAuth = grpcAuth) {
  c.extensions = { ...c.extensions, ...ext };
  c.service.extensions = [...c.service.extensions, ...extName];
  if (grpcAuth) c.receivers.otlp.protocols.grpc.auth = { authenticator: grpcAuth };
  if (httpAuth) c.receivers.otlp.protocols.http.auth = { authenticator: httpAuth };
  return c;
}

test('bearertokenauth: right token accepted on every transport; wrong or missing refused and counted by reason', async (t) => {
  const { col, out } = await startJsonCollector(t, 'auth-bearer', (d) => {
    writeFileSync(join(d, 'token'), 'tok-3f9a1c\n');
    return withAuth(pipelineConfig(d, { batch: { timeout: '50ms' } }, ['batch']),
      { bearertokenauth: { filename: join(d, 'token') } }, ['bearertokenauth'], 'bearertokenauth');
  });
  const want = [];
  const refusedCalls = { grpc: { denied: 0, missing: 0 }, http: { denied: 0, missing: 0 } };
  for (const [i, tr] of TRANSPORTS.entries()) {
    const good = await sdkExport(tr, col, 'Bearer tok-3f9a1c', 5, `good-${i}`);
    assert.ok(good.ok, `${tr} with the right token: ${JSON.stringify(good.errors)}`);
    want.push(...good.spans);
    const wrong = await sdkExport(tr, col, 'Bearer tok-wrong', 3, `wrong-${i}`);
    assert.ok(wrong.failed, `${tr} with a wrong token: every export fails (${JSON.stringify(wrong.errors)})`);
    refusedCalls[wire(tr)].denied += wrong.calls;
    const none = await sdkExport(tr, col, null, 2, `none-${i}`);
    assert.ok(none.failed, `${tr} without a token: every export fails`);
    refusedCalls[wire(tr)].missing += none.calls;
  }
  // a raw request: the 401 answer itself
  const raw = await httpRequest({ port: col.httpPort, headers: { 'content-type': 'application/x-protobuf', authorization: 'Basic dG9rLTNmOWExYw==' },
    body: serializeProto([rawSpan({ traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8) })]) });
  assert.equal(raw.status, 401);
  assert.equal(raw.headers['www-authenticate'], 'Bearer realm="kansatsu"');
  assert.equal(raw.headers['content-type'], 'application/x-protobuf');
  assert.ok(raw.body.length > 0 && raw.body[0] === 0x08 && raw.body[1] === 16, 'google.rpc.Status{code: 16}');
  assert.ok(!raw.body.toString().includes('tok-3f9a1c'), 'the answer does not carry the token');

  const s = await waitMetrics(col, (x) => sent(x) === want.length, WAIT_MS, `${want.length} spans exported to the file`, SHOW);
  assertSameSpans(canonicalFromTracesData(readJsonRecords(out)), canonicalFromSdk(want), 'spans sent with the right token');
  assert.equal(accepted(s), want.length, 'nothing from the refused exports was accepted');
  for (const w of ['grpc', 'http']) {
    assert.equal(authFailures(s, w, 'denied'), refusedCalls[w].denied, `${w}: refusals counted as denied`);
    assert.equal(authFailures(s, w, 'missing'), refusedCalls[w].missing, `${w}: refusals counted as missing`);
  }
  assert.equal(authFailures(s, 'http', 'malformed'), 1, 'the Basic request counted as malformed');
  const total = refusedCalls.grpc.denied + refusedCalls.grpc.missing + refusedCalls.http.denied + refusedCalls.http.missing + 1;
  assert.equal(metric(s, 'kansatsu_receiver_refused_requests_total', { reason: 'unauthenticated' }), total);
  await col.stop();
  assert.ok(!col.stderr.includes('tok-3f9a1c') && !col.stderr.includes('tok-wrong'), 'no token in the log');
  assert.match(col.stderr, /refused a request: unauthenticated \((denied|missing|malformed) credentials\)/);
});

test('bearertokenauth: a rotated token file: the old token is refused, the new one accepted', async (t) => {
  let tokenPath;
  const { col } = await startJsonCollector(t, 'auth-rotate', (d) => {
    tokenPath = join(d, 'token');
    writeFileSync(tokenPath, 'old-7c1e\n');
    return withAuth(pipelineConfig(d, { batch: { timeout: '50ms' } }, ['batch']),
      { 'bearertokenauth/file': { filename: tokenPath } }, ['bearertokenauth/file'], 'bearertokenauth/file');
  });
  let n = 0;
  for (const tr of ['grpc', 'http/protobuf']) {
    const r = await sdkExport(tr, col, 'Bearer old-7c1e', 2, 'before');
    assert.ok(r.ok, `${tr} with the token before the rotation: ${JSON.stringify(r.errors)}`);
    n += 2;
  }
  // replace the file the way tools do (write a new one, rename it over)
  writeFileSync(`${tokenPath}.new`, 'new-94bd\n');
  renameSync(`${tokenPath}.new`, tokenPath);
  await waitMetrics(col, (s) => reloads(s, 'bearertokenauth/file') >= 1, WAIT_MS, 'the token file re-read', SHOW);
  for (const tr of ['grpc', 'http/protobuf']) {
    const old = await sdkExport(tr, col, 'Bearer old-7c1e', 2, 'old');
    assert.ok(old.failed, `${tr}: the old token is refused after the rotation`);
    const r = await sdkExport(tr, col, 'Bearer new-94bd', 2, 'new');
    assert.ok(r.ok, `${tr}: the new token is accepted: ${JSON.stringify(r.errors)}`);
    n += 2;
  }
  // in place this time (truncate and write)
  writeFileSync(tokenPath, 'third-55aa\n');
  await waitMetrics(col, (s) => reloads(s, 'bearertokenauth/file') >= 2, WAIT_MS, 'the token file re-read again', SHOW);
  const r3 = await sdkExport('http/json', col, 'Bearer third-55aa', 2, 'third');
  assert.ok(r3.ok, `the third token: ${JSON.stringify(r3.errors)}`);
  n += 2;
  const s = await waitMetrics(col, (x) => sent(x) === n, WAIT_MS, `${n} spans exported`, SHOW);
  assert.equal(accepted(s), n);
  assert.equal(authFailures(s, 'grpc', 'denied') + authFailures(s, 'http', 'denied'), 4, 'the old token refused twice per transport');
  await col.stop();
});

// bcrypt (cost 4) of "bob-pw", made with libxcrypt; apr1 lines are made by openssl at test time
const BOB_BCRYPT = '$2y$04$abcdefghijklmnopqrstuuHx5E5Jn7rrgC8r97o0eO94FjxIIl5f2';

function apr1(password) {
  const r = spawnSync('openssl', ['passwd', '-apr1', password], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl passwd: ${r.stderr}`);
  return r.stdout.trim();
}

const basic = (user, pw) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

test('basicauth: users of an htpasswd file (apr1, bcrypt, {SHA}); a wrong password is refused; an added user is accepted after the reload', async (t) => {
  let htpasswd;
  const { col } = await startJsonCollector(t, 'auth-basic', (d) => {
    htpasswd = join(d, 'htpasswd');
    // carol's {SHA} is base64(SHA-1("s3cret"))
    writeFileSync(htpasswd, `# users\nalice:${apr1('alice-pw')}\nbob:${BOB_BCRYPT}\ncarol:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=\n`);
    return withAuth(pipelineConfig(d, { batch: { timeout: '50ms' } }, ['batch']),
      { 'basicauth/server': { htpasswd: { file: htpasswd } } }, ['basicauth/server'], 'basicauth/server');
  });
  let n = 0;
  for (const [tr, user, pw] of [['http/protobuf', 'alice', 'alice-pw'], ['grpc', 'bob', 'bob-pw'], ['http/json', 'carol', 's3cret'], ['grpc', 'alice', 'alice-pw']]) {
    const r = await sdkExport(tr, col, basic(user, pw), 3, `${user}-${tr}`);
    assert.ok(r.ok, `${tr} as ${user}: ${JSON.stringify(r.errors)}`);
    n += 3;
  }
  const bad = await sdkExport('http/protobuf', col, basic('alice', 'bob-pw'), 1, 'bad');
  assert.ok(bad.failed, 'a wrong password is refused');
  const nobody = await sdkExport('grpc', col, basic('dave', 'dave-pw'), 1, 'nobody');
  assert.ok(nobody.failed, 'an unknown user is refused');
  appendFileSync(htpasswd, `dave:${apr1('dave-pw')}\n`);
  await waitMetrics(col, (s) => reloads(s, 'basicauth/server') >= 1, WAIT_MS, 'the htpasswd file re-read', SHOW);
  const dave = await sdkExport('grpc', col, basic('dave', 'dave-pw'), 2, 'dave');
  assert.ok(dave.ok, `dave after the reload: ${JSON.stringify(dave.errors)}`);
  n += 2;
  const s = await waitMetrics(col, (x) => sent(x) === n, WAIT_MS, `${n} spans exported`, SHOW);
  assert.equal(accepted(s), n);
  assert.equal(authFailures(s, 'http', 'denied'), 1);
  assert.equal(authFailures(s, 'grpc', 'denied'), 1);
  await col.stop();
  assert.ok(!col.stderr.includes('alice-pw') && !col.stderr.includes('bob-pw'), 'no password in the log');
});

test('chain: A\'s otlp and loadbalancing (bearer token) and otlphttp (basic credentials) exporters deliver to a B that requires them; a wrong token is refused by B', async (t) => {
  const b = await startJsonCollector(t, 'auth-chainB', (d) => withAuth(pipelineConfig(d, { batch: { timeout: '50ms' } }, ['batch']), {
    'bearertokenauth/in': { token: 'chain-tok-1' },
    'basicauth/in': { htpasswd: { inline: `kansatsu-a:${apr1('chain-pw')}` } },
  }, ['bearertokenauth/in', 'basicauth/in'], 'bearertokenauth/in', 'basicauth/in'));
  const a = await startJsonCollector(t, 'auth-chainA', (d) => {
    const c = pipelineConfig(d, { batch: { timeout: '50ms' } }, ['batch']);
    c.extensions = {
      ...c.extensions,
      'bearertokenauth/out': { token: 'chain-tok-1' },
      'bearertokenauth/wrong': { token: 'chain-tok-wrong' },
      'basicauth/out': { client_auth: { username: 'kansatsu-a', password: 'chain-pw' } },
    };
    c.service.extensions = [...c.service.extensions, 'bearertokenauth/out', 'bearertokenauth/wrong', 'basicauth/out'];
    const noRetry = { retry_on_failure: { enabled: false } };
    c.exporters = {
      'otlp/b': { endpoint: `127.0.0.1:${b.col.grpcPort}`, tls: { insecure: true }, auth: { authenticator: 'bearertokenauth/out' } },
      'otlphttp/b': { endpoint: `http://127.0.0.1:${b.col.httpPort}`, auth: { authenticator: 'basicauth/out' } },
      'otlp/wrong': { endpoint: `127.0.0.1:${b.col.grpcPort}`, tls: { insecure: true }, auth: { authenticator: 'bearertokenauth/wrong' }, ...noRetry },
      'loadbalancing/b': {
        protocol: { otlp: { tls: { insecure: true }, auth: { authenticator: 'bearertokenauth/out' } } },
        resolver: { static: { hostnames: [`127.0.0.1:${b.col.grpcPort}`] } },
      },
    };
    c.service.pipelines.traces.exporters = Object.keys(c.exporters);
    return c;
  });
  const r = await sdkExport('http/protobuf', a.col, null, 20, 'chain');
  assert.ok(r.ok, `SDK -> A: ${JSON.stringify(r.errors)}`);
  const n = r.spans.length;
  const sa = await waitMetrics(a.col, (s) => sent(s, 'otlp/b') === n && sent(s, 'otlphttp/b') === n &&
    (metric(s, 'kansatsu_exporter_dropped_spans_total', { exporter: 'otlp/wrong' }) || 0) === n, WAIT_MS,
  'A: both authenticated exporters sent everything, the wrong one dropped everything', SHOW);
  assert.equal(sent(sa, 'otlp/wrong'), 0);
  const sb = await waitMetrics(b.col, (s) => sent(s) === 3 * n, WAIT_MS, `B: ${3 * n} spans exported to its file`, SHOW);
  assert.equal(accepted(sb, 'grpc'), 2 * n, 'B accepted every span over gRPC twice (otlp/b, loadbalancing/b)');
  assert.equal(accepted(sb, 'http'), n, 'B accepted every span over HTTP once (from otlphttp/b)');
  assert.ok(authFailures(sb, 'grpc', 'denied') >= 1, 'B counted the wrong token');
  assert.equal(authFailures(sb, 'http', 'denied') + authFailures(sb, 'http', 'missing'), 0);
  await a.col.stop();
  await b.col.stop();
  const byId = new Map();
  for (const s of canonicalFromTracesData(readJsonRecords(b.out))) byId.set(s.spanId, (byId.get(s.spanId) || 0) + 1);
  assert.deepEqual([...new Set(byId.values())], [3], 'every span arrived at B three times (once per authenticated exporter)');
  assert.equal(byId.size, n);
  assert.ok(!a.col.stderr.includes('chain-pw') && !b.col.stderr.includes('chain-tok-1'), 'no secret in the logs');
});
