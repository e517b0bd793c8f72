// SPDX-License-Identifier: Apache-2.0
// Journeys across a fleet of collectors that share journey heads through a
// real Redis (journey.registry.redis), with the real OpenTelemetry JS SDK:
//  1. Two sidecars: `api` (http/protobuf) reports to collector A, `notifier`
//     (gRPC) to collector B. The notifier's consumer traces are exported
//     FIRST, so B must wait, look their links up in Redis and find the heads
//     A wrote there. Every notifier span comes out of B with the head's
//     attributes and journey.id = the head's trace id; the SLI post_to_push
//     (head in api -> push.deliver in notifier), summed over A and B, equals
//     the good/total computed here from the workload; B counted every
//     journey once (no unjoined events); Redis saw one SET per api trace and
//     MGETs per shard round, never per span.
//  2. A three-hop chain over three collectors (api -> worker -> notifier,
//     each hop a PRODUCER -> CONSUMER link into a new trace): exported last
//     hop first, the notifier's spans resolve to the FIRST head.
//  3. An agent -> loadbalancing (routing_key traceID) -> three sampling
//     instances: a consumer trace usually lands on another instance than its
//     head; with the registry every notifier span still gets its head's
//     attributes and the SLI summed over the instances is exact.
//  5. Shutdown: a consumer still waiting for its head (root_grace longer
//     than the test) when its collector is stopped is joined all the same:
//     the last flush round asks Redis for the heads of the parked traces.
//  4. Redis stopped mid-run, then started again: every acknowledged span is
//     still exported; journeys whose consumers waited while Redis was down
//     are closed without head with reason registry_unavailable; once Redis
//     is back (kansatsu_journey_registry_up = 1 again) journeys resolve again.
// Synchronisation: export results, /metrics polled with deadlines, Redis's
// ready line and exit; never a fixed sleep.
import test from 'node:test';
import assert from 'node:assert/strict';
import { trace, ROOT_CONTEXT } from '@opentelemetry/api';
import { readJsonRecords, httpGet } from './harness.mjs';
import { canonicalFromTracesData } from './otel.mjs';
import {
  MS, hr, nowNs, SpanKind, SpanStatusCode, pipelineConfig, startJsonCollector, waitMetrics, metric, makeService,
  CHAT_SLI,
} from './journey_helpers.mjs';
import { startRedis } from './redis_helpers.mjs';
import { startAgent } from './tier_helpers.mjs';
import { scrape, pollUntil } from './memory_limit_helpers.mjs';

const WAIT_MS = 60000;
const JID = 'journey.id';
const SLI = CHAT_SLI;

function processors(redis, { waitWindow = '30s', rootGrace = '100ms' } = {}) {
  return {
    journey: {
      propagate: [{ from: 'span', keys: ['tenant.plan', 'room.type'] }],
      journey_id_attribute: JID,
      wait_window: waitWindow,
      root_grace: rootGrace,
      registry: { redis: { endpoint: `127.0.0.1:${redis.port}`, key_prefix: 'kit:j:', ttl: '10m', timeout: '500ms' } },
    },
    sli: { slis: [SLI] },
    batch: { send_batch_size: 512, timeout: '100ms' },
  };
}

async function collector(t, label, redis, opts) {
  return startJsonCollector(t, label, (dir) => pipelineConfig(dir, processors(redis, opts), ['journey', 'sli', 'batch']));
}

function service(t, col, name, transport) {
  const s = makeService(col, { name, version: '1.0.0', transport });
  t.after(() => s.shutdown());
  return s;
}

// api: SERVER "POST /messages" (the head) and its PRODUCER child.
function emitHead(api, startNs, attrs) {
  const head = api.tracer.startSpan('POST /messages', {
    kind: SpanKind.SERVER, startTime: hr(startNs), attributes: { 'url.path': '/messages', ...attrs },
  }, ROOT_CONTEXT);
  const producer = api.tracer.startSpan('chat.enqueue', { kind: SpanKind.PRODUCER, startTime: hr(startNs + 2n * MS) },
    trace.setSpan(ROOT_CONTEXT, head));
  producer.end(hr(startNs + 4n * MS));
  head.end(hr(startNs + 10n * MS));
  return { head, producer };
}

