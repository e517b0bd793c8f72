// SPDX-License-Identifier: Apache-2.0
// The attribute-editing processors end to end: `resourcedetection`,
// `resource` and `attributes` (twice: include/exclude by service, kinds,
// libraries, span names; and by resource + span attributes) in one pipeline
// [resourcedetection, resource, attributes/spans, attributes/tag, batch] ->
// file exporter (OTLP/JSON), spans from the real OpenTelemetry JS SDK over
// OTLP/HTTP protobuf. Every documented key of the three processors appears
// in the config (written for this project from the OTel docs of each key);
// `kansatsu validate` accepts it, and refuses the keys kansatsu does not
// support, naming the path. The spans that come out equal the SDK's spans
// with exactly the expected attribute edits (everything else unchanged).
// Synchronisation: export results, then the output file polled with a
// deadline; never a fixed sleep.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, makeConfig, runBin, readJsonRecords, sanitizerReport } from './harness.mjs';
import { startJsonCollector } from './journey_helpers.mjs';
import {
  trace, ROOT_CONTEXT, SpanKind, makeExporter, makeProvider, flushAndCheck,
  canonicalFromSdk, canonicalFromTracesData, assertSameSpans,
} from './otel.mjs';

const WAIT_MS = 30000;
const ENV_ATTRS = 'deployment.environment=from-env, team.name=pay%20ments,k8s.cluster.name=c%2C1';

function processors() {
  return {
    resourcedetection: {
      detectors: ['env', 'system'],
      override: false,
      timeout: '2s',
      system: {
        hostname_sources: ['os'],
        resource_attributes: {
          'host.name': { enabled: true }, 'os.type': { enabled: true }, 'host.arch': { enabled: true },
          'host.id': { enabled: false },
        },
      },
    },
    resource: {
      attributes: [
        { key: 'cloud.region', value: 'eu-west-1', action: 'upsert' },
        { key: 'deployment.environment', value: 'staging', action: 'update' },
        { key: 'service.namespace', from_attribute: 'service.name', action: 'insert' },
        { key: 'it.flag', action: 'delete' },
        { key: 'host.cpu.count', action: 'convert', converted_type: 'string' },
        { key: 'service.version', action: 'extract', pattern: '^(?P<version_major>\\d+)\\.(?P<version_minor>\\d+)' },
        { key: 'process.pid.fraction', action: 'hash' },
        { action: 'delete', pattern: '^telemetry\\.sdk\\.(language|version)$' },
        { key: 'team', from_attribute: 'team.name', default_value: 'core', action: 'insert' },
        { key: 'tier', from_attribute: 'no.such.key', default_value: 'gold', action: 'insert' },
        { key: 'never', value: 1, action: 'update' },
      ],
    },
    'attributes/spans': {
      include: {
        match_type: 'strict',
        services: ['kansatsu-it'],
        span_kinds: ['SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT'],
        libraries: [{ name: 'it-lib', version: '1.0.0' }],
      },
      exclude: { match_type: 'regexp', regexp: { cacheenabled: true, cachemaxnumentries: 100 }, span_names: ['^health'] },
      actions: [
        { key: 'user.email', action: 'hash' },
        { key: 'http.status_code', action: 'convert', converted_type: 'int' },
        { key: 'latency', action: 'convert', converted_type: 'double' },
        { key: 'db.statement', action: 'delete' },
        { action: 'hash', pattern: '^secret\\.' },
        { key: 'redacted', value: true, action: 'upsert' },
        { key: 'route.copy', from_attribute: 'http.route', action: 'insert' },
        { key: 'http.route', action: 'extract', pattern: '^/(?P<route_resource>[a-z]+)/' },
        { key: 'http.method', value: 'POST', action: 'update' },
        { key: 'ratio', value: 0.25, action: 'insert' },
        { key: 'account_id', value: 2245, action: 'INSERT' },
      ],
    },
    'attributes/tag': {
      include: {
        match_type: 'strict',
        resources: [{ key: 'deployment.environment', value: 'staging' }],
        attributes: [{ key: 'http.method' }],
      },
      actions: [{ key: 'tagged', value: 'yes', action: 'upsert' }],
    },
    batch: { send_batch_size: 512, timeout: '100ms' },
  };
}

