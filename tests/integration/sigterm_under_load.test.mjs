// SPDX-License-Identifier: Apache-2.0
// (d) SIGTERM under load: concurrent senders post valid OTLP/HTTP protobuf
// requests (one serialized template, span and trace ids patched per request)
// as fast as they are answered; SIGTERM is sent once enough requests were
// acknowledged. After exit code 0, every span of every request that got a 200
// must be in the file exporter's output (proto records, checked byte-wise).
// Requests answered 503 or failed at the connection are not acknowledged.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { startCollector, makeTempDir, makeConfig, readProtoRecords, httpRequest } from './harness.mjs';
import { rawSpan, serializeProto } from './otel.mjs';
import { spanIdsOfTracesData } from './pb.mjs';

const SENDERS = 6;
const SPANS_PER_REQUEST = 10;
const SIGTERM_AFTER_ACKS = 1500; // acknowledged requests before SIGTERM
const MAX_REQUESTS = 40000; // bound on the whole run
const MAX_RUN_MS = 90000; // bound on the whole run

const TEMPLATE_TRACE = 'e0e1e2e3e4e5e6e7e8e9eaebecedeeef';
const templateSpanId = (i) => `a5c3a5c3a5c3a5${i.toString(16).padStart(2, '0')}`;

function offsetsOf(buf, hex) {
  const needle = Buffer.from(hex, 'hex');
  const offs = [];
  for (let o = buf.indexOf(needle); o >= 0; o = buf.indexOf(needle, o + 1)) offs.push(o);
  return offs;
}

// Builds the template once; returns make(r) -> {body, spanIds[]}
function requestFactory() {
  const spans = [];
  for (let i = 0; i < SPANS_PER_REQUEST; i++) {
    spans.push(rawSpan({
      traceId: TEMPLATE_TRACE, spanId: templateSpanId(i), parentSpanId: i === 0 ? undefined : templateSpanId(0),
      name: `load-${i}`, attributes: { 'load.index': i, 'load.payload': 'x'.repeat(64) },
    }));
  }
  const template = serializeProto(spans);
  const traceOffs = offsetsOf(template, TEMPLATE_TRACE);
  assert.equal(traceOffs.length, SPANS_PER_REQUEST, 'template: one trace id per span');
  const spanOffs = [];
  for (let i = 0; i < SPANS_PER_REQUEST; i++) {
    const offs = offsetsOf(template, templateSpanId(i));
    assert.equal(offs.length, i === 0 ? SPANS_PER_REQUEST : 1, `template: occurrences of span id ${i}`);
    spanOffs.push(offs);
  }
  return (r) => {
    const body = Buffer.from(template);
    const traceId = Buffer.alloc(16);
    traceId.writeUInt32BE(0x7e57da7a, 0);
    traceId.writeUInt32BE(r + 1, 12);
    for (const o of traceOffs) traceId.copy(body, o);
    const ids = [];
    for (let i = 0; i < SPANS_PER_REQUEST; i++) {
      const sid = Buffer.alloc(8);
      sid.writeUInt32BE(r + 1, 0);
      sid.writeUInt16BE(i, 4);
      sid.writeUInt16BE(0xbeef, 6);
      for (const o of spanOffs[i]) sid.copy(body, o);
      ids.push(sid.toString('hex'));
    }
    return { body, spanIds: ids };
  };
}

test('every span acknowledged before and during SIGTERM is exported', async (t) => {
  const dir = makeTempDir('load');
  const out = join(dir, 'out.pb');
  const col = await startCollector(t, makeConfig(dir, { exporters: { file: { path: out, format: 'proto' } } }), 'kansatsu[load]', dir);
  const port = col.httpPort;
  const make = requestFactory();
  const acked = new Set();
  const statuses = {};
  const errors = {};
  let next = 0;
  let ackedRequests = 0;
  let termAt = -1;
  const deadline = Date.now() + MAX_RUN_MS;

  async function sender() {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!col.exit && next < MAX_REQUESTS && Date.now() < deadline) {
        const r = next++;
        const { body, spanIds } = make(r);
        let res;
        try {
          res = await httpRequest({ port, headers: { 'content-type': 'application/x-protobuf' }, body, agent });
        } catch (e) {
          errors[e.code || e.message] = (errors[e.code || e.message] || 0) + 1;
          if (e.code === 'ECONNREFUSED') break; // listener closed: the collector stopped accepting
          continue;
        }
        statuses[res.status] = (statuses[res.status] || 0) + 1;
        if (res.status === 200) {
          for (const id of spanIds) acked.add(id);
          ackedRequests++;
          if (ackedRequests === SIGTERM_AFTER_ACKS) {
            termAt = r;
            col.terminate();
          }
        }
      }
    } finally {
      agent.destroy();
    }
  }

  await Promise.all(Array.from({ length: SENDERS }, sender));
  const summary = `requests ${next}, acked ${ackedRequests}, statuses ${JSON.stringify(statuses)}, errors ${JSON.stringify(errors)}, SIGTERM at request ${termAt}`;
  assert.ok(termAt >= 0, `SIGTERM was never sent (fewer than ${SIGTERM_AFTER_ACKS} acks): ${summary}\n${col.tail()}`);
  await col.stop();
  const unexpected = Object.keys(statuses).filter((s) => s !== '200' && s !== '503');
  assert.deepEqual(unexpected, [], `only 200 and 503 are valid answers to valid requests: ${summary}`);

  const written = new Set();
  for (const rec of readProtoRecords(out)) for (const id of spanIdsOfTracesData(rec)) written.add(id);
  const lost = [...acked].filter((id) => !written.has(id));
  assert.equal(lost.length, 0, `${lost.length} of ${acked.size} acknowledged spans missing from the output (e.g. ${lost.slice(0, 5).join(', ')}); ${summary}`);
  t.diagnostic(summary);
});