// A consumer trace linking to `link`; with `produce`, it also enqueues for
// the next hop (a PRODUCER child); with `deliverEndNs`, a push.deliver child.
function emitHop(svc, startNs, link, { produce = false, deliverEndNs = null, error = false } = {}) {
  const consumer = svc.tracer.startSpan('chat.process', {
    kind: SpanKind.CONSUMER, startTime: hr(startNs), links: [{ context: link.spanContext() }],
  }, ROOT_CONTEXT);
  const ctx = trace.setSpan(ROOT_CONTEXT, consumer);
  let producer = null;
  let end = startNs + 5n * MS;
  if (produce) {
    producer = svc.tracer.startSpan('chat.forward', { kind: SpanKind.PRODUCER, startTime: hr(startNs + 1n * MS) }, ctx);
    producer.end(hr(startNs + 3n * MS));
  }
  if (deliverEndNs !== null) {
    const push = svc.tracer.startSpan('push.deliver', { kind: SpanKind.CLIENT, startTime: hr(deliverEndNs - 1n * MS) }, ctx);
    if (error) push.setStatus({ code: SpanStatusCode.ERROR, message: 'rejected' });
    push.end(hr(deliverEndNs));
    end = deliverEndNs;
  }
  consumer.end(hr(end + 1n * MS));
  return { consumer, producer };
}

const attrOf = (span, key) => span.attributes.filter(([k]) => k === key).map(([, v]) => v);
const spansOf = (out) => canonicalFromTracesData(readJsonRecords(out));
const jm = (s, name, m = {}) => metric(s, `kansatsu_journey_${name}`, { processor: 'journey', ...m });
const sent = (s) => metric(s, 'kansatsu_exporter_sent_spans_total', { exporter: 'file' });

