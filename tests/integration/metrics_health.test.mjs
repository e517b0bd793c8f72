// SPDX-License-Identifier: Apache-2.0
// (f) Self-metrics and health: after sending a known number of spans over
// OTLP/HTTP and OTLP/gRPC, GET /metrics (Prometheus text) reports exactly that
// many accepted spans per transport, and the file exporter's sent counter
// reaches the total; /healthz and /readyz answer 200.
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startCollector, makeTempDir, makeConfig, httpGet } from './harness.mjs';
import { makeExporter, makeProvider, flushAndCheck, emitSimpleSpans } from './otel.mjs';

// Prometheus text -> [{name, labels, value}]
function parseProm(text) {
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
const sum = (samples, name, match) => samples
  .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
  .reduce((a, s) => a + s.value, 0);

async function sendSpans(transport, col, n) {
  const sdk = makeProvider(makeExporter(transport, col), { batch: true });
  try {
    emitSimpleSpans(sdk.provider, n, transport);
    await flushAndCheck(sdk, `metrics via ${transport}`);
  } finally {
    await sdk.provider.shutdown();
  }
}

test('metrics count accepted and exported spans; health endpoints answer 200', async (t) => {
  const dir = makeTempDir('metrics');
  const col = await startCollector(t, makeConfig(dir, { exporters: { file: { path: join(dir, 'out.jsonl'), format: 'json' } } }), 'kansatsu[metrics]', dir);
  for (const p of ['/healthz', '/readyz']) {
    const r = await httpGet(col.healthPort, p);
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.body}`);
  }
  const N_HTTP = 37;
  const N_GRPC = 23;
  await sendSpans('http/protobuf', col, N_HTTP);
  await sendSpans('grpc', col, N_GRPC);

  const r = await httpGet(col.metricsPort, '/metrics');
  assert.equal(r.status, 200, `GET /metrics: ${r.status}`);
  assert.match(String(r.headers['content-type']), /^text\/plain/, 'Prometheus text content type');
  const samples = parseProm(r.body.toString());
  const text = r.body.toString();
  assert.equal(sum(samples, 'kansatsu_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'http' }), N_HTTP,
    `accepted spans over http\n${text}`);
  assert.equal(sum(samples, 'kansatsu_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'grpc' }), N_GRPC,
    `accepted spans over grpc\n${text}`);
  assert.equal(sum(samples, 'kansatsu_receiver_refused_spans_total', {}), 0, `no span was refused\n${text}`);

  // The exporter counter moves when the batch processor flushes (timeout 200ms):
  // poll the real counter, bounded, until it reaches the total.
  const total = N_HTTP + N_GRPC;
  let sent = -1;
  let last = '';
  const end = Date.now() + 20000;
  while (Date.now() < end) {
    const m = await httpGet(col.metricsPort, '/metrics');
    last = m.body.toString();
    sent = sum(parseProm(last), 'kansatsu_exporter_sent_spans_total', { exporter: 'file' });
    if (sent >= total) break;
  }
  assert.equal(sent, total, `kansatsu_exporter_sent_spans_total{exporter="file"} after 20 s\n${last}`);

  for (const p of ['/healthz', '/readyz']) {
    const h = await httpGet(col.healthPort, p);
    assert.equal(h.status, 200, `GET ${p} after traffic: ${h.status}`);
  }
  await col.stop();
});
