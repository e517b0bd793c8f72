// SPDX-License-Identifier: Apache-2.0
// OTTL end to end: the `filter` and `transform` processors and the tail
// sampler's `ottl_condition` policy in the real binary, fed by the real
// OpenTelemetry JS SDK over OTLP/HTTP protobuf, output through the file
// exporter (OTLP/JSON). Configs are modelled on the OpenTelemetry
// Collector's documentation examples (filter: the OTTL span / spanevent
// example; transform: basic and advanced config, rename, combine, password
// redaction, replace_match; tail_sampling: the README's full example for
// `validate`, and ottl_condition inside drop / and for decisions), written
// for this project. What comes out must equal the SDK's spans with exactly
// the documented edits and drops; everything else is compared field by
// field. Synchronisation: export results and /metrics counters polled with
// a deadline; never a fixed sleep.
import test from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { makeTempDir, runBin, readJsonRecords, sanitizerReport } from './harness.mjs';
import { startJsonCollector, pipelineConfig, waitMetrics, metric } from './journey_helpers.mjs';
import {
  trace, ROOT_CONTEXT, SpanKind, makeExporter, canonicalFromSdk, canonicalFromTracesData, assertSameSpans,
} from './otel.mjs';

const WAIT_MS = 30000;

// An SDK whose spans go to the collector and to memory (what was sent).
function sdkFor(col, resourceAttrs) {
  const memory = new InMemorySpanExporter();
  const inner = makeExporter('http/protobuf', col);
  const results = [];
  const recording = {
    export(spans, cb) { inner.export(spans, (r) => { results.push({ n: spans.length, ...r }); cb(r); }); },
    shutdown() { return inner.shutdown(); },
    forceFlush() { return inner.forceFlush ? inner.forceFlush() : Promise.resolve(); },
  };
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resourceAttrs),
    spanProcessors: [new SimpleSpanProcessor(recording), new SimpleSpanProcessor(memory)],
  });
  return {
    provider, memory,
    async flush(label) {
      await provider.forceFlush();
      const failed = results.filter((r) => r.code !== ExportResultCode.SUCCESS);
      assert.equal(failed.length, 0, `${label}: ${failed.length} export(s) failed`);
      assert.equal(results.reduce((a, r) => a + r.n, 0), memory.getFinishedSpans().length, `${label}: exported`);
    },
  };
}

