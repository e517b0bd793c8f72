// SPDX-License-Identifier: Apache-2.0
// (a) Each real OTLP exporter of the JS SDK (gRPC, HTTP/protobuf, HTTP/JSON;
// uncompressed and gzip) sends the rich span set to a fresh collector with a
// JSON file exporter; after SIGTERM the file must hold exactly the spans the
// SDK's InMemorySpanExporter saw, field by field.
import test from 'node:test';
import { join } from 'node:path';
import { startCollector, makeTempDir, makeConfig, readJsonRecords } from './harness.mjs';
import { makeExporter, makeProvider, flushAndCheck, emitRichSpans, canonicalFromSdk, canonicalFromTracesData, assertSameSpans } from './otel.mjs';

const transports = ['grpc', 'http/protobuf', 'http/json'];
const compressions = ['none', 'gzip'];

for (const transport of transports) {
  for (const compression of compressions) {
    const label = `${transport} compression=${compression}`;
    test(`sdk ${label} round-trips every span field`, async (t) => {
      const dir = makeTempDir('sdk');
      const out = join(dir, 'out.jsonl');
      const col = await startCollector(t, makeConfig(dir, { exporters: { file: { path: out, format: 'json' } } }), `kansatsu[${label}]`, dir);
      const sdk = makeProvider(makeExporter(transport, col, compression));
      let expected;
      try {
        emitRichSpans(sdk.provider, label);
        await flushAndCheck(sdk, label);
        expected = canonicalFromSdk(sdk.memory.getFinishedSpans());
      } finally {
        await sdk.provider.shutdown();
      }
      await col.stop();
      const actual = canonicalFromTracesData(readJsonRecords(out));
      assertSameSpans(actual, expected, label);
    });
  }
}
