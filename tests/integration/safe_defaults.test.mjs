// SPDX-License-Identifier: Apache-2.0
// Safer defaults: a receiver protocol, the health check and the metrics
// endpoint given without an address listen on this host only (localhost), as
// the OpenTelemetry Collector does since it changed its defaults; reaching
// them from elsewhere takes an explicit 0.0.0.0 (the embedded default config
// and every config in deploy/ name it). Checked on the real process: every
// socket it listens on, from /proc, is a loopback address, on the default
// ports 4317, 4318, 13133 and 8888; and every deploy/ config names its
// receivers', health and metrics addresses explicitly.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Collector, makeTempDir, READY_TIMEOUT_MS } from './harness.mjs';
import { listeningSockets } from './journey_helpers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const CONFIGS = resolve(HERE, '..', '..', 'deploy', 'configs');
// 127.0.0.1, ::1, and ::ffff:127.0.0.1 (libgrpc binds IPv4 through a dual-stack socket)
const LOOPBACK = new Set(['0100007F', '00000000000000000000000001000000', '0000000000000000FFFF00000100007F']);

test('endpoints left out listen on localhost only', async (t) => {
  const dir = makeTempDir('safe-defaults');
  const cfg = {
    receivers: { otlp: { protocols: { grpc: {}, http: {} } } },
    exporters: { debug: {} },
    extensions: { health_check: {} },
    service: { extensions: ['health_check'], telemetry: { metrics: {} },
      pipelines: { traces: { receivers: ['otlp'], exporters: ['debug'] } } },
  };
  const path = join(dir, 'config.yaml');
  writeFileSync(path, JSON.stringify(cfg));
  const col = new Collector('kansatsu[defaults]', dir, path);
  t.after(() => col.cleanup());
  await col.waitForLine(/^kansatsu: ready/m, READY_TIMEOUT_MS);
  const socks = listeningSockets(col.proc.pid);
  assert.deepEqual([...new Set(socks.map((s) => s.port))].sort((a, b) => a - b), [4317, 4318, 8888, 13133],
    `ports listened on: ${JSON.stringify(socks)}`);
  for (const s of socks) assert.ok(LOOPBACK.has(s.addr), `port ${s.port} listens on ${s.addr} (IPv${s.family}), not loopback`);
  await col.stop();
});

test('every deploy/ config names its listening addresses', () => {
  const files = readdirSync(CONFIGS).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4, `configs: ${files}`);
  for (const f of files) {
    const text = readFileSync(join(CONFIGS, f), 'utf8');
    for (const re of [/grpc:\s*\n\s+endpoint: 0\.0\.0\.0:4317/, /http:\s*\n\s+endpoint: 0\.0\.0\.0:4318/,
      /health_check:\s*\n\s+endpoint: 0\.0\.0\.0:13133/, /metrics:\s*\n\s+address: 0\.0\.0\.0:8888/]) {
      assert.match(text, re, `${f} names ${re.source.split('\\')[0]} explicitly`);
    }
  }
});
