// SPDX-License-Identifier: Apache-2.0
// The two-tier layout with a static resolver: an agent (OTLP gRPC + HTTP ->
// batch -> loadbalancing, routing_key traceID) in front of three sampling
// instances (OTLP gRPC -> [tail_sampling] -> batch -> JSON file), all on
// 127.0.0.1. The workload is many traces, each split over 3-5 requests
// interleaved with other traces, sent over OTLP/HTTP (protobuf and JSON) and
// OTLP/gRPC (tier_helpers.mjs).
// 1. Steady tier: after SIGTERM of the agent and then the instances, every
//    trace is whole on exactly one instance (the one the documented ring of
//    kn_lb_ring.h names), the union is exactly what was sent, every instance
//    got traces, and the agent's per-endpoint metrics add up to it.
//    Run once with plain instances and once with a tail_sampling
//    (always_sample) processor when `kansatsu validate` accepts one.
// 2. Tail decisions: the instances run tail_sampling with policies that
//    need the whole trace (status_code ERROR, latency from the earliest
//    start to the latest end, span_count min_spans), on a workload whose
//    deciding spans never travel with a trace's first spans
//    (makeTailWorkload). The same workload also goes straight into ONE
//    instance with the same config. decision_wait (15 s) outlasts the
//    sending; the test checks that nothing was decided before the whole
//    workload was acknowledged and that no span came late, then polls
//    kansatsu_tail_traces_total until every trace is decided. The kept
//    traces (span sets and sampling.policy) of the tier == the single
//    instance's == those the test computes from the workload, each on its
//    ring owner only; per-instance and summed metrics agree likewise.
// 3. An instance stopped under load and a successor started on the same
//    port: nothing the agent acknowledged is lost.
// Synchronisation is on log lines, responses, metrics polled with a
// deadline and process exit; never on time.
import test from 'node:test';
import assert from 'node:assert/strict';
import { pollUntil } from './memory_limit_helpers.mjs';
import { tailMetrics } from './tail_helpers.mjs';
import {
  startInstance, startAgent, tailSamplingUnavailable, makeWorkload, makeSender, collectOutputs,
  scrapeSamples, lbEndpointCounters, metricSum, sum, Ring, lbHash,
  TAIL_WHOLE, makeTailWorkload, keptTraces, diffTraceSets,
} from './tier_helpers.mjs';

const DELIVER_MS = 90000; // bound on the agent delivering everything it acknowledged

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('the ring re-implemented from kn_lb_ring.h matches its pinned check value', () => {
  assert.equal(lbHash(Buffer.from('127.0.0.1:4317#0')), 0x1857004cdb9e27b8n);
});

// Polls the agent until every endpoint's sub-exporter has sent what was
// routed to it and at least `total` spans were routed; returns the counters.
async function waitDelivered(agent, endpoints, total, what) {
  let last = null;
  try {
    return await pollUntil(async () => {
      last = lbEndpointCounters(await scrapeSamples(agent));
      const ok = sum(last.routed) >= total && endpoints.every((ep) => (last.sent[ep] || 0) >= (last.routed[ep] || 0));
      return ok ? last : null;
    }, DELIVER_MS, what, 100);
  } catch (e) {
    throw new Error(`${e.message}; last counters ${JSON.stringify(last)}\n${agent.tail()}`);
  }
}

// Checks that each trace of `traces` is whole at exactly the owner `ring`
// names and nowhere else. Returns traces per owner.
function checkWholeOnRingOwner(traces, out, ring, label) {
  const problems = [];
  const perOwner = {};
  for (const [traceId, spanIds] of traces) {
    const want = ring.lookup(traceId);
    const where = new Map();
    for (const sid of spanIds) for (const o of out.spanOwners.get(sid) || ['(missing)']) where.set(o, (where.get(o) || 0) + 1);
    const got = out.byOwner.get(want) && out.byOwner.get(want).get(traceId);
    const complete = got && spanIds.every((s) => got.includes(s)) && got.length === spanIds.length;
    if (where.size !== 1 || !where.has(want) || !complete) {
      problems.push(`trace ${traceId} (${spanIds.length} spans, ring owner ${want}): found ${JSON.stringify(Object.fromEntries(where))}`);
    }
    perOwner[want] = (perOwner[want] || 0) + 1;
  }
  assert.deepEqual(problems.slice(0, 10), [], `${label}: ${problems.length} trace(s) not whole on their ring owner`);
  return perOwner;
}

const variants = [
  { name: 'file', tailSampling: false },
  { name: 'tail_sampling always_sample', tailSampling: true },
];

