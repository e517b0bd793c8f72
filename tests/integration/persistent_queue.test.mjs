// SPDX-License-Identifier: Apache-2.0
// Persistent sending queue (extensions.file_storage + sending_queue.storage),
// with the real binary:
//  1. crash recovery: the backend is down (an OTLP/HTTP sink answering 503),
//     200,000 spans are acknowledged, the collector is killed with SIGKILL once
//     every acknowledged span reached the queue (kansatsu_exporter_queue_
//     persisted_spans_total = accepted spans), and restarted with the backend
//     up; it is killed again half-way through the replay and restarted once
//     more: every acknowledged span arrives; duplicates (the batches in flight
//     at the second kill: delivery is at least once) are counted and reported;
//  2. a segment file truncated while the collector was down (a torn write) is
//     skipped and counted (kansatsu_exporter_queue_skipped_records_total
//     {reason="torn"}), everything before it still arrives;
//  3. a full disk: the queue directory is a 4 MiB tmpfs (mounted here when the
//     test runs as root; otherwise, or with KANSATSU_IT_NO_MOUNT set,
//     sending_queue.max_bytes exercises the same refusal path, and the test
//     says so): with the backend down, receivers
//     end up refusing with retryable answers (503 + Retry-After, gRPC
//     UNAVAILABLE); then the backend comes up, the refused requests are retried
//     as an SDK would, and every acknowledged span arrives, none dropped;
//  4. loadbalancing: batches on disk for an endpoint that is no longer in the
//     ring after a restart are routed again to the current endpoints.
// Every wait is a poll of a metric, a sink event or a response with a deadline.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, truncateSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCollector, makeTempDir, makeConfig, httpRequest } from './harness.mjs';
import { grpcExport, GrpcStatus, startGrpcSink } from './sinks.mjs';
import { spanIdsOfTracesData, decodeStatus } from './pb.mjs';
import { startSwitchableSink, requestFactory, scrape, metricSum, pollUntil, pause } from './memory_limit_helpers.mjs';

const PB = { 'content-type': 'application/x-protobuf' };
const SPANS = 100;            // spans per request
const PAYLOAD = 40;           // bytes of one string attribute per span
const TOTAL_SPANS = 200000;   // acknowledged before the kill
const SENDERS = 4;
const RETRY = { initial_interval: '100ms', max_interval: '500ms', max_elapsed_time: '0s' };

function pqConfig(dir, fsdir, exporters, extra = {}) {
  const config = makeConfig(dir, { exporters, memory_limit_mib: 256 });
  config.extensions.file_storage = { directory: fsdir, ...extra };
  config.service.extensions = ['health_check', 'file_storage'];
  config.kansatsu.shutdown_timeout = '20s';
  return config;
}

function otlphttpExporter(port, queue = {}) {
  return {
    otlphttp: {
      endpoint: `http://127.0.0.1:${port}`,
      retry_on_failure: RETRY,
      sending_queue: { storage: 'file_storage', ...queue },
    },
  };
}

async function metrics(col) {
  return (await scrape(col)).samples;
}

// Waits until every span the receivers accepted was written to the queue.
async function waitPersisted(col, exporter, ms = 120000) {
  let last = '';
  await pollUntil(async () => {
    const s = await metrics(col);
    const accepted = metricSum(s, 'kansatsu_receiver_accepted_spans_total') || 0;
    const persisted = metricSum(s, 'kansatsu_exporter_queue_persisted_spans_total', exporter ? { exporter } : {}) || 0;
    last = `accepted ${accepted}, persisted ${persisted}`;
    return accepted > 0 && persisted >= accepted;
  }, ms, 'every accepted span in the persistent queue', 100).catch((e) => {
    throw new Error(`${e.message} (${last})\n${col.tail()}`);
  });
}

// Sends requests (make(r) for r = from, from+1, ...) over HTTP from SENDERS
// connections until `want` spans are acknowledged; a refused request is sent
// again later. Returns the acknowledged span ids.
async function sendUntil(col, make, want, from = 0) {
  const acked = new Set();
  const statuses = {};
  let next = from;
  const retry = [];
  const deadline = Date.now() + 240000;
  async function sender() {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (acked.size < want) {
        assert.ok(Date.now() < deadline, `only ${acked.size} of ${want} spans acknowledged in time; ${JSON.stringify(statuses)}\n${col.tail()}`);
        const r = retry.length ? retry.shift() : next++;
        const { body, spanIds } = make(r);
        const res = await httpRequest({ port: col.httpPort, headers: PB, body, agent });
        statuses[res.status] = (statuses[res.status] || 0) + 1;
        if (res.status === 200) {
          for (const id of spanIds) acked.add(id);
        } else {
          assert.equal(res.status, 503, `request ${r}: ${res.status} ${res.body}`);
          retry.push(r);
          await pause(Number(res.headers['retry-after'] || 1) * 1000);
        }
      }
    } finally {
      agent.destroy();
    }
  }
  await Promise.all(Array.from({ length: SENDERS }, sender));
  return { acked, statuses, next };
}

