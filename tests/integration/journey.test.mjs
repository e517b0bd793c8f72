// SPDX-License-Identifier: Apache-2.0
// User journeys across an async boundary, end to end through the real binary
// with the real OpenTelemetry JS SDK: pipeline [journey, sli, batch] -> file
// (OTLP/JSON).
//  1. Two services, two providers, two connections: `api` (OTLP/HTTP
//     protobuf) writes the head "POST /messages" (SERVER) and its PRODUCER
//     child "chat.enqueue"; `notifier` (OTLP/gRPC, a sampler that puts a
//     tracestate on every span) writes a CONSUMER "chat.process" in a NEW
//     trace linking to the producer, and a child "push.deliver". The consumer
//     is exported FIRST and must wait for its head. Every span of both traces
//     comes out with the head's attributes (renamed per config, the span's
//     own attribute winning: overwrite false) and journey.id = the head's
//     trace id; everything else (ids, times, tracestate, links, status,
//     resource, scope, the original attributes) is unchanged. Then a batch
//     consumer linking two heads (later head first) joins the EARLIEST head.
//  2. SLI post_to_push (head span in api -> push.deliver in notifier,
//     threshold 300ms, objective 99, dimension plan from the head): a
//     workload of journeys with latencies set through the SDK's
//     startTime/endTime; good/total per plan and the 5m burn rate equal what
//     the test computes from the workload.
// Synchronisation: export results, then /metrics polled with deadlines
// (journey counters, SLI counters, the file exporter's sent counter), then
// SIGTERM and the exit; never a fixed sleep.
import test from 'node:test';
import assert from 'node:assert/strict';
import { trace, ROOT_CONTEXT } from '@opentelemetry/api';
import { readJsonRecords } from './harness.mjs';
import { scrape } from './memory_limit_helpers.mjs';
import { canonicalFromSdk, canonicalFromTracesData, assertSameSpans } from './otel.mjs';
import {
  MS, hr, nowNs, SpanKind, SpanStatusCode, pipelineConfig, startJsonCollector, waitMetrics, metric,
  makeService, rewrittenAttrs,
  CHAT_SLI,
} from './journey_helpers.mjs';

const WAIT_MS = 60000;   // bound on any condition the collector should reach in well under a second
const JID = 'journey.id';
const PROPAGATE = [
  { from: 'span', keys: ['tenant.plan', 'room.type', 'room.size'] },
  { from: 'span', keys: ['client.name'], prefix: 'journey.head.' },
  { from: 'resource', keys: ['service.version'], prefix: 'journey.head.' },
];
const SLI = CHAT_SLI;
const API_VERSION = '3.1.4';
const NOTIFIER_TS = 'kn=journey-it,rojo=00f067aa0ba902b7';

function processors() {
  return {
    journey: {
      propagate: PROPAGATE, overwrite: false, journey_id_attribute: JID,
      // a consumer waits up to wait_window for its head: far above any delay here
      wait_window: '30s', root_grace: '200ms',
    },
    sli: { slis: [SLI] },
    batch: { send_batch_size: 512, timeout: '200ms' },
  };
}

async function start(t, label) {
  const r = await startJsonCollector(t, label, (dir) => pipelineConfig(dir, processors(), ['journey', 'sli', 'batch']));
  const api = makeService(r.col, { name: 'api', version: API_VERSION, transport: 'http/protobuf' });
  const notifier = makeService(r.col, { name: 'notifier', version: '0.9.0', transport: 'grpc', traceState: NOTIFIER_TS });
  t.after(() => Promise.all([api.shutdown(), notifier.shutdown()]));
  return { ...r, api, notifier };
}

// The head trace in `api`: SERVER "POST /messages" with the journey's
// attributes, and its PRODUCER child "chat.enqueue". Times in ns.
function emitHead(api, startNs, attrs) {
  const head = api.tracer.startSpan('POST /messages', {
    kind: SpanKind.SERVER, startTime: hr(startNs),
    attributes: { 'http.request.method': 'POST', 'url.path': '/messages', ...attrs },
  }, ROOT_CONTEXT);
  const producer = api.tracer.startSpan('chat.enqueue', {
    kind: SpanKind.PRODUCER, startTime: hr(startNs + 5n * MS),
    attributes: { 'messaging.system': 'rabbitmq', 'messaging.destination.name': 'chat' },
  }, trace.setSpan(ROOT_CONTEXT, head));
  producer.end(hr(startNs + 9n * MS));
  head.setStatus({ code: SpanStatusCode.OK });
  head.end(hr(startNs + 20n * MS));
  return { head, producer, startNs, attrs };
}

