// SPDX-License-Identifier: Apache-2.0
// Memory budget and backpressure: kansatsu with memory_limit_mib: 1 exports
// through otlphttp (short retry backoff, retry until shutdown) to an in-test
// sink that first answers 503 to everything (or, in a second variant, leaves
// every request unanswered), so acknowledged data piles up inside the
// collector. Distinct requests (SPANS spans each, unique ids) are
// sent one after another until the collector refuses one: that refusal must
// be a retryable 503 with Retry-After and a google.rpc.Status (code 14), the
// next requests and a raw gRPC Export must be refused too (UNAVAILABLE),
// /metrics must count the refusals and keep used <= limit, and the RSS must
// stay bounded. Then the sink accepts; the refused requests are retried (as
// an SDK would, honouring Retry-After) until acknowledged; after SIGTERM
// (exit 0) the sink must have received every acknowledged span exactly once
// and nothing else. Every wait is on a response, a sink event or a metric
// polled with a deadline.
import net from 'node:net';
import test from 'node:test';
import assert from 'node:assert/strict';
import { startCollector, makeTempDir, makeConfig, httpRequest } from './harness.mjs';
import { grpcExport, GrpcStatus } from './sinks.mjs';
import { decodeStatus, retryDelayMs } from './pb.mjs';
import {
  startSwitchableSink, requestFactory, scrape, metricSum, rssBytes, pollUntil, pause,
} from './memory_limit_helpers.mjs';

const SPANS = 50;                 // spans per request
const PAYLOAD = 200;              // bytes of one string attribute per span
const MAX_FILL_REQUESTS = 3000;   // bound: the 503 must come before this many
const EXTRA_AFTER_FULL = 4;       // further HTTP requests sent while full
const RSS_BOUND = 200 * 1024 * 1024; // generous sanity bound on VmRSS
const DRAIN_MS = 60000;           // bound on delivery once the sink accepts
const RETRY_MS = 60000;           // bound on re-sending the refused requests
const PB = { 'content-type': 'application/x-protobuf' };

function checkRefusal(res, what) {
  assert.equal(res.status, 503, `${what}: status`);
  const ra = res.headers['retry-after'];
  assert.ok(ra !== undefined, `${what}: 503 without a Retry-After header`);
  assert.match(String(ra), /^\d+$/, `${what}: Retry-After must be integer seconds, got ${JSON.stringify(ra)}`);
  assert.ok(Number(ra) >= 1, `${what}: Retry-After ${ra} must be >= 1`);
  assert.match(String(res.headers['content-type']), /^application\/x-protobuf/, `${what}: Status body content type`);
  const st = decodeStatus(res.body);
  assert.equal(st.code, 14, `${what}: google.rpc.Status code (message ${JSON.stringify(st.message)})`);
  return { retryAfter: Number(ra), message: st.message };
}

// How the downstream misbehaves while the budget fills: 503 to everything
// (the exporter retries every 10-50 ms), or no answer at all (the exporter's
// consumers wait; its timeout is raised so no attempt times out, which keeps
// "exactly once" the right expectation).
const variants = [
  { name: 'sink answers 503', mode: 'refuse', exporter: {}, reached: (sink) => sink.refused > 0 },
  { name: 'sink holds requests unanswered', mode: 'hold', exporter: { timeout: '120s' }, reached: (sink) => sink.heldTotal > 0 },
];

