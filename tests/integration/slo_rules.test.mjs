// SPDX-License-Identifier: Apache-2.0
// `kansatsu slo-rules`: the Prometheus rules for a fleet of collectors.
//  1. deploy/prometheus/slo-rules.yaml is exactly what the binary prints for
//     deploy/configs/journeys.yaml, and promtool accepts it;
//  2. without SLIs the output is an empty, valid rule file; a bad config
//     fails with the key at fault;
//  3. `promtool test rules` on rules generated from a test config (SLI
//     `checkout`, objective 99 %, dimension `version` from the resource's
//     service.version), over synthetic counters of two instances:
//     - all bad: the page alert 1h & 5m (14.4x) fires; all good: no alert;
//     - the burn rate is (bad/total)/(1 - objective) over both instances'
//       events (not the mean of the two instances' ratios);
//     - a counter reset on one instance (a restart) leaves it unchanged;
//     - the canary verdict (burn-rate excess over the other versions > 1)
//       fails the bad version and passes the healthy one.
// Nothing here waits on time: promtool evaluates synthetic series.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { BIN, makeTempDir, runBin } from './harness.mjs';
import { promtool } from './journey_helpers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const DEPLOY = resolve(HERE, '..', '..', 'deploy');
const COMMITTED = join(DEPLOY, 'prometheus', 'slo-rules.yaml');
const EXAMPLE = join(DEPLOY, 'configs', 'journeys.yaml');
// the example config's one required variable; its value does not reach the rules
const ENV = { ...process.env, KANSATSU_BACKEND_ENDPOINT: 'tracing-backend.example:4317' };

const dir = makeTempDir('slorules');
test.after(() => { if (!process.env.KANSATSU_IT_KEEP) rmSync(dir, { recursive: true, force: true }); });

function sloRules(args, env = process.env) {
  assert.ok(BIN, 'KANSATSU_BIN is not set');
  const r = spawnSync(BIN, ['slo-rules', ...args], { encoding: 'utf8', env, timeout: 20000 });
  return { code: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
}

test('deploy/prometheus/slo-rules.yaml equals `kansatsu slo-rules --config deploy/configs/journeys.yaml`', () => {
  const r = sloRules(['--config', EXAMPLE], ENV);
  assert.equal(r.code, 0, `slo-rules: exit ${r.code}\n${r.stderr}`);
  const committed = readFileSync(COMMITTED, 'utf8');
  assert.ok(r.stdout === committed,
    'the committed rules are stale: regenerate with\n  KANSATSU_BACKEND_ENDPOINT=x:4317 kansatsu slo-rules ' +
    '--config deploy/configs/journeys.yaml > deploy/prometheus/slo-rules.yaml');
  // both SLIs of the example, each its own group, the canary records for both
  for (const sli of ['post_to_push', 'api_post']) {
    assert.match(committed, new RegExp(`^  - name: kansatsu-slo/sli/${sli}$`, 'm'), `group of ${sli}`);
    assert.match(committed, new RegExp(`record: kansatsu:sli_canary_burn_rate_excess:rate5m\n +labels:\n +sli: "${sli}"`), `canary of ${sli}`);
  }
  assert.match(committed, /kansatsu:sli_error_ratio:rate5m\{sli="api_post"\} \/ 0\.005$/m, 'api_post: its own objective (99.5)');
  assert.match(committed, /increase\(kansatsu_sli_events_total\{sli="api_post"\}\[28d\]\)/, 'api_post: its own SLO window (28d)');
});

test('promtool check rules accepts deploy/prometheus/slo-rules.yaml', () => {
  const r = promtool(['check', 'rules', COMMITTED]);
  assert.equal(r.code, 0, `promtool check rules: exit ${r.code}\n${r.out}`);
  assert.match(r.out, /SUCCESS: \d+ rules found/, r.out);
});

// deploy/canary/: both templates parse, ask for a record the committed rules
// define, with the version as an argument, and fail above an excess of 1.
test('deploy/canary templates use the canary verdict record with the threshold 1', () => {
  const files = ['argo-analysistemplate.yaml', 'flagger-metrictemplate.yaml'].map((f) => join(DEPLOY, 'canary', f));
  const r = spawnSync('/usr/bin/python3', [join(HERE, 'deploy_yaml.py'), ...files], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, `deploy_yaml.py: ${r.stderr}`);
  const [[argo], [flagger]] = JSON.parse(r.stdout);
  const rules = readFileSync(COMMITTED, 'utf8');
  const recordOf = (q) => {
    const m = q.match(/^(kansatsu:[a-z_:0-9]+)\{sli="([^"]+)", version="([^"]+)"\}\s*$/);
    assert.ok(m, `query ${q}`);
    assert.match(rules, new RegExp(`record: ${m[1]}\n`), `${m[1]} is recorded by slo-rules.yaml`);
    return m;
  };
  assert.equal(argo.kind, 'AnalysisTemplate');
  assert.deepEqual(argo.spec.args.map((a) => a.name).slice(0, 2), ['sli', 'version'], 'Argo args');
  const metric = argo.spec.metrics[0];
  const m = recordOf(metric.provider.prometheus.query);
  assert.equal(m[1], 'kansatsu:sli_canary_burn_rate_excess:rate5m');
  assert.deepEqual([m[2], m[3]], ['{{args.sli}}', '{{args.version}}']);
  assert.equal(metric.failureCondition, 'len(result) == 1 && result[0] > 1', 'Argo failure condition');
  assert.equal(metric.successCondition, 'len(result) == 1 && result[0] <= 1', 'Argo success condition');
  assert.equal(flagger.kind, 'MetricTemplate');
  const f = recordOf(flagger.spec.query);
  assert.equal(f[1], 'kansatsu:sli_canary_burn_rate_excess:rate5m');
  assert.deepEqual([f[2], f[3]], ['{{ variables.sli }}', '{{ variables.version }}']);
  assert.match(readFileSync(files[1], 'utf8'), /thresholdRange: \{ max: 1 \}/, 'Flagger usage: fail above 1');
});

test('slo-rules without SLIs prints a valid empty rule file; a bad config names the key', () => {
  const r = runBin(['slo-rules']);
  assert.equal(r.code, 0, `slo-rules (default config): exit ${r.code}\n${r.stderr}`);
  assert.match(r.stdout, /^groups: \[\]$/m, r.stdout);
  const f = join(dir, 'empty.yaml');
  writeFileSync(f, r.stdout);
  const c = promtool(['check', 'rules', f]);
  assert.equal(c.code, 0, `promtool check rules (empty): ${c.out}`);

  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify(config({ objective: 100 })));
  const b = runBin(['slo-rules', '--config', bad]);
  assert.equal(b.code, 1, `slo-rules on a bad objective: exit ${b.code}`);
  assert.match(b.stderr, /processors\.sli\.slis\[0\]\.objective/, b.stderr);
  assert.equal(b.stdout, '', 'no rules printed for a bad config');
});

