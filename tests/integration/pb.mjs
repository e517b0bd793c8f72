// SPDX-License-Identifier: Apache-2.0
// Minimal protobuf wire reader for the tests: enough to read
// google.rpc.Status, ExportTraceServiceResponse and the span ids inside
// TracesData records, without a schema compiler. Throws on malformed input.

function varint(buf, off) {
  let v = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (off >= buf.length) throw new Error('protobuf: truncated varint');
    const b = buf[off++];
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, off];
    shift += 7n;
  }
  throw new Error('protobuf: varint longer than 10 bytes');
}

// All fields of one message, in order: {field, wire, value}; value is a
// BigInt (varint), or a Buffer (length-delimited, fixed64, fixed32).
export function fields(buf) {
  const out = [];
  let off = 0;
  while (off < buf.length) {
    let key;
    [key, off] = varint(buf, off);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new Error('protobuf: field number 0');
    let value;
    if (wire === 0) {
      [value, off] = varint(buf, off);
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (off + n > buf.length) throw new Error('protobuf: truncated fixed field');
      value = buf.subarray(off, off + n);
      off += n;
    } else if (wire === 2) {
      let len;
      [len, off] = varint(buf, off);
      if (BigInt(off) + len > BigInt(buf.length)) throw new Error('protobuf: length-delimited field overruns message');
      value = buf.subarray(off, off + Number(len));
      off += Number(len);
    } else {
      throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
    out.push({ field, wire, value });
  }
  return out;
}

const get = (fs, n) => fs.filter((f) => f.field === n);
const str = (fs, n) => { const f = get(fs, n).pop(); return f ? Buffer.from(f.value).toString('utf8') : ''; };
const num = (fs, n) => { const f = get(fs, n).pop(); return f ? f.value : 0n; };

// google.rpc.Status {int32 code = 1; string message = 2; repeated Any details = 3}
export function decodeStatus(buf) {
  const fs = fields(buf);
  return { code: Number(num(fs, 1)), message: str(fs, 2) };
}

// The google.rpc.RetryInfo in a Status's details (Any{type_url = 1, value = 2}
// -> RetryInfo{Duration retry_delay = 1} -> Duration{int64 seconds = 1;
// int32 nanos = 2}), in milliseconds; null without one.
export function retryDelayMs(statusBuf) {
  for (const d of get(fields(statusBuf), 3)) {
    const any = fields(d.value);
    if (str(any, 1) !== 'type.googleapis.com/google.rpc.RetryInfo') continue;
    const delay = get(fields(get(any, 2).pop()?.value ?? Buffer.alloc(0)), 1).pop();
    const dur = delay ? fields(delay.value) : [];
    return Number(num(dur, 1)) * 1000 + Number(num(dur, 2)) / 1e6;
  }
  return null;
}

// ExportTraceServiceResponse {ExportTracePartialSuccess partial_success = 1}
// ExportTracePartialSuccess {int64 rejected_spans = 1; string error_message = 2}
export function decodeExportResponse(buf) {
  const ps = get(fields(buf), 1).pop();
  if (!ps) return { partialSuccess: null };
  const fs = fields(ps.value);
  return { partialSuccess: { rejectedSpans: Number(num(fs, 1)), errorMessage: str(fs, 2) } };
}

// TracesData{resource_spans=1} -> ResourceSpans{scope_spans=2} ->
// ScopeSpans{spans=2} -> Span{trace_id=1, span_id=2, name=5}
export function spanIdsOfTracesData(buf) {
  const ids = [];
  for (const rs of get(fields(buf), 1)) {
    for (const ss of get(fields(rs.value), 2)) {
      for (const sp of get(fields(ss.value), 2)) {
        const sf = fields(sp.value);
        const sid = get(sf, 2).pop();
        ids.push(sid ? Buffer.from(sid.value).toString('hex') : '');
      }
    }
  }
  return ids;
}

// 5-byte gRPC message prefix: compressed flag + big-endian length.
export function grpcFrame(msg, compressed = false) {
  const h = Buffer.alloc(5);
  h[0] = compressed ? 1 : 0;
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}