// The consumer trace in `notifier`: CONSUMER `name` (a new trace) linking to
// the producers, and "push.deliver" ending at deliverEndNs.
function emitConsumer(notifier, startNs, producers, deliverEndNs, { name = 'chat.process', attrs = {}, deliver = {} } = {}) {
  const consumer = notifier.tracer.startSpan(name, {
    kind: SpanKind.CONSUMER, startTime: hr(startNs),
    attributes: { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'process', ...attrs },
    links: producers.map((p, i) => ({ context: p.spanContext(), attributes: { 'messaging.link.index': i } })),
  }, ROOT_CONTEXT);
  const push = notifier.tracer.startSpan('push.deliver', {
    kind: SpanKind.CLIENT, startTime: hr(deliverEndNs - 2n * MS),
    attributes: { 'push.channel': 'apns', ...(deliver.attrs || {}) },
  }, trace.setSpan(ROOT_CONTEXT, consumer));
  if (deliver.error) push.setStatus({ code: SpanStatusCode.ERROR, message: 'push rejected' });
  push.end(hr(deliverEndNs));
  consumer.end(hr(deliverEndNs + 1n * MS));
  return { consumer, push };
}

// What a journey propagates: [renamed key, value] in config order.
function propagated(headAttrs) {
  const out = [];
  for (const k of ['tenant.plan', 'room.type', 'room.size']) if (k in headAttrs) out.push([k, headAttrs[k]]);
  if ('client.name' in headAttrs) out.push(['journey.head.client.name', headAttrs['client.name']]);
  out.push(['journey.head.service.version', API_VERSION]);
  return out;
}

const attr = (row, key) => row.attributes.filter(([k]) => k === key).map(([, v]) => v);