// ---- promtool test rules --------------------------------------------------------
const SLI = 'checkout';
function config(over = {}) {
  return {
    receivers: { otlp: { protocols: { http: { endpoint: '127.0.0.1:0' } } } },
    processors: {
      sli: {
        slis: [{
          name: SLI, span: { service: 'checkout', name: 'POST /pay' }, threshold: '500ms',
          objective: 99, window: '30d',
          dimensions: [{ name: 'version', from: 'resource', key: 'service.version' }],
          ...over,
        }],
      },
    },
    exporters: { debug: {} },
    service: { pipelines: { traces: { receivers: ['otlp'], processors: ['sli'], exporters: ['debug'] } } },
  };
}

// Counter series in promtool's notation, one sample per minute.
const ev = (inst, version, values) => ({ series: `kansatsu_sli_events_total{sli="${SLI}",version="${version}",instance="${inst}",job="kansatsu"}`, values });
const good = (inst, version, values) => ({ series: `kansatsu_sli_good_events_total{sli="${SLI}",version="${version}",instance="${inst}",job="kansatsu"}`, values });
// "value within 1e-9 of want" as a 0/1 sample, so promtool compares exactly
const near = (expr, want) => `abs(${expr} - ${want}) < bool 1e-9`;

const FAST_ANNOTATION = `SLI ${SLI} burns its error budget at more than 14.4x the sustainable rate (1h and 5m): 2% of the budget in 1h`;

