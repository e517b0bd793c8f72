// SPDX-License-Identifier: Apache-2.0
// The memory_limiter processor (and, in the agent pipeline, the
// probabilistic_sampler) against the real binary.
//
// 1. Flood: memory_limiter {limit_mib: 192, spike_limit_mib: 48} below
//    kansatsu.memory_limit_mib 512, so its bound wins: the startup line and
//    kansatsu_memory_limit_bytes show 192 MiB, the soft limit gauge 144 MiB.
//    The otlphttp sink answers 503 while distinct requests are sent one
//    after another, so acknowledged data piles up inside the collector until
//    a request is refused: the refusal must be the retryable 503 (reason
//    memory_limit), it must come only once the soft limit is reached (the
//    span budget spent, or the limiter's RSS check over the soft limit), and
//    the RSS must stay under the hard limit throughout. Then the sink
//    accepts, the refused requests are re-sent until acknowledged, and after
//    SIGTERM the sink must hold every acknowledged span.
// 2. Agent pipeline [memory_limiter, probabilistic_sampler, batch] with the
//    OpenTelemetry JS SDK: 600 one-span traces at 50% (hash_seed 22): the
//    spans that arrive are exactly those whose trace id OTel's FNV hash keeps
//    (computed here independently), each with tracestate "ot=rv:<14 hex>;th:8",
//    and their share is plausible (35%..65%).
// Every wait is on a response, a sink event, a log line or a polled metric
// with a deadline; nothing asserts on wall-clock speed.
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startCollector, makeTempDir, makeConfig, httpRequest, readJsonRecords } from './harness.mjs';
import { makeExporter, makeProvider, flushAndCheck, emitSimpleSpans, otelKeeps } from './otel.mjs';
import { decodeStatus } from './pb.mjs';
import {
  startSwitchableSink, requestFactory, scrape, metricSum, rssBytes, pollUntil, pause,
} from './memory_limit_helpers.mjs';

// Under ASan freed blocks wait in its quarantine (256 MiB by default), which
// would count as RSS: keep it small, as tail_sampling.test.mjs does.
process.env.ASAN_OPTIONS = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=16'].filter(Boolean).join(':');

const MIB = 1024 * 1024;
const LIMIT_MIB = 192;
const SPIKE_MIB = 48;
const SPANS = 100;
const PAYLOAD = 1000;
const MAX_FILL_REQUESTS = 20000;
const PB = { 'content-type': 'application/x-protobuf' };

