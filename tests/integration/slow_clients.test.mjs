// SPDX-License-Identifier: Apache-2.0
// Slow clients on the OTLP/HTTP receiver: 2,000 connections send a partial
// request one byte a second (half stuck in the headers, half in the body)
// while the real OpenTelemetry JS SDK's HTTP/protobuf exporter exports; its
// exports must be answered while every slow connection is still open, and
// then the collector must close the slow ones itself, by
// receivers.otlp.protocols.http.read_header_timeout / read_timeout, counted
// in kansatsu_receiver_connections_closed_total{reason}. The collector is
// started with a soft open-files limit of 1024 (this process lowers its own
// with prlimit(1) just for the spawn) to check that it raises its soft limit
// to the hard one at start: 2,000 connections do not fit in 1024.
//
// Timing: the issue asks that a normal client "answers within 100 ms". That
// one bound is asserted, on the median of nine sequential exports (one
// scheduling hiccup on a shared 2-core VM must not fail the test; a server
// stalled by the slow clients would push every export past it); each
// latency is printed. Every other wait is a poll with a deadline.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { makeConfig, makeTempDir, startCollector, httpGet, withTimeout } from './harness.mjs';
import { makeExporter, emitRichSpans } from './otel.mjs';
import { ExportResultCode } from '@opentelemetry/core';
import { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

const SLOW = 2000;
const HEADER_TIMEOUT_S = 5;
const READ_TIMEOUT_S = 6;

function nofile(pid) {
  const r = spawnSync('prlimit', ['--pid', String(pid), '--nofile', '--output=SOFT,HARD', '--noheadings', '--raw'],
    { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`prlimit: ${r.stderr}`);
  const [soft, hard] = r.stdout.trim().split(/\s+/).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft, hard };
}

function setSoftNofile(pid, soft) {
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`prlimit --nofile=${soft}: ${r.stderr}`);
}

async function metric(col, name, reason) {
  const r = await httpGet(col.metricsPort, '/metrics');
  const re = new RegExp(`^${name}\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)$`, 'm');
  const m = r.body.toString().match(re);
  return m ? Number(m[1]) : 0;
}

