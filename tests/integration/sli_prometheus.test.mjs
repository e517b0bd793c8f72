// SPDX-License-Identifier: Apache-2.0
// The SLI metrics with a real Prometheus (the Debian package's
// /usr/bin/prometheus, run as a child: own config, TSDB in a temp dir,
// ephemeral port) scraping kansatsu's /metrics every second and evaluating
// deploy/prometheus/sli-alerts.yaml, unchanged, every second:
//  1. promtool accepts the rule file;
//  2. workload A, every event bad (status ERROR): SLOErrorBudgetBurnFast
//     (the SRE workbook's 1h + 5m, 14.4x rule; no `for:`) becomes firing;
//     Prometheus sees the burn rate kansatsu computed (1000 = 100% bad /
//     0.1% allowed), and promtool accepts kansatsu's text exposition;
//  3. workload B, every event good, a separate kansatsu and Prometheus: the
//     burn-rate series are in Prometheus with value 0 and the rule group has
//     been evaluated several times after that; no alert is pending or firing
//     and the fast-burn expression, queried directly, is empty.
// The events are raw OTLP/HTTP protobuf requests (single-span SLI: service
// checkout, span "POST /pay", success = status not ERROR, objective 99.9).
// Synchronisation: HTTP answers and Prometheus API / metric values polled
// with deadlines; never a fixed sleep.
import test from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpRequest } from './harness.mjs';
import { pollUntil } from './memory_limit_helpers.mjs';
import {
  MS, nowNs, pipelineConfig, startJsonCollector, waitMetrics, metric, rawSpan, postSpans, traceIdOf, spanIdOf,
  startPrometheus, promApi, promQuery, promtool, scrapeText,
} from './journey_helpers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const RULES = resolve(HERE, '..', '..', 'deploy', 'prometheus', 'sli-alerts.yaml');
const GROUP = 'kansatsu-sli-burn';
const FAST = 'SLOErrorBudgetBurnFast';
const SLI_NAME = 'checkout_ok';
const OBJECTIVE = 99.9;
const EVENTS = 60;                 // per workload, in 3 requests
const ALERT_MS = 90000;            // bound for the alert to fire (scrape 1s + evaluation 1s)
const WAIT_MS = 60000;

async function startKansatsu(t, label) {
  return startJsonCollector(t, label, (dir) => pipelineConfig(dir, {
    sli: {
      slis: [{
        name: SLI_NAME,
        span: { service: 'checkout', name: 'POST /pay' },
        success: { status: true },
        objective: OBJECTIVE,
        window: '30d',
      }],
    },
    batch: { send_batch_size: 512, timeout: '200ms' },
  }, ['sli', 'batch']));
}

// EVENTS single-span traces of service checkout; all ERROR or all UNSET.
async function sendWorkload(col, tag, errors) {
  const t0 = nowNs() - 10000n * MS;
  for (let r = 0; r < 3; r++) {
    const spans = [];
    for (let k = 0; k < EVENTS / 3; k++) {
      const n = r * 1000 + k;
      const start = t0 + BigInt(n) * MS;
      spans.push(rawSpan({
        service: 'checkout', traceId: traceIdOf(tag, n), spanId: spanIdOf(n, 0), name: 'POST /pay',
        startNs: start, endNs: start + 40n * MS, error: errors, attributes: { 'http.request.method': 'POST' },
      }));
    }
    await postSpans(col.httpPort, spans, `workload request ${r}`);
  }
  return waitMetrics(col, (s) => metric(s, 'kansatsu_sli_events_total', { sli: SLI_NAME }) === EVENTS,
    WAIT_MS, `${EVENTS} SLI events counted by kansatsu`);
}

// One sample value of an instant query (null when the result is empty).
async function scalarOf(port, q) {
  const d = await promQuery(port, q);
  assert.equal(d.resultType, 'vector', `${q}: result type`);
  assert.ok(d.result.length <= 1, `${q}: ${d.result.length} series, expected at most 1: ${JSON.stringify(d.result)}`);
  return d.result.length ? Number(d.result[0].value[1]) : null;
}