for (const v of variants) {
  test(`static tier (${v.name}): every trace whole on exactly one of three instances`, async (t) => {
    if (v.tailSampling) {
      const why = tailSamplingUnavailable();
      if (why) {
        console.log(`# skipping the tail_sampling variant: ${why}`);
        t.skip(why);
        return;
      }
    }
    const insts = [];
    for (let i = 0; i < 3; i++) insts.push(await startInstance(t, { label: `sampler-${i}`, tailSampling: v.tailSampling }));
    const endpoints = insts.map((i) => i.endpoint);
    const agent = await startAgent(t, { resolver: { static: { hostnames: endpoints } } });
    const ring = new Ring(endpoints);
    await agent.waitForLine(new RegExp(`ring rebuilt, 3 endpoint\\(s\\): ${ring.endpoints.map(escapeRe).join(', ')}$`, 'm'));

    const wl = makeWorkload({ label: `tier-${v.tailSampling ? 'ts' : 'file'}`, nTraces: 300, seed: 11 });
    const sender = makeSender(agent);
    let res;
    try {
      res = await sender.sendAll(wl.requests);
    } finally {
      sender.close();
    }
    assert.deepEqual(res.failures.slice(0, 5), [], `${res.failures.length} request(s) not acknowledged\n${agent.tail()}`);
    assert.equal(res.acked.size, wl.totalSpans, 'acknowledged spans');

    const c = await waitDelivered(agent, endpoints, wl.totalSpans, 'the agent to route and send every acknowledged span');
    const samples = await scrapeSamples(agent);
    assert.equal(sum(c.routed), wl.totalSpans, `kansatsu_loadbalancer_routed_spans_total summed over endpoints: ${JSON.stringify(c.routed)}`);
    assert.equal(sum(c.sent), wl.totalSpans, `kansatsu_exporter_sent_spans_total of the sub-exporters: ${JSON.stringify(c.sent)}`);
    assert.deepEqual(Object.keys(c.routed).sort(), [...endpoints].sort(), 'one routed counter per endpoint');
    assert.equal(metricSum(samples, 'kansatsu_loadbalancer_backends', { exporter: 'loadbalancing' }), 3, 'kansatsu_loadbalancer_backends');
    assert.equal(metricSum(samples, 'kansatsu_loadbalancer_rerouted_spans_total', { exporter: 'loadbalancing' }), 0, 'rerouted spans');
    const dropped = samples.filter((s) => s.name === 'kansatsu_exporter_dropped_spans_total' && s.value !== 0);
    assert.deepEqual(dropped, [], 'agent: no dropped spans');

    if (v.tailSampling) {
      // every span routed to an instance is decided "sampled" by its timer
      // (on time or late), before any shutdown
      for (const i of insts) {
        let last;
        await pollUntil(async () => {
          const s = await scrapeSamples(i);
          last = {
            sampled: metricSum(s, 'kansatsu_tail_spans_total', { decision: 'sampled' }),
            late: metricSum(s, 'kansatsu_tail_late_spans_total', { decision: 'sampled' }),
            notSampled: metricSum(s, 'kansatsu_tail_spans_total', { decision: 'not_sampled' }),
          };
          return (last.sampled || 0) + (last.late || 0) >= c.routed[i.endpoint];
        }, DELIVER_MS, `${i.label}: tail_sampling decisions for ${c.routed[i.endpoint]} spans`, 100)
          .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(last)}\n${i.tail()}`); });
        assert.equal(last.sampled + last.late, c.routed[i.endpoint], `${i.label}: spans decided sampled (${JSON.stringify(last)})`);
        assert.ok(!last.notSampled, `${i.label}: always_sample decided spans not_sampled (${JSON.stringify(last)})`);
      }
    }

    await agent.stop();
  for (const w of agent.warnings().slice(0, 5)) console.log(`# agent: ${w}`);
    for (const i of insts) await i.stop();

    const out = collectOutputs(insts.map((i) => ({ owner: i.endpoint, path: i.outPath })));
    assert.equal(out.duplicates, 0, 'spans written more than once');
    const sent = new Set();
    for (const ids of wl.traces.values()) for (const id of ids) sent.add(id);
    const extra = [...out.spanOwners.keys()].filter((id) => !sent.has(id));
    assert.deepEqual(extra.slice(0, 5), [], `${extra.length} span(s) in the output that were never sent`);
    assert.equal(out.spanOwners.size, sent.size, 'the union of the instances is what was sent');
    const perOwner = checkWholeOnRingOwner(wl.traces, out, ring, v.name);
    for (const ep of endpoints) {
      const traces = out.byOwner.get(ep).size;
      const spans = [...out.byOwner.get(ep).values()].reduce((a, l) => a + l.length, 0);
      assert.ok(traces > 0, `instance ${ep} got no trace: ${JSON.stringify(perOwner)}`);
      assert.equal(traces, perOwner[ep], `instance ${ep}: traces`);
      assert.equal(spans, c.routed[ep], `instance ${ep}: spans in its file vs the agent's routed counter for it`);
    }
    console.log(`# ${v.name}: ${wl.requests.length} requests, ${wl.totalSpans} spans of ${wl.traces.size} traces; traces per instance ${JSON.stringify(perOwner)}`);
  });
}

// ---- tail decisions of the tier == those of one instance ---------------------------
const DECIDE_MS = 180000; // bound on every decision (decision_wait 15 s; ASan builds are slow)
const POLICIES = TAIL_WHOLE.policies.map((p) => p.name);

// The tail_sampling metrics that must be exact, as plain numbers.
function tailSummary(samples) {
  const m = tailMetrics(samples);
  const n = (v) => v || 0;
  const policies = {};
  for (const p of POLICIES) policies[p] = { sampled: n(m.policy(p, 'sampled')), not_sampled: n(m.policy(p, 'not_sampled')) };
  return {
    tracesSampled: n(m.tracesSampled), tracesNotSampled: n(m.tracesNotSampled),
    spansSampled: n(m.spansSampled), spansNotSampled: n(m.spansNotSampled),
    lateSampled: n(m.lateSampled), lateNotSampled: n(m.lateNotSampled),
    earlyMemory: n(m.earlyMemory), earlyNumTraces: n(m.earlyNumTraces), earlyShutdown: n(m.earlyShutdown),
    tooLarge: n(m.tooLarge), lost: n(m.lost), policies,
  };
}

// What tailSummary must read after every decision of the traces `ids`,
// computed from the workload (wl.info) alone: no late spans, nothing decided
// early, too large or lost.
function expectedSummary(wl, ids) {
  const e = tailSummary([]);
  for (const id of ids) {
    const { policy, spans } = wl.info.get(id);
    if (policy) { e.tracesSampled++; e.spansSampled += spans.length; } else { e.tracesNotSampled++; e.spansNotSampled += spans.length; }
    for (const p of POLICIES) e.policies[p][p === policy ? 'sampled' : 'not_sampled']++;
  }
  return e;
}

const addSummaries = (a, b) => {
  const out = {};
  for (const [k, v] of Object.entries(a)) out[k] = typeof v === 'number' ? v + b[k] : addSummaries(v, b[k]);
  return out;
};

// Sends every request of wl to proc (the agent or an instance with OTLP/HTTP
// and gRPC receivers) and checks all are acknowledged.
async function sendAllTo(proc, wl) {
  const sender = makeSender(proc);
  let res;
  try {
    res = await sender.sendAll(wl.requests);
  } finally {
    sender.close();
  }
  assert.deepEqual(res.failures.slice(0, 5), [], `${proc.label}: ${res.failures.length} request(s) not acknowledged\n${proc.tail()}`);
  assert.equal(res.acked.size, wl.totalSpans, `${proc.label}: acknowledged spans`);
}

// All of the workload is inside `proc` (acknowledged to the sender): no
// decision may have been made yet, else a trace could have been decided on
// part of its spans and the comparison below would not test what it claims.
async function assertNothingDecidedYet(proc) {
  const s = tailSummary(await scrapeSamples(proc));
  assert.deepEqual({ decided: s.tracesSampled + s.tracesNotSampled, late: s.lateSampled + s.lateNotSampled }, { decided: 0, late: 0 },
    `${proc.label}: traces decided before the whole workload was in (decision_wait ${TAIL_WHOLE.decision_wait} too short for this machine?)`);
}

// Polls proc until it has decided `n` traces; returns its tailSummary.
async function waitDecided(proc, n) {
  let last;
  await pollUntil(async () => {
    last = tailSummary(await scrapeSamples(proc));
    return last.tracesSampled + last.tracesNotSampled >= n;
  }, DECIDE_MS, `${proc.label}: kansatsu_tail_traces_total to reach ${n}`, 100)
    .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(last)}\n${proc.tail()}`); });
  return last;
}

test('static tier (tail_sampling, whole-trace policies): the tier decides exactly as one instance and as the workload says', async (t) => {
  const why = tailSamplingUnavailable(TAIL_WHOLE);
  if (why) {
    console.log(`# skipping: ${why}`);
    t.skip(why);
    return;
  }
  const insts = [];
  for (let i = 0; i < 3; i++) insts.push(await startInstance(t, { label: `tail-sampler-${i}`, tailSampling: TAIL_WHOLE }));
  const single = await startInstance(t, { label: 'tail-single', tailSampling: TAIL_WHOLE, http: true });
  const endpoints = insts.map((i) => i.endpoint);
  const agent = await startAgent(t, { resolver: { static: { hostnames: endpoints } } });
  const ring = new Ring(endpoints);
  await agent.waitForLine(new RegExp(`ring rebuilt, 3 endpoint\\(s\\): ${ring.endpoints.map(escapeRe).join(', ')}$`, 'm'));

  const wl = makeTailWorkload({ label: 'tier-tail', nTraces: 300, seed: 33 });
  const ids = [...wl.traces.keys()];
  const idsOf = new Map(endpoints.map((ep) => [ep, ids.filter((id) => ring.lookup(id) === ep)]));
  const want = new Map();
  for (const [id, inf] of wl.info) {
    if (inf.policy) want.set(id, inf.spans.map((d) => `${d.spanId} ${inf.policy}`).sort());
  }

  // 1. the tier: everything in every instance before any decision
  const t0 = Date.now();
  await sendAllTo(agent, wl);
  const c = await waitDelivered(agent, endpoints, wl.totalSpans, 'the agent to route and send every acknowledged span');
  assert.equal(sum(c.routed), wl.totalSpans, `routed spans: ${JSON.stringify(c.routed)}`);
  for (const i of insts) await assertNothingDecidedYet(i);
  // 2. the same workload into one instance, no agent
  const t1 = Date.now();
  await sendAllTo(single, wl);
  await assertNothingDecidedYet(single);
  const t2 = Date.now();

  // 3. every trace decided once, on its ring owner, as the workload says
  const got = await Promise.all([...insts, single].map((p) => waitDecided(p, p === single ? ids.length : idsOf.get(p.endpoint).length)));
  for (const [k, i] of insts.entries()) {
    const s = tailSummary(await scrapeSamples(i));
    assert.deepEqual(s, expectedSummary(wl, idsOf.get(i.endpoint)), `${i.label} (${i.endpoint}): tail_sampling metrics vs the workload's traces routed to it`);
    assert.ok(s.tracesSampled > 0 && s.tracesNotSampled > 0, `${i.label}: kept and dropped traces both (${JSON.stringify(s)})`);
    got[k] = s;
  }
  const singleSummary = tailSummary(await scrapeSamples(single));
  assert.deepEqual(singleSummary, expectedSummary(wl, ids), 'single instance: tail_sampling metrics vs the workload');
  assert.deepEqual(got.slice(0, 3).reduce(addSummaries), singleSummary, 'tail_sampling metrics summed over the tier vs the single instance');

  await agent.stop();
  for (const w of agent.warnings().slice(0, 5)) console.log(`# agent: ${w}`);
  for (const i of insts) await i.stop();
  await single.stop();

  // 4. the exported traces: tier == single == workload, each kept trace whole
  //    on its ring owner only, every span naming the policy that kept it
  const tier = keptTraces(insts.map((i) => ({ owner: i.endpoint, path: i.outPath })));
  const one = keptTraces([{ owner: 'single', path: single.outPath }]);
  assert.equal(tier.duplicates, 0, 'tier: spans written more than once');
  assert.equal(one.duplicates, 0, 'single instance: spans written more than once');
  const misplaced = [...tier.ownersOf].filter(([id, o]) => o.size !== 1 || !o.has(ring.lookup(id)))
    .map(([id, o]) => `${id}: written by ${[...o]}, ring owner ${ring.lookup(id)}`);
  assert.deepEqual(misplaced.slice(0, 10), [], `${misplaced.length} kept trace(s) not on exactly their ring owner`);
  const d1 = diffTraceSets(tier.kept, one.kept, 'tier', 'single');
  assert.deepEqual(d1.slice(0, 10), [], `${d1.length} difference(s) between the tier's and the single instance's exported traces`);
  const d2 = diffTraceSets(one.kept, want, 'single', 'workload');
  assert.deepEqual(d2.slice(0, 10), [], `${d2.length} difference(s) between the exported traces and those the workload says are kept`);
  // and a decision on the first request's spans alone would have kept none of them
  const keptOnFirst = [...want.keys()].filter((id) => wl.info.get(id).partPolicies[0] !== null);
  assert.deepEqual(keptOnFirst, [], 'kept traces that their first part alone would keep');

  const kinds = {};
  for (const id of want.keys()) kinds[wl.info.get(id).kind] = (kinds[wl.info.get(id).kind] || 0) + 1;
  console.log(`# tail tier: ${wl.requests.length} requests, ${wl.totalSpans} spans of ${ids.length} traces; kept ${want.size} ${JSON.stringify(kinds)}; ` +
    `kept/decided per instance ${JSON.stringify(Object.fromEntries(insts.map((i, k) => [i.endpoint, `${got[k].tracesSampled}/${idsOf.get(i.endpoint).length}`])))}; ` +
    `whole workload inside the tier after ${t1 - t0} ms, the single instance after ${t2 - t1} ms (decision_wait ${TAIL_WHOLE.decision_wait})`);
});