// ---- 1 ---------------------------------------------------------------------------------
test('journey: the head\'s attributes and journey.id cross the async boundary (real SDK, api over HTTP, notifier over gRPC)', async (t) => {
  const { col, out, api, notifier } = await start(t, 'journeyit');
  const jm = (s, name) => metric(s, `kansatsu_journey_${name}_total`, { processor: 'journey' });
  const sent = (s) => metric(s, 'kansatsu_exporter_sent_spans_total', { exporter: 'file' });
  const t0 = nowNs();

  // journey A: the consumer trace goes in first, on its own (gRPC) connection
  const a = emitHead(api, t0, { 'tenant.plan': 'gold', 'room.type': 'group', 'room.size': 12, 'client.name': 'ios' });
  const ac = emitConsumer(notifier, t0 + 30n * MS, [a.producer], t0 + 250n * MS,
    { attrs: { 'room.type': 'dm' } }); // its own room.type wins (overwrite: false)
  await notifier.flush('notifier, consumer of journey A (before its head)');
  await waitMetrics(col, (s) => metric(s, 'kansatsu_journey_traces_in_memory', { processor: 'journey' }) >= 1,
    WAIT_MS, 'the consumer trace buffered by the journey processor');
  let s = (await scrape(col)).samples;
  assert.equal(jm(s, 'traces_joined'), 0, 'nothing joined before the head arrived');
  assert.equal(jm(s, 'started'), 0, 'no journey started before the head arrived');
  assert.equal(jm(s, 'closed_without_head'), 0, 'the consumer is not given up while it waits (wait_window 30s)');

  await api.flush('api, head of journey A');
  await waitMetrics(col, (x) => jm(x, 'started') === 1 && jm(x, 'traces_joined') === 1 && sent(x) === 4,
    WAIT_MS, 'journey A: head started, consumer joined, 4 spans written');

  // journey B/C: two heads (C starts 50 ms after B), published before a batch
  // consumer that links C's producer first, then B's
  const b = emitHead(api, t0 + 1000n * MS, { 'tenant.plan': 'free', 'room.type': 'dm', 'room.size': 2, 'client.name': 'android' });
  const c = emitHead(api, t0 + 1050n * MS, { 'tenant.plan': 'pro', 'room.type': 'channel', 'room.size': 300, 'client.name': 'web' });
  await api.flush('api, heads B and C');
  await waitMetrics(col, (x) => jm(x, 'started') === 3 && sent(x) === 8, WAIT_MS, 'heads B and C published and written');
  const bc = emitConsumer(notifier, t0 + 1200n * MS, [c.producer, b.producer], t0 + 1400n * MS, { name: 'chat.process.batch' });
  await notifier.flush('notifier, batch consumer of B and C');
  s = await waitMetrics(col, (x) => jm(x, 'traces_joined') === 2 && sent(x) === 10,
    WAIT_MS, 'batch consumer joined, 10 spans written');
  assert.equal(jm(s, 'started'), 3, 'journeys started (one per head)');
  assert.equal(jm(s, 'closed_without_head'), 0, 'journeys closed without head');
  assert.equal(jm(s, 'late_spans'), 0, 'late spans');
  for (const r of ['memory']) {
    assert.equal(metric(s, 'kansatsu_journey_released_early_total', { processor: 'journey', reason: r }) || 0, 0, `released early (${r})`);
  }
  // both push.deliver spans were joined to their journey's head by the sli processor
  assert.equal(metric(s, 'kansatsu_sli_events_total', { sli: 'post_to_push' }), 2, 'SLI events (one per push.deliver)');
  assert.equal(metric(s, 'kansatsu_sli_unjoined_events_total', { sli: 'post_to_push' }), 0, 'SLI unjoined events');
  assert.equal(metric(s, 'kansatsu_sli_events_total', { sli: 'post_to_push', plan: 'free' }), 1,
    'the batch consumer is counted under the earliest head\'s plan (free)');

  await col.stop();

  // ---- the file: every span, field by field ----
  const got = canonicalFromTracesData(readJsonRecords(out));
  const journeys = new Map(); // trace id -> {id, head attrs}
  const idOf = (h) => h.head.spanContext().traceId;
  for (const h of [a, b, c]) journeys.set(idOf(h), { id: idOf(h), attrs: h.attrs });
  journeys.set(ac.consumer.spanContext().traceId, journeys.get(idOf(a)));
  journeys.set(bc.consumer.spanContext().traceId, journeys.get(idOf(b))); // B's head started first
  const expected = canonicalFromSdk([...api.memory.getFinishedSpans(), ...notifier.memory.getFinishedSpans()]).map((e) => {
    const j = journeys.get(e.traceId);
    assert.ok(j, `test bug: no journey for trace ${e.traceId}`);
    return { ...e, attributes: rewrittenAttrs(e.attributes, propagated(j.attrs), JID, j.id) };
  });
  assert.equal(expected.length, 10, 'spans the SDK ended');

  // the headline facts first, with plain messages
  const gotById = new Map(got.map((g) => [g.spanId, g]));
  const row = (span) => {
    const r = gotById.get(span.spanContext().spanId);
    assert.ok(r, `span ${span.name} (${span.spanContext().spanId}) missing from the file`);
    return r;
  };
  for (const sp of [ac.consumer, ac.push]) {
    const r = row(sp);
    assert.deepEqual(attr(r, JID), [['string', idOf(a)]], `${sp.name}: journey.id = the producer's trace id`);
    assert.deepEqual(attr(r, 'tenant.plan'), [['string', 'gold']], `${sp.name}: tenant.plan from the head`);
    assert.deepEqual(attr(r, 'journey.head.service.version'), [['string', API_VERSION]], `${sp.name}: head's service.version, renamed`);
    assert.equal(r.traceState, NOTIFIER_TS, `${sp.name}: tracestate unchanged`);
  }
  assert.deepEqual(attr(row(ac.consumer), 'room.type'), [['string', 'dm']], 'chat.process keeps its own room.type (overwrite: false)');
  for (const sp of [a.head, a.producer]) {
    assert.deepEqual(attr(row(sp), JID), [['string', idOf(a)]], `${sp.name}: the producer trace carries the same journey.id`);
  }
  for (const sp of [bc.consumer, bc.push]) {
    assert.deepEqual(attr(row(sp), JID), [['string', idOf(b)]], `${sp.name}: batch consumer joins the earliest head (B), not the first link (C)`);
    assert.deepEqual(attr(row(sp), 'tenant.plan'), [['string', 'free']], `${sp.name}: B's tenant.plan`);
  }
  // then everything: ids, times, kinds, status, links, tracestate, resource,
  // scope, and the attributes = the SDK's + exactly the documented additions
  assertSameSpans(got, expected, 'journey output');
});