// ---- 1 ---------------------------------------------------------------------------------
test('fleet: two sidecars share journey heads through Redis; the SLI is counted once over the fleet', async (t) => {
  const redis = await startRedis(t, 'fleet-redis');
  const a = await collector(t, 'fleet-a', redis);
  const b = await collector(t, 'fleet-b', redis);
  const api = service(t, a.col, 'api', 'http/protobuf');
  const notifier = service(t, b.col, 'notifier', 'grpc');

  const N = 60;
  const t0 = nowNs() - 60000n * MS;
  const expected = new Map(); // head trace id -> {plan, room}
  const perPlan = new Map();  // plan -> {good, total}
  for (let i = 0; i < N; i++) {
    const start = t0 + BigInt(i) * 500n * MS;
    const plan = i % 3 === 0 ? 'gold' : 'free';
    const latMs = [50, 250, 450, 120, 900][i % 5];
    const error = i % 7 === 0;
    const h = emitHead(api, start, { 'tenant.plan': plan, 'room.type': `r${i}` });
    emitHop(notifier, start + 5n * MS, h.producer, { deliverEndNs: start + BigInt(latMs) * MS, error });
    expected.set(h.head.spanContext().traceId, { plan, room: `r${i}` });
    const e = perPlan.get(plan) || { good: 0, total: 0 };
    e.total++;
    if (!error && latMs <= 300) e.good++;
    perPlan.set(plan, e);
  }
  // consumers first: B must look every head up in Redis and wait for it
  await notifier.flush('notifier (consumers, before their heads)');
  await waitMetrics(b.col, (s) => jm(s, 'traces_in_memory') === N, WAIT_MS, 'B buffers the consumer traces');
  await api.flush('api (heads)');

  const notifierSpans = notifier.memory.getFinishedSpans().length;
  const apiSpans = api.memory.getFinishedSpans().length;
  const sb = await waitMetrics(b.col, (s) => sent(s) === notifierSpans && jm(s, 'traces_in_memory') === 0,
    WAIT_MS, `B exports all ${notifierSpans} notifier spans`);
  const sa = await waitMetrics(a.col, (s) => sent(s) === apiSpans, WAIT_MS, `A exports all ${apiSpans} api spans`);

  assert.equal(jm(sb, 'traces_joined_total'), N, 'B: every consumer trace joined its head');
  assert.equal(jm(sb, 'closed_without_head_total'), 0, 'B: journeys closed without head');
  assert.equal(jm(sa, 'started_total'), N, 'A: every api trace started a journey');
  assert.equal(jm(sa, 'registry_writes_total', { result: 'ok' }), N, 'A: one registry entry per api trace');
  assert.equal(jm(sb, 'registry_writes_total', {}), 0, 'B: consumer traces without a PRODUCER span write nothing');
  assert.ok(jm(sb, 'registry_lookups_total', { result: 'hit' }) >= N, 'B: every head found in Redis');
  assert.equal(jm(sb, 'registry_lookups_total', { result: 'error' }), 0, 'B: registry errors');
  assert.equal(jm(sa, 'registry_up'), 1, 'A: registry up');

  // every notifier span carries its head's attributes and journey id
  const got = spansOf(b.out);
  assert.equal(got.length, notifierSpans, 'spans in B\'s file');
  for (const sp of got) {
    const jid = attrOf(sp, JID);
    assert.equal(jid.length, 1, `${sp.name} ${sp.spanId}: one journey.id`);
    const head = expected.get(jid[0][1]);
    assert.ok(head, `${sp.name} ${sp.spanId}: journey.id ${jid[0][1]} is an api head trace`);
    assert.deepEqual(attrOf(sp, 'tenant.plan'), [['string', head.plan]], `${sp.name}: tenant.plan`);
    assert.deepEqual(attrOf(sp, 'room.type'), [['string', head.room]], `${sp.name}: room.type`);
  }
  assert.equal(new Set(got.map((sp) => attrOf(sp, JID)[0][1])).size, N, 'N distinct journeys in B');

  // the SLI over the fleet = A + B
  const ev = (s, name, m) => metric(s, name, { sli: 'post_to_push', ...m }) || 0;
  assert.equal(ev(sb, 'kansatsu_sli_unjoined_events_total', {}), 0, 'B: unjoined SLI events');
  let good = 0;
  for (const [plan, e] of perPlan) {
    const total = ev(sa, 'kansatsu_sli_events_total', { plan }) + ev(sb, 'kansatsu_sli_events_total', { plan });
    const g = ev(sa, 'kansatsu_sli_good_events_total', { plan }) + ev(sb, 'kansatsu_sli_good_events_total', { plan });
    assert.deepEqual([total, g], [e.total, e.good], `SLI plan=${plan}: [total, good] over A and B`);
    good += e.good;
  }
  assert.ok(good > 0 && good < N, `the workload has good and bad journeys (${good} of ${N} good)`);

  // Redis commands: one SET per api trace; lookups batched per shard round
  const cmds = redis.commandStats();
  assert.equal(cmds.set, N, `Redis SET calls: ${JSON.stringify(cmds)}`);
  assert.ok(cmds.mget >= 1 && cmds.mget < N, `Redis MGET calls (${cmds.mget}) are per shard round, fewer than the ${N} journeys`);
  assert.equal(cmds.mget, jm(sb, 'registry_commands_total', { command: 'MGET' }), 'B counts the MGETs Redis executed');
  await a.col.stop();
  await b.col.stop();
});

