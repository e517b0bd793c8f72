// SPDX-License-Identifier: Apache-2.0
// Preloaded with `node --import ./check_deps.mjs <test>.mjs` (see meson.build):
// runs before the test module's imports are resolved, so a missing
// node_modules gives one clear instruction instead of ERR_MODULE_NOT_FOUND.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const needed = [
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/exporter-trace-otlp-grpc',
  '@opentelemetry/exporter-trace-otlp-proto',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/otlp-transformer',
  '@grpc/grpc-js',
];
const missing = needed.filter((p) => !existsSync(join(here, 'node_modules', p, 'package.json')));
if (missing.length > 0) {
  process.stderr.write(
    `kansatsu integration tests: node modules missing (${missing.join(', ')}).\n` +
      `Run \`npm ci\` in ${here} before \`meson test --suite integration\`.\n`);
  process.exit(1);
}
if (!process.env.KANSATSU_BIN) {
  process.stderr.write('kansatsu integration tests: KANSATSU_BIN is not set (meson test sets it)\n');
  process.exit(1);
}
