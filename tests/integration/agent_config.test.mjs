// SPDX-License-Identifier: Apache-2.0
// deploy/configs/agent.yaml's processors run unchanged: the file's whole
// `processors:` block and its pipeline's processor list are copied verbatim
// into a config whose receivers listen on 127.0.0.1:0 and whose exporter is
// the file exporter (instead of the loadbalancing exporter to a Kubernetes
// Service, which cannot resolve here). The environment variables the file
// names are set as a DaemonSet would set them (sampling 50%). Spans from the
// real OpenTelemetry JS SDK over OTLP/gRPC come out:
// - exactly the ones OTel's hash_seed sampling keeps (seed and percentage
//   read from the file), with `ot=rv:...;th:8` tracestates;
// - with the detected host.name / os.type, the env detector's attribute and
//   the resource processor's deployment.environment.name added to the
//   Resource (the SDK's own keys untouched: override false, action insert);
// - with the credential headers deleted and enduser.id SHA-256 hashed,
//   every other field as the SDK sent it.
// Synchronisation: the SDK's export results, then SIGTERM (the collector
// drains before it exits), then the output file is read.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Collector, makeTempDir, readJsonRecords, runBin, READY_TIMEOUT_MS } from './harness.mjs';
import {
  ROOT_CONTEXT, makeExporter, makeProvider, flushAndCheck, otelKeeps,
  canonicalFromSdk, canonicalFromTracesData, assertSameSpans,
} from './otel.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const AGENT = join(ROOT, 'deploy/configs/agent.yaml');
const sha256 = (s) => createHash('sha256').update(Buffer.from(s)).digest('hex');
const sortKV = (m) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

// The agent file's processors block (every line up to the next top-level
// key) and its traces pipeline's processor list, as text.
function agentParts() {
  const text = readFileSync(AGENT, 'utf8');
  const block = /^processors:\n(?:(?: .*|#.*)?\n)*/m.exec(text);
  assert.ok(block, `${AGENT}: no processors block`);
  const list = /^ {6}processors: \[([^\]]*)\]$/m.exec(text);
  assert.ok(list, `${AGENT}: no service.pipelines.traces.processors list`);
  const names = list[1].split(',').map((s) => s.trim());
  const seed = /^ {4}hash_seed: (\d+)$/m.exec(block[0]);
  assert.ok(seed, 'agent.yaml: probabilistic_sampler.hash_seed is set (the test needs the seed)');
  return { block: block[0], names, seed: Number(seed[1]) };
}

test('deploy/configs/agent.yaml: its processor chain validates and runs unchanged with the JS SDK', async (t) => {
  const { block, names, seed } = agentParts();
  assert.deepEqual(names, ['memory_limiter', 'resourcedetection', 'resource', 'attributes', 'probabilistic_sampler', 'batch']);
  const dir = makeTempDir('agentcfg');
  const out = join(dir, 'out.jsonl');
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
${block}exporters:
  file:
    path: ${out}
    format: json
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [${names.join(', ')}]
      exporters: [file]
kansatsu:
  memory_limit_mib: 256
  shards: 2
  shutdown_timeout: 10s
`);
  const env = {
    KANSATSU_SAMPLING_PERCENTAGE: '50',
    KANSATSU_ENVIRONMENT: 'it-env',
    OTEL_RESOURCE_ATTRIBUTES: 'k8s.node.name=node-7,deployment.environment=from-env',
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  let col;
  try {
    const v = runBin(['validate', '--config', configPath]);
    assert.equal(v.code, 0, `validate:\n${v.stdout}${v.stderr}`);
    col = new Collector('kansatsu[agentcfg]', dir, configPath);
    t.after(() => col.cleanup());
    await col.waitForLine(/^kansatsu: ready/m, READY_TIMEOUT_MS);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
  assert.match(col.stderr, /processors\.resourcedetection: detected \d+ resource attributes: k8s\.node\.name=node-7, deployment\.environment=from-env, host\.name=/);

  const sdk = makeProvider(makeExporter('grpc', col), { batch: true });
  t.after(() => sdk.provider.shutdown());
  const tracer = sdk.provider.getTracer('agent-it', '1.0.0');
  const N = 400;
  for (let i = 0; i < N; i++) {
    tracer.startSpan(`GET /item/${i}`, {
      attributes: {
        'http.route': '/item/:id', 'i': i, 'enduser.id': `user-${i % 7}`,
        'http.request.header.authorization': 'Bearer s3cret', 'http.request.header.cookie': 'sid=1',
      },
    }, ROOT_CONTEXT).end();
  }
  await flushAndCheck(sdk, 'agentcfg');
  const sent = sdk.memory.getFinishedSpans();
  assert.equal(sent.length, N);
  await col.stop();

  const kept = sent.filter((s) => otelKeeps(s.spanContext().traceId, seed, 50));
  const got = canonicalFromTracesData(readJsonRecords(out));
  t.diagnostic(`kept ${got.length} of ${N}; OTel's hash_seed ${seed} at 50% keeps ${kept.length}`);
  assert.ok(kept.length > N * 0.35 && kept.length < N * 0.65, `OTel keeps ${kept.length} of ${N}`);
  const ts = new Map();
  for (const s of got) {
    assert.match(s.traceState, /^ot=rv:[0-9a-f]{14};th:8$/, `span ${s.spanId} tracestate`);
    ts.set(s.spanId, s.traceState);
  }
  const expected = canonicalFromSdk(kept).map((s) => {
    const r = new Map(s.resource);
    for (const [k, v] of [['k8s.node.name', 'node-7'], ['deployment.environment', 'from-env'],
      ['host.name', hostname()], ['os.type', 'linux'], ['deployment.environment.name', 'it-env']]) {
      if (!r.has(k)) r.set(k, ['string', v]);
    }
    const a = new Map(s.attributes);
    a.delete('http.request.header.authorization');
    a.delete('http.request.header.cookie');
    a.set('enduser.id', ['string', sha256(a.get('enduser.id')[1])]);
    return { ...s, resource: sortKV(r), attributes: sortKV(a), traceState: ts.get(s.spanId) ?? '(missing)' };
  });
  assertSameSpans(got, expected, 'agentcfg');
});