test('static tier: an instance stopped under load and restarted on the same port loses nothing acknowledged', async (t) => {
  const insts = [];
  for (let i = 0; i < 3; i++) insts.push(await startInstance(t, { label: `sampler-${i}` }));
  const endpoints = insts.map((i) => i.endpoint);
  const agent = await startAgent(t, { resolver: { static: { hostnames: endpoints } } });
  const ring = new Ring(endpoints);
  const victim = insts[1];
  const victimEp = victim.endpoint;

  const wl = makeWorkload({ label: 'tier-restart', nTraces: 480, seed: 22 });
  const q = Math.ceil(wl.requests.length / 4);
  const slices = [0, 1, 2, 3].map((k) => wl.requests.slice(k * q, (k + 1) * q));
  const sender = makeSender(agent);
  const acked = new Set();
  const failures = [];
  const take = (r) => { for (const id of r.acked) acked.add(id); failures.push(...r.failures); };
  let successor;
  try {
    // slice 0: SIGTERM the victim once half of it is acknowledged, load keeps running
    let stopping;
    take(await sender.sendAll(slices[0], {
      // a failed stop is kept as a value and thrown below, not left unhandled
      onAck: (n) => { if (!stopping && n >= slices[0].length / 2) stopping = victim.stop().then(() => null, (e) => e); },
    }));
    const stopErr = await stopping;
    if (stopErr) throw stopErr;
    // slice 1: the victim is gone; the agent still acknowledges and retries its endpoint
    take(await sender.sendAll(slices[1]));
    await pollUntil(async () => (lbEndpointCounters(await scrapeSamples(agent)).failed[victimEp] || 0) > 0,
      DELIVER_MS, `the agent to see failed requests to ${victimEp}`, 100);
    // slice 2 while the successor starts on the same port; slice 3 after it is ready
    const port = Number(victimEp.split(':')[1]);
    const starting = startInstance(t, { label: 'sampler-1-successor', port });
    take(await sender.sendAll(slices[2]));
    successor = await starting;
    assert.equal(successor.endpoint, victimEp, 'successor endpoint');
    take(await sender.sendAll(slices[3]));
  } finally {
    sender.close();
  }
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} request(s) not acknowledged\n${agent.tail()}`);
  assert.equal(acked.size, wl.totalSpans, 'acknowledged spans');

  const c = await waitDelivered(agent, endpoints, wl.totalSpans, 'the agent to deliver everything, the successor included');
  const samples = await scrapeSamples(agent);
  const dropped = samples.filter((s) => s.name === 'kansatsu_exporter_dropped_spans_total' && s.value !== 0);
  assert.deepEqual(dropped, [], 'agent: no dropped spans');
  await agent.stop();
  for (const w of agent.warnings().slice(0, 5)) console.log(`# agent: ${w}`);
  for (const i of [insts[0], successor, insts[2]]) await i.stop();

  // The stopped instance and its successor are the same ring endpoint, so
  // the spans of one trace may be split between their two files: that is
  // expected and fine. Both files are collected under that one endpoint.
  const out = collectOutputs([
    ...insts.map((i) => ({ owner: i.endpoint, path: i.outPath })),
    { owner: victimEp, path: successor.outPath },
  ]);
  const missing = [...acked].filter((id) => !out.spanOwners.has(id));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged span(s) in no instance's output`);
  checkWholeOnRingOwner(wl.traces, out, ring, 'instance restart');
  const inVictim = collectOutputs([{ owner: victimEp, path: victim.outPath }]).spanOwners.size;
  const inSuccessor = collectOutputs([{ owner: victimEp, path: successor.outPath }]).spanOwners.size;
  assert.ok(inSuccessor > 0, 'the successor received spans (those held while its endpoint was down, and later ones)');
  console.log(`# restart: ${wl.totalSpans} spans acknowledged; ${victimEp}: ${inVictim} spans before the stop, ${inSuccessor} in the successor; ` +
    `${out.duplicates} duplicate(s) (allowed: a retry after a stop may repeat a request the stopped instance had written); ` +
    `failed requests per endpoint ${JSON.stringify(c.failed)}`);
});