// ---- 2 ---------------------------------------------------------------------------------
// Latency of a journey = push.deliver's end - the head's start (ms), chosen
// here; status/http code on push.deliver. good = success and latency <= 300.
const WORKLOAD = [
  // [latency ms, plan, push.deliver status ERROR?, http.response.status_code]
  [40, 'gold'], [120, 'free'], [299, 'gold'], [300, 'free'], [301, 'gold'],
  [450, 'free'], [1200, 'gold'], [80, 'free'], [90, 'gold', true], [60, 'free', false, 503],
  [70, 'gold', false, 404], [250, 'free'], [2500, 'free'], [150, 'gold'], [200, 'gold'],
  [310, 'gold'], [100, 'free'], [110, 'free'], [15, 'gold'], [299.999, 'free'],
];

test('sli: good/total per plan and the 5m burn rate match a workload of journeys with known latencies', async (t) => {
  const { col, api, notifier } = await start(t, 'journeyit-sli');
  const t0 = nowNs() - 120000n * MS; // spans of the last two minutes
  const expect = new Map(); // plan -> {good, total}
  let i = 0;
  for (const [ms, plan, err = false, httpCode] of WORKLOAD) {
    const start = t0 + BigInt(i++) * 3000n * MS;
    const latNs = BigInt(Math.round(ms * 1e6));
    const h = emitHead(api, start, { 'tenant.plan': plan, 'room.type': 'group', 'room.size': i, 'client.name': 'ios' });
    emitConsumer(notifier, start + 10n * MS, [h.producer], start + latNs,
      { deliver: { error: err, attrs: httpCode ? { 'http.response.status_code': httpCode } : {} } });
    const good = !err && !(httpCode >= 500) && latNs <= 300n * MS;
    const e = expect.get(plan) || { good: 0, total: 0 };
    e.total++;
    if (good) e.good++;
    expect.set(plan, e);
  }
  // every consumer goes in before any head: each must wait for its head
  await notifier.flush('notifier, all consumers');
  await api.flush('api, all heads');

  const K = WORKLOAD.length;
  const ev = (s, m) => metric(s, 'kansatsu_sli_events_total', { sli: 'post_to_push', ...m });
  const s = await waitMetrics(col, (x) => ev(x, {}) === K, WAIT_MS, `${K} SLI events`);
  assert.equal(metric(s, 'kansatsu_sli_unjoined_events_total', { sli: 'post_to_push' }), 0, 'unjoined SLI events');
  assert.equal(metric(s, 'kansatsu_journey_traces_joined_total', { processor: 'journey' }), K, 'consumers joined to their heads');
  assert.equal(metric(s, 'kansatsu_journey_closed_without_head_total', { processor: 'journey' }), 0, 'journeys closed without head');

  const close = (got, want, what) => assert.ok(got !== null && Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want)),
    `${what}: got ${got}, computed ${want}`);
  let allGood = 0;
  for (const [plan, e] of expect) {
    allGood += e.good;
    const lb = { sli: 'post_to_push', plan };
    assert.equal(ev(s, { plan }), e.total, `events_total{plan="${plan}"}`);
    assert.equal(metric(s, 'kansatsu_sli_good_events_total', lb), e.good, `good_events_total{plan="${plan}"}`);
    const burn = ((e.total - e.good) / e.total) / (1 - 99 / 100);
    close(metric(s, 'kansatsu_sli_burn_rate', { ...lb, window: '5m' }), burn, `burn_rate{plan="${plan}",window="5m"}`);
    close(metric(s, 'kansatsu_sli_burn_rate', { ...lb, window: '1h' }), burn, `burn_rate{plan="${plan}",window="1h"}`);
    close(metric(s, 'kansatsu_sli_error_budget_remaining_ratio', lb), 1 - burn, `error_budget_remaining{plan="${plan}"}`);
    assert.equal(metric(s, 'kansatsu_sli_latency_seconds_count', lb), e.total, `latency histogram count{plan="${plan}"}`);
  }
  // the workload's own totals, so a wrong table above cannot pass silently
  assert.deepEqual([K, allGood], [20, 13], 'workload: 20 journeys, 13 good');
  assert.equal(metric(s, 'kansatsu_sli_good_events_total', { sli: 'post_to_push' }), allGood, 'good events, all plans');
  // latency buckets: <= 0.25 s holds exactly the journeys of at most 250 ms
  const le250 = WORKLOAD.filter(([ms]) => ms <= 250).length;
  assert.equal(metric(s, 'kansatsu_sli_latency_seconds_bucket', { sli: 'post_to_push', le: '0.25' }), le250,
    'latency_seconds_bucket{le="0.25"}, all plans');
  await col.stop();
});