// ---- 2 ---------------------------------------------------------------------------------
test('fleet: a three-hop chain across three collectors resolves to the first head', async (t) => {
  const redis = await startRedis(t, 'chain-redis');
  const ca = await collector(t, 'chain-a', redis);
  const cb = await collector(t, 'chain-b', redis);
  const cc = await collector(t, 'chain-c', redis);
  const api = service(t, ca.col, 'api', 'http/protobuf');
  const worker = service(t, cb.col, 'worker', 'grpc');
  const notifier = service(t, cc.col, 'notifier', 'http/json');

  const N = 20;
  const t0 = nowNs() - 30000n * MS;
  const heads = [];
  for (let i = 0; i < N; i++) {
    const start = t0 + BigInt(i) * 700n * MS;
    const h = emitHead(api, start, { 'tenant.plan': `p${i % 2}`, 'room.type': `chain${i}` });
    const w = emitHop(worker, start + 20n * MS, h.producer, { produce: true });
    emitHop(notifier, start + 40n * MS, w.producer, { deliverEndNs: start + 200n * MS });
    heads.push({ id: h.head.spanContext().traceId, room: `chain${i}`, plan: `p${i % 2}` });
  }
  // last hop first, then the middle, then the heads
  await notifier.flush('notifier (third hop)');
  await waitMetrics(cc.col, (s) => jm(s, 'traces_in_memory') === N, WAIT_MS, 'C buffers the third hop');
  await worker.flush('worker (second hop)');
  await waitMetrics(cb.col, (s) => jm(s, 'traces_in_memory') === N, WAIT_MS, 'B buffers the second hop');
  await api.flush('api (heads)');

  const want = notifier.memory.getFinishedSpans().length;
  const sc = await waitMetrics(cc.col, (s) => sent(s) === want, WAIT_MS, `C exports all ${want} spans`);
  const sb = await waitMetrics(cb.col, (s) => sent(s) === worker.memory.getFinishedSpans().length, WAIT_MS, 'B exports');
  assert.equal(jm(sb, 'traces_joined_total'), N, 'B: second hops joined');
  assert.equal(jm(sb, 'registry_writes_total', { result: 'ok' }), N, 'B: the middle traces (PRODUCER spans) are published');
  assert.equal(jm(sc, 'traces_joined_total'), N, 'C: third hops joined');
  assert.equal(jm(sc, 'closed_without_head_total'), 0, 'C: closed without head');
  const byRoom = new Map(heads.map((h) => [h.room, h]));
  const got = spansOf(cc.out);
  assert.equal(got.length, want);
  for (const sp of got) {
    const room = attrOf(sp, 'room.type');
    assert.equal(room.length, 1, `${sp.name}: room.type from the first head`);
    const h = byRoom.get(room[0][1]);
    assert.ok(h, `${sp.name}: room.type ${room[0][1]} names a head`);
    assert.deepEqual(attrOf(sp, JID), [['string', h.id]], `${sp.name}: journey.id = the FIRST head's trace id`);
    assert.deepEqual(attrOf(sp, 'tenant.plan'), [['string', h.plan]], `${sp.name}: tenant.plan`);
  }
  // the SLI's start is the first head, two collectors away
  assert.equal(metric(sc, 'kansatsu_sli_events_total', { sli: 'post_to_push' }), N, 'C: SLI events');
  assert.equal(metric(sc, 'kansatsu_sli_good_events_total', { sli: 'post_to_push' }), N, 'C: all good (200 ms <= 300 ms)');
  for (const c of [ca, cb, cc]) await c.col.stop();
});