function config(dir) {
  const c = makeConfig(dir);
  c.processors = processors();
  c.service.pipelines.traces.processors = ['resourcedetection', 'resource', 'attributes/spans', 'attributes/tag', 'batch'];
  return c;
}

function validate(dir, name, cfg) {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(cfg, null, 1)); // JSON is YAML (toYaml has no lists of maps)
  const r = runBin(['validate', '--config', path]);
  r.text = r.stdout + r.stderr;
  assert.equal(sanitizerReport(r.text), null, `sanitizer report from validate:\n${r.text}`);
  return r;
}

test('validate accepts the config with every key, and names what kansatsu refuses', () => {
  const dir = makeTempDir('attrs-validate');
  const ok = validate(dir, 'ok.yaml', config(dir));
  assert.equal(ok.code, 0, ok.text);
  const bad = [
    [(c) => { c.processors['attributes/spans'].actions[2].action = 'upsertt'; },
      /processors\.attributes\/spans\.actions\[2\]\.action: unknown action "upsertt"/],
    [(c) => { c.processors.resource.attributes[0] = { key: 'tenant', from_context: 'metadata.x-tenant', action: 'insert' }; },
      /processors\.resource\.attributes\[0\]\.from_context: "metadata\.x-tenant" is not supported/],
    [(c) => { c.processors.resourcedetection.detectors = ['env', 'ec2']; },
      /processors\.resourcedetection\.detectors\[1\]: detector "ec2" is not supported/],
    [(c) => { c.processors.resourcedetection.system.resource_attributes['host.id'].enabled = true; },
      /processors\.resourcedetection\.system\.resource_attributes\.host\.id\.enabled: .*does not detect/],
    [(c) => { c.processors['attributes/tag'].include.log_bodies = ['x']; },
      /processors\.attributes\/tag\.include\.log_bodies: not valid for spans/],
    [(c) => { c.processors.resource.attributes[5].pattern = '^(\\d+)'; },
      /processors\.resource\.attributes\[5\]\.pattern: .*unnamed group/],
  ];
  bad.forEach(([edit, re], i) => {
    const c = config(dir);
    edit(c);
    const r = validate(dir, `bad-${i}.yaml`, c);
    assert.notEqual(r.code, 0, `bad config ${i} validated:\n${r.text}`);
    assert.match(r.text, re, `bad config ${i}`);
  });
});

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const leDouble = (d) => { const b = Buffer.alloc(8); b.writeDoubleLE(d); return b; };
const ARCH = { x64: 'amd64', arm64: 'arm64', ia32: 'x86', arm: 'arm32', s390x: 's390x', ppc64: 'ppc64' };