function segments(fsdir) {
  const out = [];
  for (const q of readdirSync(fsdir)) {
    if (!q.startsWith('q-')) continue;
    for (const f of readdirSync(join(fsdir, q))) if (f.endsWith('.log')) out.push(join(fsdir, q, f));
  }
  return out.sort();
}

function arrivals(sink, acked) {
  let missing = 0;
  let dupSpans = 0;
  let dupExtra = 0;
  let unexpected = 0;
  for (const id of acked) if (!sink.counts.has(id)) missing++;
  for (const [id, n] of sink.counts) {
    if (n > 1) { dupSpans++; dupExtra += n - 1; }
    if (!acked.has(id)) unexpected++;
  }
  return { missing, dupSpans, dupExtra, unexpected };
}

test('kill -9 with the backend down: every acknowledged span arrives after a restart', async (t) => {
  const sink = await startSwitchableSink('refuse');
  t.after(() => sink.close());
  const dir = makeTempDir('pq-kill');
  const fsdir = join(dir, 'queue');
  mkdirSync(fsdir);
  const config = pqConfig(dir, fsdir, otlphttpExporter(sink.port));
  const col = await startCollector(t, config, 'kansatsu[pq-1]', dir);
  const make = requestFactory(SPANS, PAYLOAD);
  const t0 = Date.now();
  const { acked, statuses } = await sendUntil(col, make, TOTAL_SPANS);
  const sendMs = Date.now() - t0;
  await waitPersisted(col, 'otlphttp');
  const before = await metrics(col);
  const diskBatches = metricSum(before, 'kansatsu_exporter_queue_disk_batches', { exporter: 'otlphttp' });
  const diskBytes = metricSum(before, 'kansatsu_exporter_queue_disk_bytes', { exporter: 'otlphttp' });
  assert.ok(sink.refused > 0, 'the exporter tried the (down) backend');
  assert.equal(sink.accepted, 0, 'nothing was accepted while the backend was down');
  col.kill();
  await col.exited;
  assert.equal(col.exit.signal, 'SIGKILL');

  // Restart with the backend up, and kill again half-way through the replay:
  // the batches in flight then are sent again (at least once).
  sink.setMode('accept');
  const colMid = await startCollector(t, config, 'kansatsu[pq-1 restart]', dir);
  assert.match(colMid.stderr, /found in the persistent queue; they are sent first/);
  await pollUntil(() => sink.counts.size >= acked.size / 2, 120000, 'half of the spans at the sink', 10);
  colMid.kill();
  await colMid.exited;
  const atKill = arrivals(sink, acked);

  const col2 = await startCollector(t, config, 'kansatsu[pq-1 second restart]', dir);
  let last = null;
  await pollUntil(() => {
    last = arrivals(sink, acked);
    return last.missing === 0;
  }, 180000, `all ${acked.size} acknowledged spans at the sink`, 250).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(last)}\n${col2.tail()}`);
  });
  const after = await metrics(col2);
  const replayedSpans = metricSum(after, 'kansatsu_exporter_queue_replayed_spans_total', { exporter: 'otlphttp' });
  const replayedBatches = metricSum(after, 'kansatsu_exporter_queue_replayed_batches_total', { exporter: 'otlphttp' });
  assert.ok(replayedSpans >= atKill.missing, `replayed spans ${replayedSpans} < ${atKill.missing} still missing at the second kill`);
  assert.ok(replayedBatches < diskBatches, `the first restart's sent batches were marked done (${replayedBatches} of ${diskBatches} left)`);
  const skipped = metricSum(after, 'kansatsu_exporter_queue_skipped_records_total') || 0;
  assert.equal(skipped, 0, 'no record was damaged by SIGKILL (every append had returned)');
  const final = arrivals(sink, acked);
  assert.equal(final.unexpected, 0, 'only acknowledged spans arrive');
  await col2.stop();
  const summary = `${acked.size} spans acknowledged in ${sendMs} ms (statuses ${JSON.stringify(statuses)}); ` +
    `on disk at the kill: ${diskBatches} batches, ${diskBytes} bytes; restarted with the backend up and killed again ` +
    `with ${acked.size - atKill.missing} spans delivered (duplicates so far ${atKill.dupExtra}); second restart ` +
    `replayed ${replayedBatches} batches (${replayedSpans} spans); in the end: missing ${final.missing}, ` +
    `duplicates ${final.dupExtra} (${final.dupSpans} spans arrived more than once, ` +
    `${(100 * final.dupExtra / acked.size).toFixed(2)}% of the acknowledged)`;
  t.diagnostic(summary);
});

