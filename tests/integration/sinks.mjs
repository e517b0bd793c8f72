// SPDX-License-Identifier: Apache-2.0
// Tiny OTLP endpoints and clients the tests run in-process: an HTTP sink and a
// gRPC sink that record each export request (headers/metadata and body) and
// answer success, plus a unary gRPC client for raw Export calls. Waiting is on
// the arrival of requests (promise per count), never on time.
import http from 'node:http';
import http2 from 'node:http2';
import grpc from '@grpc/grpc-js';
import { withTimeout } from './harness.mjs';

export const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const id = (b) => b;
const exportMethod = {
  path: EXPORT_PATH, requestStream: false, responseStream: false,
  requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id,
};

class Recorder {
  constructor() { this.requests = []; this._waiters = []; }
  push(r) {
    this.requests.push(r);
    this._waiters = this._waiters.filter((w) => { if (this.requests.length >= w.n) { w.resolve(); return false; } return true; });
  }
  waitForCount(n, ms, what) {
    const p = this.requests.length >= n ? Promise.resolve() : new Promise((resolve) => this._waiters.push({ n, resolve }));
    return withTimeout(p, ms, `${what}: ${n} request(s) (got ${this.requests.length})`);
  }
}

// HTTP/1.1 OTLP sink: records {path, headers, body}; answers 200 with an
// empty ExportTraceServiceResponse.
export async function startHttpSink() {
  const rec = new Recorder();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      rec.push({ path: req.url, method: req.method, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': req.headers['content-type'] || 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  rec.port = server.address().port;
  rec.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return rec;
}

// gRPC OTLP sink: records {metadata (plain object), body}; answers OK.
export async function startGrpcSink() {
  const rec = new Recorder();
  const server = new grpc.Server();
  server.addService({ Export: exportMethod }, {
    Export: (call, cb) => {
      rec.push({ metadata: call.metadata.getMap(), body: call.request });
      cb(null, Buffer.alloc(0));
    },
  });
  rec.port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
  rec.close = () => new Promise((resolve) => server.tryShutdown(() => resolve()));
  return rec;
}

// One unary Export call with raw request bytes; resolves {code, details, response}
// (code 0 = OK) and never rejects on a gRPC status.
export function grpcExport(port, body, metadata = {}, deadlineMs = 15000) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    client.makeUnaryRequest(EXPORT_PATH, id, id, body, md, { deadline: Date.now() + deadlineMs }, (err, resp) => {
      client.close();
      if (err) resolve({ code: err.code, details: err.details, response: null, metadata: err.metadata });
      else resolve({ code: 0, details: '', response: resp });
    });
  });
}

// One Export call framed by hand over node's HTTP/2 client, for what grpc-js
// will not send: a message flagged compressed with any grpc-encoding and any
// bytes. Resolves {code, details} from the trailers (or the trailers-only
// headers); never rejects on a gRPC status.
export function grpcRawExport(port, payload, encoding, deadlineMs = 15000) {
  const frame = Buffer.alloc(5);
  frame[0] = encoding === 'identity' ? 0 : 1;
  frame.writeUInt32BE(payload.length, 1);
  const conn = http2.connect(`http://127.0.0.1:${port}`);
  const req = conn.request({
    ':method': 'POST', ':path': EXPORT_PATH, 'content-type': 'application/grpc', te: 'trailers',
    'grpc-encoding': encoding, 'grpc-accept-encoding': 'identity,gzip',
  });
  const p = new Promise((resolve, reject) => {
    let status = null;
    const take = (h) => { if (h['grpc-status'] !== undefined) status = { code: Number(h['grpc-status']), details: decodeURIComponent(h['grpc-message'] || '') }; };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => {});
    req.on('error', reject);
    conn.on('error', reject);
    req.on('close', () => { conn.close(); if (status) resolve(status); else reject(new Error(`no grpc-status (rst ${req.rstCode})`)); });
  });
  req.end(Buffer.concat([frame, payload]));
  return withTimeout(p, deadlineMs, 'raw gRPC Export');
}

export const GrpcStatus = grpc.status;