for (const v of variants) test(`memory budget (${v.name}): refuse when full, keep nothing refused, lose nothing acknowledged`, async (t) => {
  const sink = await startSwitchableSink(v.mode);
  t.after(() => sink.close());
  const dir = makeTempDir('membudget');
  const config = makeConfig(dir, {
    memory_limit_mib: 1,
    exporters: {
      otlphttp: {
        endpoint: `http://127.0.0.1:${sink.port}`,
        retry_on_failure: { initial_interval: '10ms', max_interval: '50ms', max_elapsed_time: '0s' },
        sending_queue: { queue_size: 10000 },
        ...v.exporter,
      },
    },
  });
  config.processors.batch = { timeout: '10ms' };
  config.kansatsu.shutdown_timeout = '20s';
  const col = await startCollector(t, config, 'kansatsu[membudget]', dir);
  const pid = col.proc.pid;
  const make = requestFactory(SPANS, PAYLOAD);

  const acked = new Set();        // span ids of requests answered 200 / OK
  const everRefused = new Set();  // span ids of requests refused at least once
  const pending = [];             // refused requests still to re-send: {r, transport}
  let http503 = 0;                // refused HTTP attempts (whole run)
  let grpcUnavailable = 0;        // refused gRPC attempts (whole run)
  let maxRss = 0;
  const sampleRss = () => { maxRss = Math.max(maxRss, rssBytes(pid)); };
  const summary = () => `acked spans ${acked.size}, refused requests pending ${pending.length}, http 503s ${http503}, ` +
    `grpc UNAVAILABLE ${grpcUnavailable}, sink: refused ${sink.refused} held ${sink.heldTotal} accepted ${sink.accepted} requests, ` +
    `${sink.counts.size} distinct spans, max RSS ${(maxRss / 1048576).toFixed(1)} MiB`;

  // ---- 1. fill the budget while the sink does not accept ----------------------------
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
    assert.equal(res.status, 503, `request ${r}: only 200 or 503 are valid answers, got ${res.status} ${res.body}\n${col.tail()}`);
    first = { r, ...checkRefusal(res, `request ${r} (first refusal)`) };
    http503++;
    for (const id of spanIds) everRefused.add(id);
    pending.push({ r, transport: 'http' });
    break;
  }
  assert.ok(first, `no 503 after ${MAX_FILL_REQUESTS} requests of ${SPANS} spans with memory_limit_mib: 1; ${summary()}\n${col.tail()}`);
  t.diagnostic(`first 503 at request ${first.r} (${acked.size} spans acknowledged before it): ` +
    `Retry-After ${first.retryAfter}, message ${JSON.stringify(first.message)}`);
  // the data is held because the exporter cannot deliver: the sink saw it try
  await sink.waitFor(() => v.reached(sink), 20000, `the otlphttp exporter to reach the sink (${v.mode})`);

  // Nothing is released while the sink does not accept, so same-sized requests keep
  // being refused.
  for (let k = 0; k < EXTRA_AFTER_FULL; k++) {
    const r = next++;
    const { body, spanIds } = make(r);
    const res = await httpRequest({ port: col.httpPort, headers: PB, body });
    checkRefusal(res, `request ${r} (sent while the budget is full)`);
    http503++;
    for (const id of spanIds) everRefused.add(id);
    pending.push({ r, transport: 'http' });
  }

  // ---- 2. gRPC while full: UNAVAILABLE ----------------------------------------
  {
    const r = next++;
    const { body, spanIds } = make(r);
    const g = await grpcExport(col.grpcPort, body);
    assert.equal(g.code, GrpcStatus.UNAVAILABLE,
      `gRPC Export while the budget is full: code ${g.code} (${g.details}), expected UNAVAILABLE\n${col.tail()}`);
    grpcUnavailable++;
    for (const id of spanIds) everRefused.add(id);
    pending.push({ r, transport: 'grpc' });
    t.diagnostic(`gRPC while full: UNAVAILABLE "${g.details}"`);
  }

  // ---- 3. metrics and RSS while full ---------------------------------------------
  {
    const { text, samples } = await scrape(col);
    const refusedHttp = metricSum(samples, 'kansatsu_receiver_refused_spans_total',
      { receiver: 'otlp', transport: 'http', reason: 'memory_limit' });
    const refusedGrpc = metricSum(samples, 'kansatsu_receiver_refused_spans_total',
      { receiver: 'otlp', transport: 'grpc', reason: 'memory_limit' });
    const used = metricSum(samples, 'kansatsu_memory_used_bytes');
    const limit = metricSum(samples, 'kansatsu_memory_limit_bytes');
    assert.ok(refusedHttp > 0, `kansatsu_receiver_refused_spans_total{transport="http",reason="memory_limit"} = ${refusedHttp}, expected > 0\n${text}`);
    assert.ok(refusedGrpc > 0, `kansatsu_receiver_refused_spans_total{transport="grpc",reason="memory_limit"} = ${refusedGrpc}, expected > 0\n${text}`);
    assert.equal(limit, 1024 * 1024, `kansatsu_memory_limit_bytes for memory_limit_mib: 1\n${text}`);
    assert.ok(used !== null && used <= limit, `kansatsu_memory_used_bytes ${used} must be <= limit ${limit}\n${text}`);
    t.diagnostic(`while full: memory used ${used} of ${limit} bytes; refused spans http ${refusedHttp} grpc ${refusedGrpc}`);
  }
  sampleRss();
  assert.ok(maxRss < RSS_BOUND, `VmRSS ${maxRss} bytes >= ${RSS_BOUND} while the budget is 1 MiB; ${summary()}`);

  // ---- 4+5. the sink accepts; at once re-send the refused requests (racing the
  // drain, as SDKs would) until each is acknowledged -------------------------------
  sink.setMode('accept');
  const retryEnd = Date.now() + RETRY_MS;
  for (const p of pending.splice(0)) {
    const { body, spanIds } = make(p.r);
    for (;;) {
      assert.ok(Date.now() < retryEnd, `refused request ${p.r} (${p.transport}) still refused after ${RETRY_MS} ms; ${summary()}\n${col.tail()}`);
      let wait;
      if (p.transport === 'http') {
        const res = await httpRequest({ port: col.httpPort, headers: PB, body });
        if (res.status === 200) break;
        wait = checkRefusal(res, `retry of request ${p.r}`).retryAfter * 1000;
        http503++;
      } else {
        const g = await grpcExport(col.grpcPort, body);
        if (g.code === 0) break;
        assert.equal(g.code, GrpcStatus.UNAVAILABLE, `gRPC retry of request ${p.r}: code ${g.code} (${g.details})`);
        grpcUnavailable++;
        wait = 1000;
      }
      await pause(wait); // the retry delay the server asked for, as an SDK waits
    }
    for (const id of spanIds) acked.add(id);
  }
  await sink.waitFor(() => sink.hasAll(acked), DRAIN_MS,
    `the sink to receive all ${acked.size} acknowledged spans, retried ones included`).catch((e) => {
    throw new Error(`${e.message}; ${summary()}\n${col.tail()}`);
  });
  sampleRss();

  // ---- 6. metrics after the drain -----------------------------------------------------
  {
    // The refused counter must match what the clients saw: SPANS per refused attempt.
    const { text, samples } = await scrape(col);
    const refusedHttp = metricSum(samples, 'kansatsu_receiver_refused_spans_total', { receiver: 'otlp', transport: 'http' });
    const refusedGrpc = metricSum(samples, 'kansatsu_receiver_refused_spans_total', { receiver: 'otlp', transport: 'grpc' });
    assert.equal(refusedHttp, http503 * SPANS, `refused http spans vs ${http503} refused attempts of ${SPANS} spans\n${text}`);
    assert.equal(refusedGrpc, grpcUnavailable * SPANS, `refused grpc spans vs ${grpcUnavailable} refused attempts of ${SPANS} spans\n${text}`);
    const dropped = metricSum(samples, 'kansatsu_exporter_dropped_spans_total', { exporter: 'otlphttp' }) || 0;
    assert.equal(dropped, 0, `kansatsu_exporter_dropped_spans_total{exporter="otlphttp"}\n${text}`);
    // Once everything is delivered the budget drains back (bounded poll of the gauge).
    let used = -1;
    await pollUntil(async () => {
      used = metricSum((await scrape(col)).samples, 'kansatsu_memory_used_bytes');
      return used === 0;
    }, 20000, 'kansatsu_memory_used_bytes to return to 0 after every span was delivered').catch((e) => {
      throw new Error(`${e.message} (last value ${used}); ${summary()}`);
    });
  }
  assert.ok(maxRss < RSS_BOUND, `VmRSS ${maxRss} bytes >= ${RSS_BOUND}; ${summary()}`);

  // ---- 7. SIGTERM, then compare what the sink received with what was acknowledged ----
  await col.stop();
  assert.deepEqual(sink.errors, [], 'requests the sink could not decode');
  assert.deepEqual([...sink.paths], ['/v1/traces'], 'otlphttp exporter request paths');
  const missing = [...acked].filter((id) => !sink.counts.has(id));
  const extra = [...sink.counts.keys()].filter((id) => !acked.has(id));
  const dups = [...sink.counts].filter(([, n]) => n > 1);
  const refusedButAcked = [...everRefused].filter((id) => acked.has(id)).length;
  assert.equal(refusedButAcked, everRefused.size, 'every refused request was retried until acknowledged');
  assert.deepEqual({ missing: missing.length, extra: extra.length, duplicated: dups.length }, { missing: 0, extra: 0, duplicated: 0 },
    `sink vs acknowledged spans: missing e.g. ${missing.slice(0, 5).join(',')}; extra e.g. ${extra.slice(0, 5).join(',')}; ` +
    `duplicated e.g. ${dups.slice(0, 5).map(([id, n]) => `${id}x${n}`).join(',')}; ${summary()}`);
  t.diagnostic(summary());
});

