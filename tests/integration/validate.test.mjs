// SPDX-License-Identifier: Apache-2.0
// (e) `kansatsu validate --config FILE`: exit 0 for a good config, non-zero
// with a message naming the key path for each kind of bad one; validation
// opens no listener. Also --version and --help.
import test from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, makeConfig, toYaml, runBin as runBinRaw, sanitizerReport } from './harness.mjs';

// every run must be free of sanitizer reports (the ASan/UBSan build)
function runBin(args) {
  const r = runBinRaw(args);
  assert.equal(sanitizerReport(r.stdout + r.stderr), null, `sanitizer report from kansatsu ${args.join(' ')}:\n${r.stderr}`);
  return r;
}

const dir = makeTempDir('validate');
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function validate(config) {
  const path = join(dir, `config-${n++}.yaml`);
  writeFileSync(path, typeof config === 'string' ? config : toYaml(config));
  const r = runBin(['validate', '--config', path]);
  r.text = r.stdout + r.stderr;
  r.ctx = `exit ${r.code} signal ${r.signal}\n--- output ---\n${r.text}--- config ---\n${typeof config === 'string' ? config : toYaml(config)}`;
  return r;
}
const good = () => makeConfig(dir);

test('a good config validates (exit 0), opening nothing', () => {
  const r = validate(good());
  assert.equal(r.code, 0, r.ctx);
  assert.doesNotMatch(r.text, /kansatsu: listening/, 'validate must not open listeners');
});

test('a good config with every exporter kind validates', () => {
  const c = good();
  c.exporters = {
    file: { path: join(dir, 'o.jsonl'), format: 'proto' },
    otlp: { endpoint: '127.0.0.1:4317', tls: { insecure: true } },
    otlphttp: { endpoint: 'http://127.0.0.1:4318' },
    debug: { verbosity: 'basic' },
  };
  c.service.pipelines.traces.exporters = ['file', 'otlp', 'otlphttp', 'debug'];
  const r = validate(c);
  assert.equal(r.code, 0, r.ctx);
});

const bad = [
  {
    name: 'unknown key', path: 'exporters.file.bogus', words: /unknown key/,
    edit: (c) => { c.exporters.file.bogus = 1; },
  },
  {
    name: 'unknown top-level key', path: 'bogus_section', words: /unknown key/,
    edit: (c) => { c.bogus_section = { a: 1 }; },
  },
  {
    name: 'unknown key under kansatsu', path: 'kansatsu.no_such_option', words: /unknown key/,
    edit: (c) => { c.kansatsu.no_such_option = 3; },
  },
  {
    name: 'missing file path', path: 'exporters.file.path', words: /missing/,
    edit: (c) => { delete c.exporters.file.path; },
  },
  {
    name: 'wrong type (string for an integer)', path: 'processors.batch.send_batch_size', words: null,
    edit: (c) => { c.processors.batch.send_batch_size = 'lots'; },
  },
  {
    name: 'wrong type (mapping for a scalar)', path: 'kansatsu.memory_limit_mib', words: null,
    edit: (c) => { c.kansatsu.memory_limit_mib = { a: 1 }; },
  },
  {
    name: 'bad duration', path: 'processors.batch.timeout', words: null,
    edit: (c) => { c.processors.batch.timeout = '5 parsecs'; },
  },
  {
    name: 'bad duration (kansatsu.shutdown_timeout)', path: 'kansatsu.shutdown_timeout', words: null,
    edit: (c) => { c.kansatsu.shutdown_timeout = 'soon'; },
  },
  {
    name: 'bad endpoint', path: 'receivers.otlp.protocols.grpc.endpoint', words: null,
    edit: (c) => { c.receivers.otlp.protocols.grpc.endpoint = 'not an endpoint'; },
  },
  // issue 14: compression and connections of the exporters
  {
    name: 'zstd on the otlp (gRPC) exporter', path: 'exporters.otlp.compression', words: /zstd is not available over gRPC/,
    edit: (c) => { c.exporters.otlp = { endpoint: '127.0.0.1:4317', tls: { insecure: true }, compression: 'zstd' }; c.service.pipelines.traces.exporters.push('otlp'); },
  },
  {
    name: 'too many connections', path: 'exporters.otlphttp.connections', words: /between 0 and 64/,
    edit: (c) => { c.exporters.otlphttp = { endpoint: 'http://127.0.0.1:4318', connections: 65 }; c.service.pipelines.traces.exporters.push('otlphttp'); },
  },
  {
    name: 'connections above num_consumers', path: 'exporters.otlp.connections', words: /need at least as many sending_queue.num_consumers/,
    edit: (c) => { c.exporters.otlp = { endpoint: '127.0.0.1:4317', tls: { insecure: true }, connections: 4, sending_queue: { num_consumers: 2 } }; c.service.pipelines.traces.exporters.push('otlp'); },
  },
  {
    name: 'connections on the loadbalancing endpoints', path: 'exporters.loadbalancing.protocol.otlp.connections', words: /between 0 and 64/,
    edit: (c) => {
      c.exporters.loadbalancing = { protocol: { otlp: { tls: { insecure: true }, connections: 100 } }, resolver: { static: { hostnames: ['127.0.0.1:4317'] } } };
      c.service.pipelines.traces.exporters.push('loadbalancing');
    },
  },
  {
    name: 'unknown consumer scheduling', path: 'exporters.otlp.sending_queue.consumer_scheduling', words: /must be one of batch, normal; got "idle"/,
    edit: (c) => { c.exporters.otlp = { endpoint: '127.0.0.1:4317', tls: { insecure: true }, sending_queue: { consumer_scheduling: 'idle' } }; c.service.pipelines.traces.exporters.push('otlp'); },
  },
  {
    name: 'gzip level out of range', path: 'exporters.otlphttp.compression_params.level', words: /gzip levels are 1 to 12/,
    edit: (c) => { c.exporters.otlphttp = { endpoint: 'http://127.0.0.1:4318', compression_params: { level: 42 } }; c.service.pipelines.traces.exporters.push('otlphttp'); },
  },
];