async function waitSpans(path, n, label) {
  const deadline = Date.now() + WAIT_MS;
  let out = [];
  while (Date.now() < deadline) {
    out = canonicalFromTracesData(readJsonRecords(path));
    if (out.length >= n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(out.length, n, `${label}: spans in ${path} before the deadline`);
  return out;
}

const sortKV = (m) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

// Go's path/filepath.Match for the one glob used here.
const globUserList = (s) => /^\/user\/[^/]*\/list\/[^/]*$/.test(s);

// ---- filter + transform -------------------------------------------------------

const FILTER = {
  error_mode: 'ignore',
  traces: {
    span: [
      'attributes["container.name"] == "app_container_1"',
      'resource.attributes["host.name"] == "localhost"',
      'name == "app_3"',
    ],
    spanevent: [
      'attributes["grpc"] == true',
      'IsMatch(name, ".*grpc.*")',
    ],
  },
};

const TRANSFORM = {
  error_mode: 'ignore',
  trace_statements: [
    {
      context: 'span',
      conditions: ['kind == SPAN_KIND_SERVER'],
      statements: [
        'set(status.code, STATUS_CODE_OK) where attributes["http.path"] == "/health"',
        'replace_match(attributes["http.target"], "/user/*/list/*", "/user/{userId}/list/{listId}")',
      ],
    },
    'set(span.attributes["test"], "pass") where span.attributes["test"] == nil',
    'keep_keys(span.attributes, ["service.namespace", "cloud.region", "process.command_line", "http.target", "test"])',
    'replace_pattern(span.attributes["process.command_line"], "password\\\\=[^\\\\s]*(\\\\s?)", "password=***")',
    'limit(span.attributes, 100, [])',
    'truncate_all(span.attributes, 4096)',
    'set(resource.attributes["namespace"], resource.attributes["k8s.namespace.name"])',
    'delete_key(resource.attributes, "k8s.namespace.name")',
    'set(resource.attributes["test"], Concat([resource.attributes["foo"], resource.attributes["bar"]], " "))',
    'replace_all_patterns(resource.attributes, "key", "^team\\\\.", "owner.")',
    'set(spanevent.attributes["seen"], true) where spanevent.name == "exception"',
  ],
};

const RESOURCE = {
  'service.name': 'ottl-it', 'host.name': 'h-1', 'k8s.namespace.name': 'shop', foo: 'a', bar: 'b', 'team.name': 'pay',
};

function expectedResource(res) {
  const m = new Map(res);
  m.set('namespace', m.get('k8s.namespace.name'));
  m.delete('k8s.namespace.name');
  m.set('test', ['string', `${m.get('foo')[1]} ${m.get('bar')[1]}`]);
  m.set('owner.name', m.get('team.name'));
  m.delete('team.name');
  return sortKV(m);
}

// The documented meaning of FILTER and TRANSFORM on one SDK span (null: dropped).
function expectedSpan(s, resource) {
  const a = new Map(s.attributes);
  const get = (k) => (a.has(k) ? a.get(k)[1] : undefined);
  if (get('container.name') === 'app_container_1' || s.name === 'app_3') return null;
  const events = s.events
    .filter((e) => !/.*grpc.*/.test(e.name) && !e.attributes.some(([k, v]) => k === 'grpc' && v[0] === 'bool' && v[1] === true))
    .map((e) => (e.name === 'exception' ? { ...e, attributes: sortKV(new Map([...e.attributes, ['seen', ['bool', true]]])) } : e));
  let status = s.status;
  if (s.kind === 2) {
    if (get('http.path') === '/health') status = { code: 1, message: s.status.message };
    if (get('http.target') !== undefined && globUserList(get('http.target'))) a.set('http.target', ['string', '/user/{userId}/list/{listId}']);
  }
  if (!a.has('test')) a.set('test', ['string', 'pass']);
  const keep = ['service.namespace', 'cloud.region', 'process.command_line', 'http.target', 'test'];
  for (const k of [...a.keys()]) if (!keep.includes(k)) a.delete(k);
  if (a.has('process.command_line')) {
    a.set('process.command_line', ['string', a.get('process.command_line')[1].replace(/password=[^\s]*(\s?)/g, 'password=***')]);
  }
  return { ...s, attributes: sortKV(a), events, status, resource };
}

test('filter and transform: OTel documentation examples on spans from the JS SDK', async (t) => {
  const { col, out } = await startJsonCollector(t, 'ottl-ft', (dir) => pipelineConfig(dir,
    { 'filter/ottl': FILTER, transform: TRANSFORM, batch: { send_batch_size: 512, timeout: '50ms' } },
    ['filter/ottl', 'transform', 'batch']));
  const sdk = sdkFor(col, RESOURCE);
  const tracer = sdk.provider.getTracer('it-lib', '1.0.0');
  const root = tracer.startSpan('GET /user/7/list/9', {
    kind: SpanKind.SERVER,
    attributes: {
      'http.target': '/user/7/list/9', 'process.command_line': 'run --password=hunter2 --x',
      'container.name': 'app_container_2', 'http.path': '/health', 'extra.noise': 'x', 'service.namespace': 'ns',
    },
  }, ROOT_CONTEXT);
  root.addEvent('grpc.call', { n: 1 });
  root.addEvent('cache.miss', { grpc: true });
  root.addEvent('exception', { 'exception.type': 'E' });
  const ctx = trace.setSpan(ROOT_CONTEXT, root);
  tracer.startSpan('app_3', { kind: SpanKind.INTERNAL }, ctx).end();
  tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'container.name': 'app_container_1' } }, ctx).end();
  const ok = tracer.startSpan('GET /other', {
    kind: SpanKind.SERVER, attributes: { test: 'already', 'http.target': '/user/1/x', 'cloud.region': 'eu', 'x.y': 1 },
  }, ctx);
  ok.addEvent('log', { grpc: false });
  ok.end();
  tracer.startSpan('queue.send', { kind: SpanKind.PRODUCER, attributes: { 'http.path': '/health', 'process.command_line': 'password=a' } }, ctx).end();
  root.end();
  await sdk.flush('ottl-ft');

  const sdkSpans = canonicalFromSdk(sdk.memory.getFinishedSpans());
  assert.equal(sdkSpans.length, 5);
  const resource = expectedResource(sdkSpans[0].resource);
  const expected = sdkSpans.map((s) => expectedSpan(s, resource)).filter((s) => s);
  assert.equal(expected.length, 3);
  const got = await waitSpans(out, expected.length, 'ottl-ft');
  assertSameSpans(got, expected, 'ottl-ft');
  // and the drops are counted per reason
  await waitMetrics(col, (s) =>
    metric(s, 'kansatsu_processor_filter_spans_dropped_total', { processor: 'filter/ottl', reason: 'span' }) === 2
    && metric(s, 'kansatsu_processor_filter_span_events_dropped_total', { processor: 'filter/ottl' }) === 2,
  WAIT_MS, 'filter drop counters', ['kansatsu_processor_']);
  await sdk.provider.shutdown();
  await col.stop();
  col.checkSanitizers();
});