// ---- 3 ---------------------------------------------------------------------------------
test('fleet: agent -> loadbalancing(traceID) -> three instances: every consumer finds its head on any instance', async (t) => {
  const redis = await startRedis(t, 'tier-redis');
  const inst = [];
  for (let i = 0; i < 3; i++) inst.push(await collector(t, `tier-inst${i}`, redis));
  const agent = await startAgent(t, {
    label: 'fleet-agent',
    resolver: { static: { hostnames: inst.map((x) => `127.0.0.1:${x.col.grpcPort}`) } },
  });
  const api = service(t, agent, 'api', 'http/protobuf');
  const notifier = service(t, agent, 'notifier', 'grpc');
  const N = 60;
  const t0 = nowNs() - 60000n * MS;
  const heads = new Map();
  let good = 0;
  for (let i = 0; i < N; i++) {
    const start = t0 + BigInt(i) * 500n * MS;
    const latMs = [80, 400, 150][i % 3];
    const h = emitHead(api, start, { 'tenant.plan': i % 2 ? 'gold' : 'free', 'room.type': `t${i}` });
    emitHop(notifier, start + 5n * MS, h.producer, { deliverEndNs: start + BigInt(latMs) * MS });
    heads.set(h.head.spanContext().traceId, `t${i}`);
    if (latMs <= 300) good++;
  }
  await notifier.flush('notifier');
  await api.flush('api');
  const total = notifier.memory.getFinishedSpans().length + api.memory.getFinishedSpans().length;
  let last = [];
  await pollUntil(async () => {
    last = [];
    for (const x of inst) last.push((await scrape(x.col)).samples);
    return last.reduce((a, s) => a + (sent(s) || 0), 0) === total && last.every((s) => jm(s, 'traces_in_memory') === 0);
  }, WAIT_MS, `the three instances export all ${total} spans`, 50);
  const sum = (f) => last.reduce((a, s) => a + (f(s) || 0), 0);
  assert.equal(sum((s) => jm(s, 'traces_joined_total')), N, 'consumer traces joined, over the instances');
  assert.equal(sum((s) => jm(s, 'closed_without_head_total')), 0, 'closed without head, over the instances');
  const remote = sum((s) => jm(s, 'registry_lookups_total', { result: 'hit' }));
  assert.ok(remote > 0, 'some heads were found only through Redis (routed to another instance)');
  let checked = 0;
  for (const x of inst) {
    for (const sp of spansOf(x.out)) {
      if (!['chat.process', 'push.deliver'].includes(sp.name)) continue;
      const jid = attrOf(sp, JID);
      assert.equal(jid.length, 1, `${sp.name}: journey.id`);
      assert.deepEqual(attrOf(sp, 'room.type'), [['string', heads.get(jid[0][1])]], `${sp.name}: the head's room.type`);
      checked++;
    }
  }
  assert.equal(checked, 2 * N, 'every notifier span checked');
  assert.equal(sum((s) => metric(s, 'kansatsu_sli_events_total', { sli: 'post_to_push' })), N, 'SLI events over the instances');
  assert.equal(sum((s) => metric(s, 'kansatsu_sli_good_events_total', { sli: 'post_to_push' })), good, 'SLI good events over the instances');
  assert.equal(sum((s) => metric(s, 'kansatsu_sli_unjoined_events_total', { sli: 'post_to_push' })), 0, 'unjoined');
  await agent.stop();
  for (const x of inst) await x.col.stop();
});

// ---- 4 ---------------------------------------------------------------------------------
test('fleet: Redis stopped mid-run and started again: nothing acknowledged is lost, the gap closes without head, then journeys resolve again', async (t) => {
  const redis = await startRedis(t, 'outage-redis');
  const a = await collector(t, 'outage-a', redis, { waitWindow: '2s' });
  const b = await collector(t, 'outage-b', redis, { waitWindow: '2s' });
  const api = service(t, a.col, 'api', 'http/protobuf');
  const notifier = service(t, b.col, 'notifier', 'grpc');
  const N = 10;
  let round = 0;
  // One phase: N journeys, heads exported first, then the consumers.
  async function phase(label) {
    const t0 = nowNs() - 10000n * MS;
    for (let i = 0; i < N; i++) {
      const start = t0 + BigInt(i) * 100n * MS;
      const h = emitHead(api, start, { 'tenant.plan': 'gold', 'room.type': `${label}${i}` });
      emitHop(notifier, start + 5n * MS, h.producer, { deliverEndNs: start + 100n * MS });
    }
    round++;
    await api.flush(`api (${label})`);
    await waitMetrics(a.col, (s) => jm(s, 'started_total') === N * round && jm(s, 'traces_in_memory') === 0,
      WAIT_MS, `A released the ${label} heads`);
    await notifier.flush(`notifier (${label})`);
    const want = notifier.memory.getFinishedSpans().length;
    return waitMetrics(b.col, (s) => sent(s) === want && jm(s, 'traces_in_memory') === 0, WAIT_MS,
      `B exports every notifier span so far (${want})`);
  }

  let s = await phase('before');
  assert.equal(jm(s, 'traces_joined_total'), N, 'before the outage: joined through Redis');

  await redis.stop();
  await waitMetrics(b.col, (x) => jm(x, 'registry_up') === 0, WAIT_MS, 'B sees the registry down');
  await waitMetrics(a.col, (x) => jm(x, 'registry_up') === 0, WAIT_MS, 'A sees the registry down');
  for (const c of [a.col, b.col]) {
    const r = await httpGet(c.healthPort, '/readyz');
    assert.equal(r.status, 200, 'readyz stays ready while the registry is down');
  }
  s = await phase('gap');
  assert.equal(jm(s, 'traces_joined_total'), N, 'during the outage: nothing joined');
  assert.equal(jm(s, 'closed_without_head_total', { reason: 'registry_unavailable' }), N,
    'during the outage: closed without head, reason registry_unavailable');
  assert.equal(jm(s, 'closed_without_head_total', { reason: 'head_not_seen' }), 0, 'no other reason');
  const sa = await waitMetrics(a.col, (x) => jm(x, 'registry_dropped_total', { op: 'write' }) === N, WAIT_MS,
    'A counts the writes it could not send');
  assert.equal(jm(sa, 'registry_dropped_total', { op: 'write', reason: 'unavailable' }), N);

  await redis.start();
  await waitMetrics(b.col, (x) => jm(x, 'registry_up') === 1, WAIT_MS, 'B reconnects');
  await waitMetrics(a.col, (x) => jm(x, 'registry_up') === 1, WAIT_MS, 'A reconnects');
  s = await phase('after');
  assert.equal(jm(s, 'traces_joined_total'), 2 * N, 'after the outage: joined through Redis again');
  assert.equal(jm(s, 'closed_without_head_total'), N, 'only the gap closed without head');

  // nothing acknowledged was lost, and every journey was counted once
  const api0 = api.memory.getFinishedSpans().length;
  await waitMetrics(a.col, (x) => sent(x) === api0, WAIT_MS, `A exported all ${api0} api spans`);
  assert.equal(metric(s, 'kansatsu_sli_events_total', { sli: 'post_to_push' }), 2 * N,
    'B: SLI events joined (before and after; the gap has no head to start from)');
  assert.equal(metric(s, 'kansatsu_sli_unjoined_events_total', { sli: 'post_to_push' }), N, 'B: the gap is unjoined');
  assert.equal(spansOf(b.out).length, notifier.memory.getFinishedSpans().length, 'B\'s file holds every notifier span');
  await a.col.stop();
  await b.col.stop();
});