test('a truncated segment at start is skipped and counted; the rest arrives', async (t) => {
  const sink = await startSwitchableSink('refuse');
  t.after(() => sink.close());
  const dir = makeTempDir('pq-torn');
  const fsdir = join(dir, 'queue');
  mkdirSync(fsdir);
  const config = pqConfig(dir, fsdir, otlphttpExporter(sink.port));
  const col = await startCollector(t, config, 'kansatsu[pq-2]', dir);
  const make = requestFactory(SPANS, PAYLOAD);
  const { acked } = await sendUntil(col, make, 5000);
  await waitPersisted(col, 'otlphttp');
  const diskBatches = metricSum(await metrics(col), 'kansatsu_exporter_queue_disk_batches', { exporter: 'otlphttp' });
  col.kill();
  await col.exited;
  const segs = segments(fsdir);
  assert.ok(segs.length >= 1, `segment files in ${fsdir}`);
  const lastSeg = segs[segs.length - 1];
  truncateSync(lastSeg, statSync(lastSeg).size - 100); // the last record's tail is gone

  sink.setMode('accept');
  const col2 = await startCollector(t, config, 'kansatsu[pq-2 restart]', dir);
  await pollUntil(async () => {
    const s = await metrics(col2);
    return metricSum(s, 'kansatsu_exporter_queue_disk_batches', { exporter: 'otlphttp' }) === 0;
  }, 60000, 'the queue to drain', 100);
  const s = await metrics(col2);
  const torn = metricSum(s, 'kansatsu_exporter_queue_skipped_records_total', { exporter: 'otlphttp', reason: 'torn' });
  assert.equal(torn, 1, 'one torn record counted');
  assert.equal(metricSum(s, 'kansatsu_exporter_queue_replayed_batches_total', { exporter: 'otlphttp' }), diskBatches - 1);
  assert.match(col2.stderr, /a record cut short at byte \d+/);
  const a = arrivals(sink, acked);
  assert.ok(a.missing > 0 && a.missing <= 1024, `the torn record's spans (one batch) are missing: ${JSON.stringify(a)}`);
  assert.equal(a.unexpected, 0);
  await col2.stop();
  t.diagnostic(`torn record skipped: ${a.missing} spans of one batch lost of ${acked.size}; duplicates ${a.dupExtra}`);
});

function tryMount(dir, size) {
  if (process.env.KANSATSU_IT_NO_MOUNT) return 'KANSATSU_IT_NO_MOUNT is set';
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.stderr || r.error?.message || `exit ${r.status}`).trim();
}