test('filter trace_conditions (the newer shape, contexts inferred) drop whole resources', async (t) => {
  const { col, out } = await startJsonCollector(t, 'ottl-tc', (dir) => pipelineConfig(dir, {
    filter: {
      trace_conditions: [
        'resource.attributes["service.name"] == "noisy"',
        'span.status.code != STATUS_CODE_ERROR and (span.end_time - span.start_time) <= Duration("1ms") and span.attributes["http.route"] != "/api/payment"',
        { context: 'span', conditions: ['IsRootSpan() and IsMatch(span.attributes["url.path"], "^/(health|metrics)(/|$)")'] },
      ],
    },
  }, ['filter']));
  const noisy = sdkFor(col, { 'service.name': 'noisy' });
  const api = sdkFor(col, { 'service.name': 'api' });
  const now = Date.now();
  const at = (ms) => now + ms;
  noisy.provider.getTracer('n').startSpan('anything', { startTime: at(0) }, ROOT_CONTEXT).end(at(50));
  const tr = api.provider.getTracer('a');
  tr.startSpan('fast', { startTime: at(0) }, ROOT_CONTEXT).end(at(0.5));                       // dropped: <= 1ms
  tr.startSpan('fast payment', { startTime: at(0), attributes: { 'http.route': '/api/payment' } }, ROOT_CONTEXT).end(at(0.5));
  tr.startSpan('slow', { startTime: at(0) }, ROOT_CONTEXT).end(at(20));
  tr.startSpan('probe', { startTime: at(0), attributes: { 'url.path': '/health/live' } }, ROOT_CONTEXT).end(at(20));
  await noisy.flush('noisy');
  await api.flush('api');
  const kept = canonicalFromSdk(api.memory.getFinishedSpans()).filter((s) => ['fast payment', 'slow'].includes(s.name));
  const got = await waitSpans(out, 2, 'ottl-tc');
  assertSameSpans(got, kept, 'ottl-tc');
  await waitMetrics(col, (s) =>
    metric(s, 'kansatsu_processor_filter_spans_dropped_total', { processor: 'filter', reason: 'resource' }) === 1
    && metric(s, 'kansatsu_processor_filter_spans_dropped_total', { processor: 'filter', reason: 'span' }) === 2,
  WAIT_MS, 'filter drop counters', ['kansatsu_processor_']);
  await noisy.provider.shutdown();
  await api.provider.shutdown();
  await col.stop();
  col.checkSanitizers();
});

// ---- tail sampling ---------------------------------------------------------------