// The resource the pipeline must produce from the SDK's (canonical [k, [type, v]] list).
function expectedResource(res) {
  const m = new Map(res.map(([k, v]) => [k, v]));
  // resourcedetection, override false: only keys the resource lacks
  for (const [k, v] of [['team.name', 'pay ments'], ['k8s.cluster.name', 'c,1'],
    ['host.name', hostname()], ['os.type', 'linux'], ['host.arch', ARCH[process.arch] || process.arch]]) {
    if (!m.has(k)) m.set(k, ['string', v]);
  }
  assert.ok(m.has('deployment.environment'), 'the SDK resource has deployment.environment');
  m.set('cloud.region', ['string', 'eu-west-1']);
  m.set('deployment.environment', ['string', 'staging']);
  m.set('service.namespace', m.get('service.name'));
  m.delete('it.flag');
  m.set('host.cpu.count', ['string', String(m.get('host.cpu.count')[1])]);
  const ver = /^(\d+)\.(\d+)/.exec(m.get('service.version')[1]);
  m.set('version_major', ['string', ver[1]]);
  m.set('version_minor', ['string', ver[2]]);
  m.set('process.pid.fraction', ['string', sha256(leDouble(m.get('process.pid.fraction')[1]))]);
  m.delete('telemetry.sdk.language');
  m.delete('telemetry.sdk.version');
  m.set('team', ['string', 'pay ments']);
  m.set('tier', ['string', 'gold']);
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function expectedSpan(s, resource) {
  const a = new Map(s.attributes.map(([k, v]) => [k, v]));
  const selected = ['GET /users/42', 'SELECT users'].includes(s.name) && s.scope.name === 'it-lib';
  if (selected) {
    if (a.has('user.email')) a.set('user.email', ['string', sha256(Buffer.from(a.get('user.email')[1]))]);
    // a value that does not convert is left as it is (OTel's converter)
    const sc = a.get('http.status_code');
    if (sc && /^[+-]?\d+$/.test(sc[1])) a.set('http.status_code', ['int', String(BigInt(sc[1]))]);
    const lat = a.get('latency');
    if (lat && !Number.isNaN(Number(lat[1]))) a.set('latency', ['double', Number(lat[1])]);
    a.delete('db.statement');
    for (const k of [...a.keys()]) if (/^secret\./.test(k)) a.set(k, ['string', sha256(Buffer.from(a.get(k)[1]))]);
    a.set('redacted', ['bool', true]);
    if (a.has('http.route')) {
      if (!a.has('route.copy')) a.set('route.copy', a.get('http.route'));
      const m = /^\/([a-z]+)\//.exec(a.get('http.route')[1]);
      if (m) a.set('route_resource', ['string', m[1]]);
    }
    if (a.has('http.method')) a.set('http.method', ['string', 'POST']);
    a.set('ratio', ['double', 0.25]);
    a.set('account_id', ['int', '2245']);
  }
  // attributes/tag matches deployment.environment=staging: the value the
  // resource processor wrote earlier in the pipeline
  if (a.has('http.method')) a.set('tagged', ['string', 'yes']);
  const attributes = [...a.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  return { ...s, attributes, resource };
}

test('spans from the JS SDK come out with exactly the expected attributes', async (t) => {
  process.env.OTEL_RESOURCE_ATTRIBUTES = ENV_ATTRS;
  const { col, out: path } = await startJsonCollector(t, 'attrs', config);
  delete process.env.OTEL_RESOURCE_ATTRIBUTES;
  assert.match(col.stderr, /processors\.resourcedetection: detected 6 resource attributes: deployment\.environment=from-env, team\.name=pay ments, k8s\.cluster\.name=c,1, host\.name=/);
  const sdk = makeProvider(makeExporter('http/protobuf', col));
  t.after(() => sdk.provider.shutdown());
  const lib = sdk.provider.getTracer('it-lib', '1.0.0');
  const other = sdk.provider.getTracer('other-lib', '2.0.0');
  const server = lib.startSpan('GET /users/42', {
    kind: SpanKind.SERVER,
    attributes: {
      'user.email': 'ann@example.com', 'http.status_code': '200', 'latency': '12.5', 'db.statement': 'select 1',
      'secret.token': 'abc', 'secret.n': 'x', 'http.route': '/users/:id', 'http.method': 'GET', 'keep': 7,
    },
  }, ROOT_CONTEXT);
  const ctx = trace.setSpan(ROOT_CONTEXT, server);
  lib.startSpan('SELECT users', {
    kind: SpanKind.CLIENT, attributes: { 'db.statement': 'select * from users', 'http.status_code': 'oops', 'route.copy': 'mine', 'http.route': '/Users/' },
  }, ctx).end();
  lib.startSpan('health.probe', { kind: SpanKind.CLIENT, attributes: { 'db.statement': 'kept', 'http.method': 'GET' } }, ctx).end();
  lib.startSpan('compute', { kind: SpanKind.INTERNAL, attributes: { 'db.statement': 'kept too' } }, ctx).end();
  other.startSpan('GET /other', { kind: SpanKind.SERVER, attributes: { 'user.email': 'bob@example.com', 'http.method': 'GET' } }, ROOT_CONTEXT).end();
  server.end();
  await flushAndCheck(sdk, 'attrs');
  const spans = sdk.memory.getFinishedSpans();
  assert.equal(spans.length, 5);

  const deadline = Date.now() + WAIT_MS;
  let out = [];
  while (Date.now() < deadline) {
    out = canonicalFromTracesData(readJsonRecords(path));
    if (out.length >= spans.length) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(out.length, spans.length, `spans in ${path} before the deadline`);
  const sdkSpans = canonicalFromSdk(spans);
  const resource = expectedResource(sdkSpans[0].resource);
  assertSameSpans(out, sdkSpans.map((s) => expectedSpan(s, resource)), 'attrs');
  await col.stop();
  col.checkSanitizers();
});