async function targetUp(prom, col) {
  const d = await promApi(prom.port, '/api/v1/targets');
  const tg = d.activeTargets.find((x) => x.labels.job === 'kansatsu');
  if (!tg) return null; // service discovery has not delivered it yet
  assert.equal(tg.scrapeUrl, `http://127.0.0.1:${col.metricsPort}/metrics`, 'scrape URL');
  return tg.health === 'up' ? tg : null;
}

// The alerting rules of our group, by name, from /api/v1/rules.
async function groupRules(prom) {
  const d = await promApi(prom.port, '/api/v1/rules?type=alert');
  const g = d.groups.find((x) => x.name === GROUP);
  assert.ok(g, `rule group ${GROUP} not loaded: ${JSON.stringify(d.groups.map((x) => x.name))}`);
  return new Map(g.rules.map((r) => [r.name, r]));
}

// prometheus_rule_group_iterations_total of our group, from Prometheus's own /metrics.
async function groupIterations(prom) {
  const r = await httpRequest({ port: prom.port, method: 'GET', path: '/metrics', timeoutMs: 10000 });
  assert.equal(r.status, 200, 'prometheus /metrics');
  const re = new RegExp(`^prometheus_rule_group_iterations_total\\{rule_group="[^"]*;${GROUP}"\\} (\\S+)$`, 'm');
  const m = r.body.toString().match(re);
  assert.ok(m, `prometheus /metrics: no prometheus_rule_group_iterations_total for ${GROUP}`);
  return Number(m[1]);
}

const close = (got, want, what) => assert.ok(got !== null && Math.abs(got - want) <= 1e-9 * Math.abs(want),
  `${what}: got ${got}, expected ${want}`);

test('promtool accepts deploy/prometheus/sli-alerts.yaml', () => {
  const r = promtool(['check', 'rules', RULES]);
  assert.equal(r.code, 0, `promtool check rules ${RULES}: exit ${r.code}\n${r.out}`);
  assert.match(r.out, /SUCCESS: 4 rules found/, 'promtool output');
});