// The OTel tail_sampling README's full example (every policy type), written for this project.
const README_POLICIES = [
  { name: 'test-policy-1', type: 'always_sample' },
  { name: 'test-policy-2', type: 'latency', latency: { threshold_ms: 5000, upper_threshold_ms: 10000 } },
  { name: 'test-policy-3', type: 'numeric_attribute', numeric_attribute: { key: 'key1', min_value: 50, max_value: 100 } },
  { name: 'test-policy-4', type: 'probabilistic', probabilistic: { sampling_percentage: 10 } },
  { name: 'test-policy-5', type: 'status_code', status_code: { status_codes: ['ERROR', 'UNSET'] } },
  { name: 'test-policy-6', type: 'string_attribute', string_attribute: { key: 'key2', values: ['value1', 'value2'] } },
  { name: 'test-policy-7', type: 'string_attribute', string_attribute: { key: 'key2', values: ['value1', 'val*'], enabled_regex_matching: true, cache_max_size: 10 } },
  { name: 'test-policy-8', type: 'rate_limiting', rate_limiting: { spans_per_second: 35 } },
  { name: 'test-policy-9', type: 'bytes_limiting', bytes_limiting: { bytes_per_second: 1024000, burst_capacity: 2048000 } },
  { name: 'test-policy-10', type: 'span_count', span_count: { min_spans: 2, max_spans: 20 } },
  { name: 'test-policy-11', type: 'trace_state', trace_state: { key: 'key3', values: ['value1', 'value2'] } },
  { name: 'test-policy-12', type: 'boolean_attribute', boolean_attribute: { key: 'key4', value: true } },
  {
    name: 'test-policy-13', type: 'ottl_condition',
    ottl_condition: {
      error_mode: 'ignore',
      span: ['attributes["test_attr_key_1"] == "test_attr_val_1"', 'attributes["test_attr_key_2"] != "test_attr_val_1"'],
      spanevent: ['name != "test_span_event_name"', 'attributes["test_event_attr_key_2"] != "test_event_attr_val_1"'],
    },
  },
  {
    name: 'and-policy-1', type: 'and',
    and: {
      and_sub_policy: [
        { name: 'test-and-policy-1', type: 'numeric_attribute', numeric_attribute: { key: 'key1', min_value: 50, max_value: 100 } },
        { name: 'test-and-policy-2', type: 'string_attribute', string_attribute: { key: 'key2', values: ['value1', 'value2'] } },
      ],
    },
  },
  {
    name: 'drop-policy-1', type: 'drop',
    drop: {
      drop_sub_policy: [
        { name: 'test-drop-policy-1', type: 'string_attribute', string_attribute: { key: 'url.path', values: ['\\/health', '\\/metrics'], enabled_regex_matching: true } },
      ],
    },
  },
  {
    name: 'composite-policy-1', type: 'composite',
    composite: {
      max_total_spans_per_second: 1000,
      policy_order: ['test-composite-policy-1', 'test-composite-policy-2', 'test-composite-policy-3'],
      composite_sub_policy: [
        { name: 'test-composite-policy-1', type: 'numeric_attribute', numeric_attribute: { key: 'key1', min_value: 50 } },
        { name: 'test-composite-policy-2', type: 'string_attribute', string_attribute: { key: 'key2', values: ['value1', 'value2'] } },
        { name: 'test-composite-policy-3', type: 'always_sample' },
      ],
      rate_allocation: [{ policy: 'test-composite-policy-1', percent: 50 }, { policy: 'test-composite-policy-2', percent: 25 }],
    },
  },
];

function validate(dir, name, cfg) {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(cfg, null, 1));
  const r = runBin(['validate', '--config', path]);
  r.text = r.stdout + r.stderr;
  assert.equal(sanitizerReport(r.text), null, `sanitizer report from validate:\n${r.text}`);
  return r;
}

test('validate: the tail_sampling README example, filter and transform; errors name path, statement and token', () => {
  const dir = makeTempDir('ottl-validate');
  const tail = {
    decision_wait: '10s', num_traces: 100, expected_new_traces_per_sec: 10,
    decision_cache: { sampled_cache_size: 100000, non_sampled_cache_size: 100000 },
    policies: README_POLICIES,
  };
  const ok = validate(dir, 'ok.yaml', pipelineConfig(dir, { tail_sampling: tail, 'filter/ottl': FILTER, transform: TRANSFORM },
    ['filter/ottl', 'transform', 'tail_sampling']));
  assert.equal(ok.code, 0, ok.text);
  const bad = [
    [{ transform: { trace_statements: ['set(span.attributes["a"], ParseJSON(span.name))'] } },
      /processors\.transform\.trace_statements\[0\]: statement "set\(span\.attributes\[\\"a\\"\], ParseJSON\(span\.name\)\)": unknown converter "ParseJSON" \(not supported by kansatsu\) at column 27 \("ParseJSON\(span\.name\)"\)/],
    [{ filter: { traces: { span: ['attributes["a"] == "b" and'] } } },
      /processors\.filter\.traces\.span\[0\]: condition ".*": expected a value, got end of input at the end/],
    [{ filter: { traces: { spanevent: ['events == nil'] } } },
      /processors\.filter\.traces\.spanevent\[0\]: condition "events == nil": path "events" is not supported by kansatsu in the spanevent context at column 1/],
    [{ tail_sampling: { policies: [{ name: 'x', type: 'ottl_condition', ottl_condition: { span: ['cache["k"] == 1'] } }] } },
      /processors\.tail_sampling\.policies\[0\]\.ottl_condition\.span\[0\]: condition "cache\[\\"k\\"\] == 1": path "cache" is not supported by kansatsu/],
  ];
  bad.forEach(([procs, re], i) => {
    const r = validate(dir, `bad-${i}.yaml`, pipelineConfig(dir, procs, Object.keys(procs)));
    assert.notEqual(r.code, 0, `bad config ${i} validated:\n${r.text}`);
    assert.match(r.text, re, `bad config ${i}`);
  });
});