test('a full disk makes receivers refuse (retryable); nothing acknowledged is lost', async (t) => {
  const sink = await startSwitchableSink('refuse');
  t.after(() => sink.close());
  const dir = makeTempDir('pq-full');
  const fsdir = join(dir, 'queue');
  mkdirSync(fsdir);
  const why = tryMount(fsdir, '4m');
  const tmpfs = why === null;
  const cols = [];
  t.after(async () => {
    for (const c of cols) { c.kill(); await c.exited; }
    if (tmpfs) spawnSync('umount', [fsdir]);
  });
  if (!tmpfs) t.diagnostic(`cannot mount a tmpfs (${why}): sending_queue.max_bytes: 4 MiB stands in for the full disk`);
  const config = pqConfig(dir, fsdir, otlphttpExporter(sink.port, tmpfs ? {} : { max_bytes: 4 << 20 }),
    { segment_size: 1 << 20 });
  const col = await startCollector(t, config, 'kansatsu[pq-3]', dir);
  cols.push(col);
  const make = requestFactory(SPANS, PAYLOAD);
  const acked = new Set();
  const pending = [];
  let next = 0;
  let first = null;
  while (next < 20000 && !first) {
    const r = next++;
    const { body, spanIds } = make(r);
    const res = await httpRequest({ port: col.httpPort, headers: PB, body });
    if (res.status === 200) {
      for (const id of spanIds) acked.add(id);
      continue;
    }
    assert.equal(res.status, 503, `request ${r}: ${res.status}`);
    const ra = res.headers['retry-after'];
    assert.match(String(ra), /^\d+$/, 'Retry-After in integer seconds');
    assert.equal(decodeStatus(res.body).code, 14, 'google.rpc.Status UNAVAILABLE');
    first = { r, ra, message: decodeStatus(res.body).message };
    pending.push({ r, transport: 'http' });
  }
  assert.ok(first, `no refusal after ${next} requests (${acked.size} spans acknowledged)\n${col.tail()}`);
  t.diagnostic(`first refusal at request ${first.r} after ${acked.size} acknowledged spans: Retry-After ${first.ra}, "${first.message}"`);
  {
    const r = next++;
    const g = await grpcExport(col.grpcPort, make(r).body);
    if (g.code === 0) for (const id of make(r).spanIds) acked.add(id);
    else {
      assert.ok([GrpcStatus.UNAVAILABLE, GrpcStatus.RESOURCE_EXHAUSTED].includes(g.code), `gRPC: ${g.code} ${g.details}`);
      pending.push({ r, transport: 'grpc' });
    }
  }
  const s = await metrics(col);
  const refused = metricSum(s, 'kansatsu_receiver_refused_spans_total', { reason: 'exporter_queue_full' });
  assert.ok(refused > 0, 'refusals counted with reason exporter_queue_full');
  if (tmpfs) {
    const nospace = metricSum(s, 'kansatsu_exporter_queue_append_failures_total', { exporter: 'otlphttp', reason: 'no_space' });
    assert.ok(nospace > 0, 'ENOSPC counted');
  } else {
    assert.equal(metricSum(s, 'kansatsu_exporter_queue_full', { exporter: 'otlphttp' }), 1);
  }

  sink.setMode('accept');
  const end = Date.now() + 120000;
  for (const p of pending.splice(0)) {
    const { body, spanIds } = make(p.r);
    for (;;) {
      assert.ok(Date.now() < end, `request ${p.r} still refused\n${col.tail()}`);
      let wait = 1000;
      if (p.transport === 'http') {
        const res = await httpRequest({ port: col.httpPort, headers: PB, body });
        if (res.status === 200) break;
        assert.equal(res.status, 503);
        wait = Number(res.headers['retry-after']) * 1000;
      } else {
        const g = await grpcExport(col.grpcPort, body);
        if (g.code === 0) break;
      }
      await pause(wait); // the delay the server asked for, as an SDK waits
    }
    for (const id of spanIds) acked.add(id);
  }
  let last = null;
  await pollUntil(() => {
    last = arrivals(sink, acked);
    return last.missing === 0;
  }, 120000, `all ${acked.size} acknowledged spans at the sink`, 250).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(last)}\n${col.tail()}`);
  });
  const after = await metrics(col);
  assert.equal(metricSum(after, 'kansatsu_exporter_dropped_spans_total', { exporter: 'otlphttp' }) || 0, 0, 'nothing dropped');
  await col.stop();
  cols.length = 0;
  t.diagnostic(`${tmpfs ? 'tmpfs 4 MiB' : 'max_bytes 4 MiB'}: ${acked.size} spans acknowledged, all arrived; ` +
    `refused spans ${refused}; duplicates ${last.dupExtra}`);
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

test('loadbalancing: batches on disk for an endpoint gone from the ring are routed again', async (t) => {
  const good = await startGrpcSink();
  t.after(() => good.close());
  const downPort = await freePort();
  const dir = makeTempDir('pq-lb');
  const fsdir = join(dir, 'queue');
  mkdirSync(fsdir);
  const lb = (port) => ({
    loadbalancing: {
      protocol: { otlp: { tls: { insecure: true }, timeout: '2s', retry_on_failure: RETRY,
        sending_queue: { storage: 'file_storage' } } },
      resolver: { static: { hostnames: [`127.0.0.1:${port}`] } },
    },
  });
  const col = await startCollector(t, pqConfig(dir, fsdir, lb(downPort)), 'kansatsu[pq-lb]', dir);
  const make = requestFactory(SPANS, PAYLOAD);
  const { acked } = await sendUntil(col, make, 3000);
  await waitPersisted(col, `loadbalancing/127.0.0.1:${downPort}`);
  col.kill();
  await col.exited;

  const col2 = await startCollector(t, pqConfig(dir, fsdir, lb(good.port)), 'kansatsu[pq-lb restart]', dir);
  assert.match(col2.stderr, /no longer in the ring, were routed again/);
  const got = new Map();
  await pollUntil(() => {
    got.clear();
    for (const r of good.requests) for (const id of spanIdsOfTracesData(r.body)) got.set(id, (got.get(id) || 0) + 1);
    for (const id of acked) if (!got.has(id)) return false;
    return true;
  }, 60000, `all ${acked.size} spans at the new endpoint`, 250);
  await col2.stop();
  const left = readdirSync(fsdir).filter((q) => q.startsWith('q-') && q.includes(String(downPort)));
  assert.deepEqual(left, [], 'the old endpoint\'s queue is gone once routed again');
  t.diagnostic(`${acked.size} spans left for 127.0.0.1:${downPort} reached 127.0.0.1:${good.port}`);
});