// Retry delays follow the drain (collector/core/kn_drain.h): the sink accepts
// at once, so the span budget (memory_limit_mib: 1 -> 256 KiB) empties in
// milliseconds. Bursts of concurrent requests that together exceed it are
// partly refused; a refused gRPC request must carry a RetryInfo delay below
// the old fixed second (milliseconds: seconds + nanos), an HTTP one a
// Retry-After of whole seconds, at least 1 (RFC 9110 has no fractions).
// The refused requests are retried after the advised delay until
// acknowledged, and the sink must get every acknowledged span exactly once.
test('retry delays follow the drain: gRPC RetryInfo below 1 s, HTTP Retry-After in whole seconds', async (t) => {
  const sink = await startSwitchableSink('accept');
  t.after(() => sink.close());
  const dir = makeTempDir('retrydelay');
  const config = makeConfig(dir, {
    memory_limit_mib: 1,
    exporters: {
      otlphttp: {
        endpoint: `http://127.0.0.1:${sink.port}`,
        retry_on_failure: { initial_interval: '10ms', max_interval: '50ms', max_elapsed_time: '0s' },
        sending_queue: { queue_size: 10000 },
      },
    },
  });
  config.processors.batch = { timeout: '10ms' };
  const col = await startCollector(t, config, 'kansatsu[retrydelay]', dir);
  const make = requestFactory(SPANS * 4, PAYLOAD); // ~90 KiB charged: three fill the budget
  const acked = new Set();
  const pending = [];             // refused requests: {r, transport, waitMs}
  let next = 0;
  const drainRate = async () => metricSum((await scrape(col)).samples, 'kansatsu_memory_drain_bytes_per_second');
  const grpcDelays = [];
  const httpDelays = [];
  // one request; null when acknowledged, else {r, transport, waitMs: the delay advised}
  const send = async (r, transport) => {
    const { body, spanIds } = make(r);
    if (transport === 'http') {
      const res = await httpRequest({ port: col.httpPort, headers: PB, body });
      if (res.status === 200) { for (const id of spanIds) acked.add(id); return null; }
      return { r, transport, waitMs: checkRefusal(res, `HTTP request ${r}`).retryAfter * 1000 };
    }
    const g = await grpcExport(col.grpcPort, body);
    if (g.code === 0) { for (const id of spanIds) acked.add(id); return null; }
    assert.equal(g.code, GrpcStatus.UNAVAILABLE, `gRPC request ${r}: code ${g.code} (${g.details})`);
    const bin = g.metadata?.get('grpc-status-details-bin') ?? [];
    assert.equal(bin.length, 1, `gRPC request ${r}: UNAVAILABLE without grpc-status-details-bin`);
    assert.equal(decodeStatus(bin[0]).code, 14, `gRPC request ${r}: google.rpc.Status code`);
    const ms = retryDelayMs(bin[0]);
    assert.ok(ms !== null, `gRPC request ${r}: UNAVAILABLE without RetryInfo`);
    return { r, transport, waitMs: ms };
  };
  // 1. requests one after another until the collector has measured its drain
  // (one at a time may still be refused while the batch processor holds earlier ones)
  let rate = 0;
  await pollUntil(async () => {
    const refused = await send(next++, 'http');
    if (refused) pending.push(refused);
    return (rate = await drainRate()) > 0;
  }, 30000, 'kansatsu_memory_drain_bytes_per_second > 0 while requests flow');
  t.diagnostic(`drain estimate after ${next} requests: ${Math.round(rate)} bytes/s`);

  // 2. bursts of 12 gRPC + 4 HTTP requests at once until both transports saw a refusal
  for (let round = 0; round < 50 && (grpcDelays.length === 0 || httpDelays.length === 0); round++) {
    const burst = [];
    for (let k = 0; k < 16; k++) burst.push(send(next++, k < 12 ? 'grpc' : 'http'));
    for (const refused of await Promise.all(burst)) {
      if (!refused) continue;
      (refused.transport === 'grpc' ? grpcDelays : httpDelays).push(refused.waitMs);
      pending.push(refused);
    }
  }
  t.diagnostic(`refusals: gRPC RetryInfo ms ${JSON.stringify(grpcDelays.map((v) => Math.round(v)))}, ` +
    `HTTP Retry-After ms ${JSON.stringify(httpDelays)}`);
  assert.ok(grpcDelays.length > 0 && httpDelays.length > 0,
    `50 bursts of 16 requests against a 256 KiB budget: refused gRPC ${grpcDelays.length}, HTTP ${httpDelays.length}`);
  for (const ms of grpcDelays) {
    assert.ok(ms >= 5 && ms < 1000, `RetryInfo ${ms} ms: the pipeline drains fast, so it must be within [5 ms, 1 s)`);
  }
  for (const ms of httpDelays) assert.ok(ms >= 1000 && ms <= 5000, `Retry-After ${ms / 1000} s outside [1, 5]`);
  const advised = metricSum((await scrape(col)).samples, 'kansatsu_receiver_retry_delay_seconds');
  assert.ok(advised > 0 && advised <= 5, `kansatsu_receiver_retry_delay_seconds ${advised}: in (0, 5] after refusals`);

  // 3. each refused request again after the delay it was given, until acknowledged
  const retryEnd = Date.now() + RETRY_MS;
  for (let p = pending.shift(); p; p = pending.shift()) {
    assert.ok(Date.now() < retryEnd, `refused request ${p.r} still refused after ${RETRY_MS} ms`);
    await pause(p.waitMs);
    const again = await send(p.r, p.transport);
    if (again) pending.push(again);
  }
  await sink.waitFor(() => sink.hasAll(acked), DRAIN_MS, `the sink to receive all ${acked.size} acknowledged spans`);
  await col.stop();
  assert.deepEqual(sink.errors, [], 'requests the sink could not decode');
  const extra = [...sink.counts.keys()].filter((id) => !acked.has(id));
  const dups = [...sink.counts].filter(([, n]) => n > 1);
  assert.deepEqual({ extra: extra.length, duplicated: dups.length }, { extra: 0, duplicated: 0 },
    'the sink got spans that were never acknowledged, or some twice');
});