test('tail_sampling: ottl_condition samples on spans and span events, also inside drop and and', async (t) => {
  const tail = {
    decision_wait: '300ms',
    policies: [
      { name: 'forced', type: 'ottl_condition', ottl_condition: { error_mode: 'ignore', span: ['attributes["app.force_sample"] == true'], spanevent: ['name == "exception"'] } },
      { name: 'no-health', type: 'drop', drop: { drop_sub_policy: [{ name: 'health', type: 'ottl_condition', ottl_condition: { span: ['IsMatch(attributes["url.path"], "^/health")'] } }] } },
      {
        name: 'slow-checkout', type: 'and',
        and: { and_sub_policy: [
          { name: 'checkout', type: 'ottl_condition', ottl_condition: { span: ['attributes["http.route"] == "/checkout"'] } },
          { name: 'slow', type: 'latency', latency: { threshold_ms: 100 } },
        ] },
      },
    ],
  };
  const { col, out } = await startJsonCollector(t, 'ottl-tail', (dir) => pipelineConfig(dir,
    { tail_sampling: tail, batch: { send_batch_size: 512, timeout: '50ms' } }, ['tail_sampling', 'batch']));
  const sdk = sdkFor(col, { 'service.name': 'shop' });
  const tr = sdk.provider.getTracer('shop-lib');
  const now = Date.now();
  const traceOf = (tag, { rootAttrs = {}, childAttrs = {}, event = null, ms = 10 }) => {
    const root = tr.startSpan(`${tag} root`, { kind: SpanKind.SERVER, attributes: rootAttrs, startTime: now }, ROOT_CONTEXT);
    const child = tr.startSpan(`${tag} child`, { attributes: childAttrs, startTime: now + 1 }, trace.setSpan(ROOT_CONTEXT, root));
    if (event) child.addEvent(event, {}, now + 2);
    child.end(now + 3);
    root.end(now + ms);
  };
  traceOf('A', { rootAttrs: { 'app.force_sample': true } });                       // sampled: span condition
  traceOf('B', { event: 'exception' });                                             // sampled: spanevent condition
  traceOf('C', { event: 'log' });                                                   // not sampled
  traceOf('D', { rootAttrs: { 'app.force_sample': true }, childAttrs: { 'url.path': '/health/ready' } }); // dropped: drop wins
  traceOf('E', { rootAttrs: { 'http.route': '/checkout' }, ms: 250 });              // sampled: and(ottl, latency)
  traceOf('F', { rootAttrs: { 'http.route': '/checkout' }, ms: 20 });               // not sampled: too fast
  await sdk.flush('ottl-tail');
  await waitMetrics(col, (s) =>
    metric(s, 'kansatsu_tail_traces_total', { decision: 'sampled' }) === 3
    && metric(s, 'kansatsu_tail_traces_total', { decision: 'not_sampled' }) === 3,
  WAIT_MS, 'tail decisions', ['kansatsu_tail_traces_total', 'kansatsu_tail_policy']);
  const expected = canonicalFromSdk(sdk.memory.getFinishedSpans()).filter((s) => /^[ABE] /.test(s.name));
  const got = await waitSpans(out, 6, 'ottl-tail');
  assertSameSpans(got, expected, 'ottl-tail');
  await sdk.provider.shutdown();
  await col.stop();
  col.checkSanitizers();
});