test('memory_limiter under a flood: refuse from the soft limit, stay under the hard limit, lose nothing acknowledged', async (t) => {
  const sink = await startSwitchableSink('refuse');
  t.after(() => sink.close());
  const dir = makeTempDir('memlimiter');
  const config = makeConfig(dir, {
    memory_limit_mib: 512,
    exporters: {
      otlphttp: {
        endpoint: `http://127.0.0.1:${sink.port}`,
        retry_on_failure: { initial_interval: '10ms', max_interval: '50ms', max_elapsed_time: '0s' },
        sending_queue: { queue_size: 100000 },
      },
    },
  });
  config.processors = {
    memory_limiter: { check_interval: '100ms', limit_mib: LIMIT_MIB, spike_limit_mib: SPIKE_MIB },
    batch: { timeout: '10ms' },
  };
  config.service.pipelines.traces.processors = ['memory_limiter', 'batch'];
  config.kansatsu.shutdown_timeout = '30s';
  const col = await startCollector(t, config, 'kansatsu[memlimiter]', dir);
  const pid = col.proc.pid;

  // the split names the limiter and its soft limit
  await col.waitForLine(/memory: limit 192\.0 MiB \(processors\.memory_limiter: limit 192\.0 MiB, spike 48\.0 MiB, soft limit 144\.0 MiB; below kansatsu\.memory_limit_mib 512 MiB\)/);
  {
    const { text, samples } = await scrape(col);
    assert.equal(metricSum(samples, 'kansatsu_memory_limit_bytes'), LIMIT_MIB * MIB, `the lower bound wins\n${text}`);
    assert.equal(metricSum(samples, 'kansatsu_processor_memory_limiter_limit_bytes', { limit: 'soft' }),
      (LIMIT_MIB - SPIKE_MIB) * MIB, text);
    assert.equal(metricSum(samples, 'kansatsu_processor_memory_limiter_limit_bytes', { limit: 'hard' }),
      LIMIT_MIB * MIB, text);
    const budget = metricSum(samples, 'kansatsu_memory_budget_bytes');
    assert.ok(budget > 0 && budget <= (LIMIT_MIB - SPIKE_MIB) * MIB,
      `span budget ${budget} must be positive and within the soft limit\n${text}`);
  }

  const make = requestFactory(SPANS, PAYLOAD);
  const acked = new Set();
  const pending = [];
  let maxRss = 0;
  const sampleRss = () => { maxRss = Math.max(maxRss, rssBytes(pid)); };
  let next = 0;
  let first = null;
  while (next < MAX_FILL_REQUESTS) {
    const r = next++;
    const { body, spanIds } = make(r);
    const res = await httpRequest({ port: col.httpPort, headers: PB, body });
    if (r % 10 === 0) sampleRss();
    if (res.status === 200) {
      for (const id of spanIds) acked.add(id);
      continue;
    }
    assert.equal(res.status, 503, `request ${r}: only 200 or 503, got ${res.status} ${res.body}\n${col.tail()}`);
    assert.ok(res.headers['retry-after'] !== undefined, 'a refusal carries Retry-After');
    assert.equal(decodeStatus(res.body).code, 14, 'google.rpc.Status UNAVAILABLE');
    first = r;
    pending.push(r);
    break;
  }
  sampleRss();
  assert.ok(first !== null, `no refusal after ${MAX_FILL_REQUESTS} requests; max RSS ${maxRss}\n${col.tail()}`);

  // The refusal came at the soft limit: the span budget was spent (it ends
  // at or below the soft limit) or the RSS check saw the process above it.
  {
    const { text, samples } = await scrape(col);
    const used = metricSum(samples, 'kansatsu_memory_used_bytes');
    const budget = metricSum(samples, 'kansatsu_memory_budget_bytes');
    const over = metricSum(samples, 'kansatsu_processor_memory_limiter_over');
    const refused = metricSum(samples, 'kansatsu_receiver_refused_spans_total', { transport: 'http', reason: 'memory_limit' });
    t.diagnostic(`first refusal at request ${first}: used ${used} of budget ${budget}, over ${over}, ` +
      `acked ${acked.size} spans, max RSS ${(maxRss / MIB).toFixed(1)} MiB`);
    assert.ok(refused >= SPANS, `refused spans with reason memory_limit: ${refused}\n${text}`);
    const spanFull = used + SPANS * (PAYLOAD + 200) * 2 > budget;
    assert.ok(spanFull || over === 1,
      `refused before the soft limit: used ${used}, budget ${budget}, over ${over}\n${text}`);
    // and the flood got close to the soft limit before that: not refused early
    assert.ok(used >= budget * 0.5 || over === 1, `refused with the budget half empty (${used} of ${budget})\n${text}`);
  }
  assert.ok(maxRss < LIMIT_MIB * MIB, `RSS ${maxRss} reached the hard limit ${LIMIT_MIB} MiB`);

  // a few more while still held: refused, RSS still under the hard limit
  for (let k = 0; k < 3; k++) {
    const r = next++;
    const res = await httpRequest({ port: col.httpPort, headers: PB, body: make(r).body });
    assert.equal(res.status, 503, `request ${r} while full`);
    pending.push(r);
    sampleRss();
  }
  assert.ok(maxRss < LIMIT_MIB * MIB, `RSS ${maxRss} reached the hard limit ${LIMIT_MIB} MiB`);

  // the sink accepts: re-send every refused request until acknowledged
  sink.setMode('accept');
  const retryEnd = Date.now() + 60000;
  for (const r of pending) {
    const { body, spanIds } = make(r);
    for (;;) {
      assert.ok(Date.now() < retryEnd, `request ${r} still refused after 60 s\n${col.tail()}`);
      const res = await httpRequest({ port: col.httpPort, headers: PB, body });
      if (res.status === 200) break;
      assert.equal(res.status, 503);
      await pause(Number(res.headers['retry-after']) * 1000); // the delay the server asked for
    }
    for (const id of spanIds) acked.add(id);
  }
  await sink.waitFor(() => sink.hasAll(acked), 60000, `all ${acked.size} acknowledged spans at the sink`);
  sampleRss();
  assert.ok(maxRss < LIMIT_MIB * MIB, `RSS ${maxRss} reached the hard limit ${LIMIT_MIB} MiB`);
  await pollUntil(async () => metricSum((await scrape(col)).samples, 'kansatsu_processor_memory_limiter_over') === 0,
    20000, 'the limiter to report the RSS below the soft limit');
  const exit = await col.stop();
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${col.tail()}`);
  assert.ok(sink.hasAll(acked), 'every acknowledged span delivered');
  for (const [id, n] of sink.counts) assert.ok(acked.has(id), `span ${id} delivered but never acknowledged (${n}x)`);
});

test('agent pipeline [memory_limiter, probabilistic_sampler, batch] with the JS SDK', async (t) => {
  const dir = makeTempDir('agent');
  const out = join(dir, 'out.jsonl');
  const config = makeConfig(dir, {});
  config.processors = {
    memory_limiter: { check_interval: '1s', limit_percentage: 80, spike_limit_percentage: 20 },
    probabilistic_sampler: { sampling_percentage: 50, hash_seed: 22 },
    batch: { timeout: '50ms' },
  };
  config.service.pipelines.traces.processors = ['memory_limiter', 'probabilistic_sampler', 'batch'];
  const col = await startCollector(t, config, 'kansatsu[agent]', dir);
  const sdk = makeProvider(makeExporter('http/protobuf', col), { batch: true });
  const N = 600;
  emitSimpleSpans(sdk.provider, N, 'agent');
  await flushAndCheck(sdk, 'agent');
  const sent = sdk.memory.getFinishedSpans();
  assert.equal(sent.length, N);
  const want = new Set(sent.filter((s) => otelKeeps(s.spanContext().traceId, 22, 50)).map((s) => s.spanContext().spanId));
  const exit = await col.stop();
  assert.equal(exit.code, 0, col.tail());
  const got = new Map();
  for (const rec of readJsonRecords(out))
    for (const rs of rec.resourceSpans || [])
      for (const ss of rs.scopeSpans || [])
        for (const sp of ss.spans || []) got.set(sp.spanId, sp);
  const share = got.size / N;
  t.diagnostic(`kept ${got.size} of ${N} (${(100 * share).toFixed(1)}%), OTel's hash keeps ${want.size}`);
  assert.ok(share > 0.35 && share < 0.65, `kept share ${share} is not plausible for 50%`);
  assert.deepEqual([...got.keys()].sort(), [...want].sort(), 'kept spans differ from OTel\'s hash_seed decisions');
  for (const sp of got.values())
    assert.match(sp.traceState || '', /^ot=rv:[0-9a-f]{14};th:8$/, `span ${sp.spanId} tracestate`);
});