for (const b of bad) {
  test(`bad config: ${b.name} -> non-zero exit naming ${b.path}`, () => {
    const c = good();
    b.edit(c);
    const r = validate(c);
    assert.notEqual(r.code, 0, `expected a non-zero exit: ${r.ctx}`);
    assert.equal(r.signal, null, `validate crashed: ${r.ctx}`);
    assert.ok(r.text.includes(b.path), `message must name "${b.path}": ${r.ctx}`);
    if (b.words) assert.match(r.text, b.words, r.ctx);
  });
}

test('bad config: a pipeline naming an undefined exporter', () => {
  const c = good();
  c.service.pipelines.traces.exporters = ['file', 'nosuch'];
  const r = validate(c);
  assert.notEqual(r.code, 0, r.ctx);
  assert.equal(r.signal, null, r.ctx);
  assert.match(r.text, /service\.pipelines\.traces\.exporters/, r.ctx);
  assert.match(r.text, /nosuch/, r.ctx);
});

// Authenticators: a receiver's or exporter's auth.authenticator must name a
// configured extension, listed in service.extensions, of the right kind.
function withAuthExtensions(c) {
  c.extensions.bearertokenauth = { token: 'hunter2-token' };
  c.extensions['bearertokenauth/unlisted'] = { token: 'x' };
  c.extensions['basicauth/client'] = { client_auth: { username: 'u', password: 'hunter2-pw' } };
  c.service.extensions = [...c.service.extensions, 'bearertokenauth', 'basicauth/client'];
  return c;
}

test('a good config with authenticators on receivers and exporters validates', () => {
  const c = withAuthExtensions(good());
  c.receivers.otlp.protocols.grpc.auth = { authenticator: 'bearertokenauth' };
  c.exporters.otlphttp = { endpoint: 'https://127.0.0.1:4318', auth: { authenticator: 'basicauth/client' } };
  c.service.pipelines.traces.exporters = ['file', 'otlphttp'];
  const r = validate(c);
  assert.equal(r.code, 0, r.ctx);
});

const authBad = [
  ['receivers.otlp.protocols.grpc.auth.authenticator', /extension "nosuch" is not configured under extensions/,
    (c) => { c.receivers.otlp.protocols.grpc.auth = { authenticator: 'nosuch' }; }],
  ['receivers.otlp.protocols.http.auth.authenticator', /extension "bearertokenauth\/unlisted" is configured but not listed in service\.extensions/,
    (c) => { c.receivers.otlp.protocols.http.auth = { authenticator: 'bearertokenauth/unlisted' }; }],
  ['receivers.otlp.protocols.http.auth.authenticator', /extension "basicauth\/client" is not a server authenticator: it has client_auth only/,
    (c) => { c.receivers.otlp.protocols.http.auth = { authenticator: 'basicauth/client' }; }],
  ['exporters.otlp.auth.authenticator', /extension "nosuch" is not configured under extensions/,
    (c) => {
      c.exporters.otlp = { endpoint: '127.0.0.1:4317', tls: { insecure: true }, auth: { authenticator: 'nosuch' } };
      c.service.pipelines.traces.exporters = ['otlp'];
    }],
  ['extensions.bearertokenauth.filename', /token and filename are both set/,
    (c) => { c.extensions.bearertokenauth.filename = '/etc/token'; }],
  ['extensions.basicauth/client.client_auth.username', /must not contain ':'/,
    (c) => { c.extensions['basicauth/client'].client_auth.username = 'a:b'; }],
];

for (const [path, re, edit] of authBad) {
  test(`bad config: authenticator -> non-zero exit naming ${path} (${re.source.slice(0, 40)})`, () => {
    const c = withAuthExtensions(good());
    edit(c);
    const r = validate(c);
    assert.notEqual(r.code, 0, `expected a non-zero exit: ${r.ctx}`);
    assert.equal(r.signal, null, r.ctx);
    assert.ok(r.text.includes(path), `message must name "${path}": ${r.ctx}`);
    assert.match(r.text, re, r.ctx);
    assert.ok(!r.text.includes('hunter2'), `no secret in the message: ${r.text}`);
  });
}

test('bad config: not YAML at all', () => {
  const r = validate('receivers: [unclosed\n  - : :\n');
  assert.notEqual(r.code, 0, r.ctx);
  assert.equal(r.signal, null, r.ctx);
});

test('missing config file -> non-zero', () => {
  const r = runBin(['validate', '--config', join(dir, 'does-not-exist.yaml')]);
  assert.notEqual(r.code, 0, `exit ${r.code}: ${r.stdout}${r.stderr}`);
  assert.equal(r.signal, null);
});

test('--version prints the version and exits 0', () => {
  const r = runBin(['--version']);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout + r.stderr, /\d+\.\d+\.\d+/);
});

test('--help mentions validate and --config and exits 0', () => {
  const r = runBin(['--help']);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout + r.stderr, /validate/);
  assert.match(r.stdout + r.stderr, /--config/);
});