test('workload A (all errors): Prometheus fires the fast-burn alert of sli-alerts.yaml', async (t) => {
  const { col } = await startKansatsu(t, 'sliprom-a');
  const prom = await startPrometheus(t, `127.0.0.1:${col.metricsPort}`, [RULES], 'prom-a');
  await pollUntil(() => targetUp(prom, col), WAIT_MS, 'Prometheus scraping kansatsu (target up)', 200)
    .catch((e) => { throw new Error(`${e.message}\n${prom.tail()}`); });

  const s = await sendWorkload(col, 0x5a0a, true);
  assert.equal(metric(s, 'kansatsu_sli_good_events_total', { sli: SLI_NAME }), 0, 'good events (all bad)');
  const burn = 1 / (1 - OBJECTIVE / 100);
  close(metric(s, 'kansatsu_sli_burn_rate', { sli: SLI_NAME, window: '5m' }), burn, 'kansatsu burn_rate{window="5m"}');

  // the alert fires: poll Prometheus's alerts
  const firing = await pollUntil(async () => {
    const d = await promApi(prom.port, '/api/v1/alerts');
    return d.alerts.find((a) => a.labels.alertname === FAST && a.labels.sli === SLI_NAME && a.state === 'firing');
  }, ALERT_MS, `${FAST} firing`, 250).catch(async (e) => {
    const rules = await groupRules(prom).catch((x) => x.message);
    throw new Error(`${e.message}\nrules: ${JSON.stringify(rules instanceof Map ? [...rules.values()] : rules).slice(0, 2000)}\n${prom.tail()}`);
  });
  assert.equal(firing.labels.severity, 'page', 'alert severity');
  assert.equal(firing.labels.job, 'kansatsu', 'alert job label');

  // Prometheus stored what kansatsu computed
  close(await scalarOf(prom.port, `kansatsu_sli_burn_rate{sli="${SLI_NAME}",window="5m"}`), burn, 'Prometheus: burn_rate{window="5m"}');
  close(await scalarOf(prom.port, `kansatsu_sli_burn_rate{sli="${SLI_NAME}",window="1h"}`), burn, 'Prometheus: burn_rate{window="1h"}');
  assert.equal(await scalarOf(prom.port, `kansatsu_sli_events_total{sli="${SLI_NAME}"}`), EVENTS, 'Prometheus: events_total');
  const rules = await groupRules(prom);
  assert.equal(rules.get(FAST).health, 'ok', `${FAST} rule health: ${rules.get(FAST).lastError}`);
  assert.equal(rules.get(FAST).state, 'firing', `${FAST} rule state`);

  // kansatsu's Prometheus text exposition passes promtool's checks
  const { text, contentType } = await scrapeText(col);
  assert.match(contentType, /^text\/plain/, 'content type of a plain Prometheus scrape');
  assert.match(text, /^kansatsu_sli_burn_rate\{/m, 'the scrape holds the SLI families');
  const pm = promtool(['check', 'metrics'], text);
  assert.equal(pm.code, 0, `promtool check metrics: exit ${pm.code}\n${pm.out}`);

  await prom.stop();
  await col.stop();
});

test('workload B (all good): the rules are evaluated on the data and no alert fires', async (t) => {
  const { col } = await startKansatsu(t, 'sliprom-b');
  const prom = await startPrometheus(t, `127.0.0.1:${col.metricsPort}`, [RULES], 'prom-b');
  const s = await sendWorkload(col, 0x5a0b, false);
  assert.equal(metric(s, 'kansatsu_sli_good_events_total', { sli: SLI_NAME }), EVENTS, 'good events (all good)');
  assert.equal(metric(s, 'kansatsu_sli_burn_rate', { sli: SLI_NAME, window: '5m' }), 0, 'kansatsu burn_rate{window="5m"}');

  // the data is in Prometheus: every event counted, burn-rate series present at 0
  await pollUntil(async () => (await scalarOf(prom.port, `kansatsu_sli_events_total{sli="${SLI_NAME}"}`)) === EVENTS,
    WAIT_MS, 'Prometheus to hold the scraped events_total', 250)
    .catch((e) => { throw new Error(`${e.message}\n${prom.tail()}`); });
  for (const w of ['5m', '30m', '1h', '6h', '3d']) {
    assert.equal(await scalarOf(prom.port, `kansatsu_sli_burn_rate{sli="${SLI_NAME}",window="${w}"}`), 0, `Prometheus: burn_rate{window="${w}"}`);
  }
  assert.equal(await scalarOf(prom.port, `kansatsu_sli_error_budget_remaining_ratio{sli="${SLI_NAME}"}`), 1, 'Prometheus: budget remaining');

  // at least 3 full rule-group evaluations begin after the data was there
  const i0 = await groupIterations(prom);
  await pollUntil(async () => (await groupIterations(prom)) >= i0 + 4, WAIT_MS, 'three more rule-group evaluations', 250);

  const rules = await groupRules(prom);
  for (const [name, r] of rules) {
    assert.equal(r.health, 'ok', `rule ${name} health: ${r.lastError}`);
    assert.equal(r.state, 'inactive', `rule ${name} state`);
  }
  assert.ok(rules.has(FAST), `${FAST} loaded`);
  const d = await promApi(prom.port, '/api/v1/alerts');
  assert.deepEqual(d.alerts.map((a) => `${a.labels.alertname}:${a.state}`), [], 'alerts pending or firing');
  // the fast-burn expression itself (as Prometheus loaded it), on the same data: empty
  const expr = rules.get(FAST).query;
  assert.match(expr, /kansatsu_sli_burn_rate\{window="5m"\}/, `${FAST} expression`);
  const q = await promQuery(prom.port, expr);
  assert.deepEqual(q.result, [], `${FAST} expression result`);

  await prom.stop();
  await col.stop();
});