// Request bodies have their own bound (half the headroom: 8 MiB with
// memory_limit_mib 64): two raw connections each hold 3 MiB of an unfinished
// 6 MiB body (a 4 MiB buffer each), a third upload is refused at once with a
// retryable 503 counted as memory_limit; once the two close, the bytes are
// given back and a request passes. Waits poll the gauge with a deadline.
test('request bodies: uploads past the request-body bound are refused with a retryable 503', async (t) => {
  const dir = makeTempDir('reqbudget');
  const config = makeConfig(dir, { memory_limit_mib: 64 });
  const col = await startCollector(t, config, 'kansatsu[reqbudget]', dir);
  const gauge = async (name) => metricSum((await scrape(col)).samples, name);
  assert.equal(await gauge('kansatsu_receiver_request_bytes_limit'), 8 * 1048576,
    'kansatsu_receiver_request_bytes_limit: half of the 16 MiB headroom');
  const head = 'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n' +
    `Content-Length: ${6 * 1048576}\r\n\r\n`;
  const open = [];
  t.after(() => { for (const s of open) s.destroy(); });
  const upload = () => new Promise((resolve, reject) => {
    const s = net.connect(col.httpPort, '127.0.0.1', () => {
      s.write(head);
      s.write(Buffer.alloc(3 * 1048576));
      resolve(s);
    });
    s.on('error', reject);
    open.push(s);
  });
  for (let k = 1; k <= 2; k++) {
    await upload();
    let held = 0;
    await pollUntil(async () => (held = await gauge('kansatsu_receiver_request_bytes')) === k * 4 * 1048576,
      20000, `kansatsu_receiver_request_bytes to reach ${k} x 4 MiB`).catch((e) => {
      throw new Error(`${e.message} (last value ${held})\n${col.tail()}`);
    });
  }
  // the third upload: answered before its body is in
  const third = await upload();
  const answer = await new Promise((resolve, reject) => {
    let text = '';
    third.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    third.on('close', () => resolve(text));
    third.on('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 503 /, `third upload: ${answer.slice(0, 200)}`);
  assert.match(answer, /\r\nRetry-After: 1\r\n/i, `third upload: Retry-After\n${answer.slice(0, 400)}`);
  const refused = metricSum((await scrape(col)).samples, 'kansatsu_receiver_refused_requests_total',
    { receiver: 'otlp', transport: 'http', reason: 'memory_limit' });
  assert.equal(refused, 1, 'kansatsu_receiver_refused_requests_total{reason="memory_limit"}');
  for (const s of open) s.destroy();
  let held = -1;
  await pollUntil(async () => (held = await gauge('kansatsu_receiver_request_bytes')) === 0,
    20000, 'kansatsu_receiver_request_bytes to return to 0 once the uploads closed').catch((e) => {
    throw new Error(`${e.message} (last value ${held})\n${col.tail()}`);
  });
  const { body } = requestFactory(5, 10)(0);
  const res = await httpRequest({ port: col.httpPort, headers: PB, body });
  assert.equal(res.status, 200, `a request after the uploads closed: ${res.status} ${res.body}`);
  await col.stop();
});