async function pollUntil(what, ms, fn) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v.ok) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${v.why}`);
    await new Promise((r) => setTimeout(r, 100)); // poll interval, not a synchronisation
  }
}

// Opens one slow connection; resolves once connected. The object counts the
// server's close (FIN, or a reset when a byte meets a closed socket).
function openSlow(port, prefix) {
  return new Promise((resolve, reject) => {
    const c = { sock: null, closedByServer: false, sent: 0, prefix };
    const s = net.connect({ host: '127.0.0.1', port });
    c.sock = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      s.write(prefix);
      resolve(c);
    });
    const gone = () => { c.closedByServer = true; };
    s.on('end', gone);
    s.on('error', (e) => { if (!s.connecting) gone(); else reject(e); });
    s.on('close', gone);
  });
}

test('2,000 byte-a-second clients neither delay a normal client nor stay open', { timeout: 240000 }, async (t) => {
  // the collector starts with a soft limit of 1024 (it must raise it)
  const me = nofile(process.pid);
  if (me.hard < SLOW + 200) throw new Error(`the hard open-files limit (${me.hard}) is below the ${SLOW + 200} this test needs`);
  const dir = makeTempDir('slow');
  const cfg = makeConfig(dir, {
    http: { read_header_timeout: `${HEADER_TIMEOUT_S}s`, read_timeout: `${READ_TIMEOUT_S}s`, idle_timeout: '2m' },
  });
  let col;
  setSoftNofile(process.pid, Math.min(1024, me.soft));
  try {
    col = await startCollector(t, cfg, 'kansatsu[slow]', dir);
  } finally {
    setSoftNofile(process.pid, me.hard === Infinity ? 1 << 20 : me.hard);
  }
  const colLimit = nofile(col.proc.pid);
  assert.equal(colLimit.soft, colLimit.hard, `collector's open-files limit after start: ${JSON.stringify(colLimit)}`);
  assert.match(col.stderr, /open files: soft limit raised from \d+ to the hard limit/);
  const port = col.httpPort;

  // 2,000 slow connections: half trickle their headers, half their body
  const slow = [];
  const heads = 'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n';
  for (let i = 0; i < SLOW; i += 100) {
    const batch = [];
    for (let k = i; k < i + 100 && k < SLOW; k++) {
      batch.push(openSlow(port, k % 2 === 0 ? `${heads}X-Slow: ` : `${heads}Content-Length: 1000000\r\n\r\n`));
    }
    slow.push(...await withTimeout(Promise.all(batch), 30000, `slow connections ${i}..${i + 99}`));
  }
  t.after(() => { for (const c of slow) c.sock.destroy(); });
  const opened = Date.now();
  const tick = setInterval(() => {
    for (const c of slow) {
      if (!c.closedByServer && c.sock.writable) { c.sock.write('a'); c.sent++; }
    }
  }, 1000);
  t.after(() => clearInterval(tick));

  // the normal client: the SDK's HTTP/protobuf exporter, nine exports in a row
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
  emitRichSpans(provider, 'normal');
  const spans = memory.getFinishedSpans();
  const exporter = makeExporter('http/protobuf', col);
  const lat = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    const r = await withTimeout(new Promise((res) => exporter.export(spans, res)), 20000, `export ${i}`);
    lat.push(performance.now() - t0);
    assert.equal(r.code, ExportResultCode.SUCCESS, `export ${i}: ${r.error && r.error.message}`);
  }
  const stillOpen = slow.filter((c) => !c.closedByServer).length;
  const sorted = [...lat].sort((a, b) => a - b);
  const median = sorted[4];
  console.log(`# normal client with ${stillOpen} slow connections open (${((Date.now() - opened) / 1000).toFixed(1)} s ` +
    `after they opened): export latencies ${lat.map((v) => v.toFixed(1)).join(', ')} ms; median ${median.toFixed(1)} ms`);
  assert.equal(stillOpen, SLOW, 'every slow connection was still open while the normal client was answered');
  assert.ok(median < 100, `median export latency ${median.toFixed(1)} ms with ${SLOW} slow connections (issue: within 100 ms)`);
  await exporter.shutdown();

  // then the collector closes them: headers by read_header_timeout, bodies by read_timeout
  await pollUntil('the collector to close every slow connection', 60000, async () => {
    const left = slow.filter((c) => !c.closedByServer).length;
    return { ok: left === 0, why: `${left} still open` };
  });
  console.log(`# all ${SLOW} slow connections closed by the collector ${((Date.now() - opened) / 1000).toFixed(1)} s after they opened ` +
    `(read_header_timeout ${HEADER_TIMEOUT_S}s, read_timeout ${READ_TIMEOUT_S}s); bytes sent per connection: ` +
    `max ${Math.max(...slow.map((c) => c.sent))}`);
  const byHeader = await metric(col, 'kansatsu_receiver_connections_closed_total', 'read_header_timeout');
  const byRead = await metric(col, 'kansatsu_receiver_connections_closed_total', 'read_timeout');
  const byIdle = await metric(col, 'kansatsu_receiver_connections_closed_total', 'idle_timeout');
  assert.equal(byHeader, SLOW / 2, 'closed by read_header_timeout');
  assert.equal(byRead, SLOW / 2, 'closed by read_timeout');
  assert.equal(byIdle, 0, 'closed by idle_timeout');

  // and it still serves
  const after = makeExporter('http/protobuf', col);
  const r = await withTimeout(new Promise((res) => after.export(spans, res)), 20000, 'export after the slow clients');
  assert.equal(r.code, ExportResultCode.SUCCESS);
  await after.shutdown();
  clearInterval(tick);
  await col.stop();
  assert.ok(readFileSync(cfg.exporters.file.path, 'utf8').length > 0, 'the normal exports reached the file exporter');
});