// ---- 5 ---------------------------------------------------------------------------------
test('fleet: at shutdown, consumers still waiting are joined through Redis before they are given up', async (t) => {
  const redis = await startRedis(t, 'stop-redis');
  const a = await collector(t, 'stop-a', redis);
  const b = await collector(t, 'stop-b', redis, { rootGrace: '25s', waitWindow: '30s' });
  const api = service(t, a.col, 'api', 'http/protobuf');
  const notifier = service(t, b.col, 'notifier', 'grpc');
  const N = 5;
  const t0 = nowNs() - 5000n * MS;
  const heads = new Map();
  for (let i = 0; i < N; i++) {
    const h = emitHead(api, t0 + BigInt(i) * 50n * MS, { 'tenant.plan': 'gold', 'room.type': `s${i}` });
    emitHop(notifier, t0 + BigInt(i) * 50n * MS + 5n * MS, h.producer, { deliverEndNs: t0 + BigInt(i) * 50n * MS + 80n * MS });
    heads.set(`s${i}`, h.head.spanContext().traceId);
  }
  await api.flush('api');
  await waitMetrics(a.col, (s) => jm(s, 'registry_writes_total', { result: 'ok' }) === N, WAIT_MS, 'A published the heads');
  await notifier.flush('notifier');
  const s = await waitMetrics(b.col, (x) => jm(x, 'traces_in_memory') === N, WAIT_MS, 'B holds the consumers (root_grace 25s)');
  assert.equal(jm(s, 'registry_lookups_total'), 0, 'B has not looked anything up before its shutdown');
  await b.col.stop();
  const got = spansOf(b.out);
  assert.equal(got.length, notifier.memory.getFinishedSpans().length, 'B exported every notifier span at shutdown');
  for (const sp of got) {
    const room = attrOf(sp, 'room.type');
    assert.equal(room.length, 1, `${sp.name}: room.type from its head`);
    assert.deepEqual(attrOf(sp, JID), [['string', heads.get(room[0][1])]], `${sp.name}: journey.id`);
  }
  await a.col.stop();
});