test('promtool test rules: alerts, fleet burn rate, counter reset, canary verdict', () => {
  const cfgPath = join(dir, 'checkout.json');
  writeFileSync(cfgPath, JSON.stringify(config()));
  const g = sloRules(['--config', cfgPath]);
  assert.equal(g.code, 0, `slo-rules: exit ${g.code}\n${g.stderr}`);
  writeFileSync(join(dir, 'rules.yaml'), g.stdout);

  const tests = [
    { // all bad on two instances: the fast page fires (no `for:`), per version
      name: 'all bad',
      interval: '1m',
      input_series: [ev('a', 'v1', '0+60x90'), good('a', 'v1', '0+0x90'), ev('b', 'v1', '0+30x90'), good('b', 'v1', '0+0x90')],
      alert_rule_test: [{
        eval_time: '70m', alertname: 'KansatsuSLOBurnPage1h',
        exp_alerts: [{
          exp_labels: { alertname: 'KansatsuSLOBurnPage1h', sli: SLI, version: 'v1', severity: 'page', objective: '99', long_window: '1h', short_window: '5m' },
          exp_annotations: { summary: FAST_ANNOTATION },
        }],
      }],
      promql_expr_test: [
        { expr: `kansatsu:sli_burn_rate:rate5m{sli="${SLI}"}`, eval_time: '70m', exp_samples: [{ labels: `kansatsu:sli_burn_rate:rate5m{sli="${SLI}",version="v1"}`, value: 100 }] },
      ],
    },
    { // all good: no alert of any kind; burn rate 0 (a series, not NaN)
      name: 'all good',
      interval: '1m',
      input_series: [ev('a', 'v1', '0+60x90'), good('a', 'v1', '0+60x90'), ev('b', 'v1', '0+30x90'), good('b', 'v1', '0+30x90')],
      alert_rule_test: ['KansatsuSLOBurnPage1h', 'KansatsuSLOBurnPage6h', 'KansatsuSLOBurnTicket1d', 'KansatsuSLOBurnTicket3d', 'KansatsuSLOErrorBudgetExhausted']
        .map((alertname) => ({ eval_time: '70m', alertname, exp_alerts: [] })),
      promql_expr_test: [
        { expr: `kansatsu:sli_burn_rate:rate1h{sli="${SLI}"}`, eval_time: '70m', exp_samples: [{ labels: `kansatsu:sli_burn_rate:rate1h{sli="${SLI}",version="v1"}`, value: 0 }] },
        { expr: `kansatsu:sli_error_budget_remaining:ratio{sli="${SLI}"}`, eval_time: '70m', exp_samples: [{ labels: `kansatsu:sli_error_budget_remaining:ratio{sli="${SLI}",version="v1"}`, value: 1 }] },
      ],
    },
    { // no events in the window: no series at all (not NaN)
      name: 'idle',
      interval: '1m',
      input_series: [ev('a', 'v1', '10x30'), good('a', 'v1', '10x30')],
      promql_expr_test: [
        { expr: `kansatsu:sli_burn_rate:rate5m{sli="${SLI}"}`, eval_time: '20m', exp_samples: [] },
        { expr: `kansatsu:sli_error_ratio:rate5m{sli="${SLI}"}`, eval_time: '20m', exp_samples: [] },
      ],
    },
    { // a: 60/min, 10% bad; b: 120/min, 20% bad. Fleet: 30 bad of 180 = 1/6,
      // burn (1/6)/0.01 = 16.67 (the mean of the ratios would give 15).
      // b restarts at minute 11: its counter starts again (120 counted by the
      // new process by then); the fleet burn rate over 5m at 13m is unchanged.
      name: 'two instances, one restarts',
      interval: '1m',
      input_series: [
        ev('a', 'v1', '0+60x30'), good('a', 'v1', '0+54x30'),
        ev('b', 'v1', '0+120x10 120+120x20'), good('b', 'v1', '0+96x10 96+96x20'),
      ],
      promql_expr_test: [8, 13, 14, 20].map((m) => ({
        expr: near(`kansatsu:sli_burn_rate:rate5m{sli="${SLI}"}`, '(30 / 180) / 0.01'),
        eval_time: `${m}m`,
        exp_samples: [{ labels: `{sli="${SLI}",version="v1"}`, value: 1 }],
      })).concat([{
        expr: near(`kansatsu:sli_error_ratio:rate30m{sli="${SLI}"}`, '30 / 180'),
        eval_time: '25m',
        exp_samples: [{ labels: `{sli="${SLI}",version="v1"}`, value: 1 }],
      }]),
    },
    { // canary: v1 (two instances) 1% bad = burn 1; v2 (canary) 10% bad = burn 10.
      // Excess over the others: v1 1 - 10 = -9 (passes), v2 10 - 1 = 9 (fails).
      name: 'canary verdict',
      interval: '1m',
      input_series: [
        ev('a', 'v1', '0+50x40'), good('a', 'v1', '0+49.5x40'),
        ev('b', 'v1', '0+50x40'), good('b', 'v1', '0+49.5x40'),
        ev('b', 'v2', '0+20x40'), good('b', 'v2', '0+18x40'),
      ],
      promql_expr_test: [
        { // the verdict of deploy/canary/: fail when the excess is > 1
          expr: `kansatsu:sli_canary_burn_rate_excess:rate5m{sli="${SLI}"} > bool 1`, eval_time: '30m',
          exp_samples: [{ labels: `{sli="${SLI}",version="v1"}`, value: 0 }, { labels: `{sli="${SLI}",version="v2"}`, value: 1 }],
        },
        ...[['v1', '-9'], ['v2', '9']].map(([v, want]) => ({
          expr: near(`kansatsu:sli_canary_burn_rate_excess:rate30m{sli="${SLI}",version="${v}"}`, want), eval_time: '35m',
          exp_samples: [{ labels: `{sli="${SLI}",version="${v}"}`, value: 1 }],
        })),
        {
          expr: near(`kansatsu:sli_canary_others_burn_rate:rate5m{sli="${SLI}",version="v2"}`, '1'), eval_time: '30m',
          exp_samples: [{ labels: `{sli="${SLI}",version="v2"}`, value: 1 }],
        },
      ],
    },
    { // one version alone: no others, so no verdict either way
      name: 'single version',
      interval: '1m',
      input_series: [ev('a', 'v1', '0+50x40'), good('a', 'v1', '0+10x40')],
      promql_expr_test: [{ expr: `kansatsu:sli_canary_burn_rate_excess:rate5m{sli="${SLI}"}`, eval_time: '30m', exp_samples: [] }],
    },
  ];
  const testFile = join(dir, 'rules_test.yaml');
  writeFileSync(testFile, JSON.stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests }, null, 1));
  const r = promtool(['test', 'rules', testFile]);
  assert.equal(r.code, 0, `promtool test rules: exit ${r.code}\n${r.out}`);
  assert.match(r.out, /SUCCESS/, r.out);
});
