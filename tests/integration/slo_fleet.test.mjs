// SPDX-License-Identifier: Apache-2.0
// The rules of `kansatsu slo-rules` in a real Prometheus (the Debian package's
// /usr/bin/prometheus, scrape and evaluation every second) over a fleet of
// TWO real kansatsu collectors, A and B, each with `journey` then `sli`
// (SLI `pay`: single span "POST /pay" of service checkout, threshold 500ms,
// objective 90 %, dimension `version` = the resource's service.version):
//  1. fleet: A gets 80 events (2 bad), B 40 (12 bad), as raw OTLP/HTTP
//     requests; the recorded fleet burn rate is (14/120)/(1 - 0.9) = 1.17
//     (the mean of the two collectors' ratios would give 1.63);
//  2. restart: B stops and a new process starts on the same metrics port
//     and gets 20 events (10 bad); the fleet burn rate covers all 140 events
//     (24 bad: 1.71), not only what the collectors count now (1.2);
//  3. canary, with the real OpenTelemetry SDK: checkout 1.0.0 sends 200 good
//     events, checkout 2.0.0 sends 40 (10 errors, 10 slower than the
//     threshold); the verdict of deploy/canary/ (burn-rate excess over the
//     other versions > 1) fails 2.0.0 and passes 1.0.0;
//  5. (run before 4) alerts: SLI `refund` (objective 99.9) gets only bad
//     events, SLI `status` only good ones, over both collectors: the fast
//     page alert (1h and 5m burn > 14.4) fires for refund; for status the
//     rules record burn 0, the group evaluates again, and no alert is
//     pending or firing and its expression is empty;
//  4. deploy/grafana/kansatsu-slo.json: every panel query, with the template
//     variables substituted (sli=pay, version=1.0.0, $__rate_interval=5m,
//     which spans the whole test), answers non-empty from this Prometheus,
//     and the SLI ratio, burn-rate and budget panels give the expected values.
//     The collectors share journey heads through a real Redis
//     (registry.redis), so the registry panels (up, lookups by result) answer
//     too.
// Why a tolerance (5 %): rate() extrapolates each series a little at the
// edges of its samples, by a different factor per collector; the values are
// polled until they are within it (the factors shrink as samples accumulate),
// and every wrong answer above is more than 20 % away.
// Why seed events: a counter series appears with its first value, which
// rate() cannot see as an increase; one event per series is sent, and seen
// in Prometheus, before the events that are measured.
// Synchronisation: HTTP answers, Prometheus API values and process exit,
// polled with deadlines; never a fixed sleep.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { runBin } from './harness.mjs';
import { startRedis } from './redis_helpers.mjs';
import { pollUntil } from './memory_limit_helpers.mjs';
import {
  MS, hr, nowNs, pipelineConfig, startJsonCollector, rawSpan, postSpans, traceIdOf, spanIdOf,
  startPrometheus, promApi, promQuery, makeService, scrapeText, SpanKind, SpanStatusCode,
} from './journey_helpers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const DASHBOARD = resolve(HERE, '..', '..', 'deploy', 'grafana', 'kansatsu-slo.json');
const SLI = 'pay';
const OBJ = 0.9;                  // objective 90 %
const V1 = '1.0.0';
const V2 = '2.0.0';
const TOL = 0.05;
const WAIT_MS = 60000;

function collectorConfig(dir, redis, metricsAddress = '127.0.0.1:0') {
  const c = pipelineConfig(dir, {
    journey: {
      propagate: [{ from: 'resource', keys: ['service.version'], prefix: 'journey.head.' }],
      wait_window: '2s', root_grace: '50ms',
      registry: { redis: { endpoint: `127.0.0.1:${redis.port}` } },
    },
    sli: {
      slis: [{
        name: SLI, span: { service: 'checkout', name: 'POST /pay', kind: 'server' },
        threshold: '500ms', success: { status: true }, objective: OBJ * 100, window: '30d',
        dimensions: [{ name: 'version', from: 'resource', key: 'service.version' }],
      }, ...ALERT_SLIS.map((name) => ({
        name, span: { service: 'checkout', name: `POST /${name}`, kind: 'server' },
        success: { status: true }, objective: 99.9, window: '30d',
      }))],
    },
    batch: { send_batch_size: 512, timeout: '100ms' },
  }, ['journey', 'sli', 'batch']);
  c.service.telemetry.metrics.address = metricsAddress;
  return c;
}

// n single-span events of version v; the first `bad` of them fail (status ERROR).
let seq = 0;
async function sendRaw(col, v, n, bad, what) {
  const t0 = nowNs() - 5000n * MS;
  const spans = [];
  for (let k = 0; k < n; k++) {
    const i = ++seq;
    const start = t0 + BigInt(k) * MS;
    const s = rawSpan({
      service: 'checkout', traceId: traceIdOf(0x51f0, i), spanId: spanIdOf(i, 0), name: 'POST /pay',
      startNs: start, endNs: start + 20n * MS, error: k < bad,
    });
    s.resource = resourceFromAttributes({ 'service.name': 'checkout', 'service.version': v });
    spans.push(s);
  }
  await postSpans(col.httpPort, spans, what);
}

// One value per label set of an instant query: Map(JSON of labels -> value).
async function values(prom, q) {
  const d = await promQuery(prom.port, q);
  assert.equal(d.resultType, 'vector', `${q}: result type`);
  return new Map(d.result.map((r) => [JSON.stringify(r.metric), Number(r.value[1])]));
}

async function single(prom, q) {
  const m = await values(prom, q);
  assert.ok(m.size <= 1, `${q}: ${m.size} series: ${JSON.stringify([...m])}`);
  return m.size ? [...m.values()][0] : null;
}

// Polls q until its one value is within TOL of want.
async function waitNear(prom, q, want, what) {
  let last = null;
  await pollUntil(async () => {
    last = await single(prom, q);
    return last !== null && Math.abs(last - want) <= TOL * Math.abs(want);
  }, WAIT_MS, what, 250).catch((e) => {
    throw new Error(`${e.message}: ${q} = ${last}, expected ${want} (within ${TOL * 100}%)\n${prom.tail(10)}`);
  });
  return last;
}

// Polls until Prometheus holds `want` as the sum of the events counter matching sel.
async function waitEvents(prom, sel, want, what) {
  const q = `sum(kansatsu_sli_events_total{sli="${SLI}"${sel}})`;
  let last = null;
  await pollUntil(async () => (last = await single(prom, q)) === want, WAIT_MS, what, 200)
    .catch((e) => { throw new Error(`${e.message}: ${q} = ${last}, expected ${want}\n${prom.tail(10)}`); });
}

async function targetsUp(prom, ports) {
  const d = await promApi(prom.port, '/api/v1/targets');
  const up = new Set(d.activeTargets.filter((x) => x.health === 'up').map((x) => x.labels.instance));
  return ports.every((p) => up.has(`127.0.0.1:${p}`));
}

const burn = (bad, total) => (bad / total) / (1 - OBJ);
// Two more SLIs (objective 99.9) for the alerts: every `refund` event is bad,
// every `status` event good, spread over both collectors.
const ALERT_SLIS = ['refund', 'status'];

async function sendNamed(col, name, n, bad, what) {
  const t0 = nowNs() - 5000n * MS;
  const spans = [];
  for (let k = 0; k < n; k++) {
    const i = ++seq;
    const start = t0 + BigInt(k) * MS;
    spans.push(rawSpan({
      service: 'checkout', traceId: traceIdOf(0x52f0, i), spanId: spanIdOf(i, 0), name: `POST /${name}`,
      startNs: start, endNs: start + 20n * MS, error: k < bad,
    }));
  }
  await postSpans(col.httpPort, spans, what);
}

test('fleet burn rate, restart, canary verdict and dashboard over two collectors in a real Prometheus', { timeout: 240000 }, async (t) => {
  const redis = await startRedis(t, 'slofleet-redis');
  const a = await startJsonCollector(t, 'slofleet-a', (dir) => collectorConfig(dir, redis));
  const b = await startJsonCollector(t, 'slofleet-b', (dir) => collectorConfig(dir, redis));
  const gen = runBin(['slo-rules', '--config', join(a.dir, 'config.yaml')]);
  assert.equal(gen.code, 0, `kansatsu slo-rules: exit ${gen.code}\n${gen.stderr}`);
  const rulesFile = join(a.dir, 'slo-rules.yaml');
  writeFileSync(rulesFile, gen.stdout);
  const portA = a.col.metricsPort, portB = b.col.metricsPort;
  const prom = await startPrometheus(t, [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`], [rulesFile], 'prom-slofleet');
  await pollUntil(() => targetsUp(prom, [portA, portB]), WAIT_MS, 'Prometheus scraping both collectors', 200)
    .catch((e) => { throw new Error(`${e.message}\n${prom.tail()}`); });
  const rules = await promApi(prom.port, '/api/v1/rules');
  assert.ok(rules.groups.some((g) => g.name === `kansatsu-slo/sli/${SLI}`), `rule group loaded: ${rules.groups.map((g) => g.name)}`);

  const burnQ = (w) => `kansatsu:sli_burn_rate:rate${w}{sli="${SLI}",version="${V1}"}`;

  // ---- 1. fleet ----
  await sendRaw(a.col, V1, 1, 0, 'seed A');
  await sendRaw(b.col, V1, 1, 0, 'seed B');
  await waitEvents(prom, '', 2, 'Prometheus to hold the seed events');
  await sendRaw(a.col, V1, 80, 2, 'workload A');
  await sendRaw(b.col, V1, 40, 12, 'workload B');
  await waitEvents(prom, '', 122, 'Prometheus to hold every event of A and B');
  await waitNear(prom, burnQ('5m'), burn(14, 120), 'fleet burn rate (5m) = (14/120)/(1 - 0.9)');
  await waitNear(prom, `kansatsu:sli_error_ratio:rate1h{sli="${SLI}",version="${V1}"}`, 14 / 120, 'fleet error ratio (1h)');

  // ---- 2. restart B: a new process on the same metrics port ----
  await b.col.stop();
  const b2 = await startJsonCollector(t, 'slofleet-b2', (dir) => collectorConfig(dir, redis, `127.0.0.1:${portB}`));
  assert.equal(b2.col.metricsPort, portB, 'the new B listens on the old metrics port');
  await sendRaw(b2.col, V1, 20, 10, 'workload B after the restart');
  await waitEvents(prom, `,instance="127.0.0.1:${portB}"`, 20, 'Prometheus to hold the new B\'s counter (reset to 20)');
  await waitNear(prom, burnQ('5m'), burn(24, 140), 'fleet burn rate (5m) over all 140 events after the restart');
  await waitNear(prom, burnQ('30m'), burn(24, 140), 'fleet burn rate (30m) after the restart');

  // ---- 3. canary verdict, real SDK traffic ----
  const svc = (col, version) => {
    const s = makeService(col, { name: 'checkout', version, transport: 'http/protobuf' });
    t.after(() => s.shutdown());
    return s;
  };
  const spans = (s, n, { errors = 0, slow = 0 } = {}) => {
    const t0 = nowNs() - 5000n * MS;
    for (let k = 0; k < n; k++) {
      const start = t0 + BigInt(k) * MS;
      const sp = s.tracer.startSpan('POST /pay', { kind: SpanKind.SERVER, startTime: hr(start) });
      if (k < errors) sp.setStatus({ code: SpanStatusCode.ERROR, message: 'payment failed' });
      sp.end(hr(start + (k >= errors && k < errors + slow ? 800n : 30n) * MS));
    }
  };
  const v2 = svc(a.col, V2);
  spans(v2, 1);
  await v2.flush('seed 2.0.0');
  await waitEvents(prom, `,version="${V2}"`, 1, 'Prometheus to hold the 2.0.0 seed');
  const v1a = svc(a.col, V1), v1b = svc(b2.col, V1);
  spans(v1a, 100);
  spans(v1b, 100);
  spans(v2, 40, { errors: 10, slow: 10 });
  await Promise.all([v1a.flush('1.0.0 on A'), v1b.flush('1.0.0 on B'), v2.flush('2.0.0 on A')]);
  // current counters: A 81 + 1 + 140, the new B 20 + 100 (the old B's 41 are history)
  await waitEvents(prom, '', 81 + 20 + 1 + 240, 'Prometheus to hold the canary events');
  const verdict = (v) => `kansatsu:sli_canary_burn_rate_excess:rate5m{sli="${SLI}",version="${v}"}`;
  // 2.0.0: burn 5 (20 of 40 bad); the others (1.0.0): 24 of 340 bad, 0.71
  await waitNear(prom, verdict(V2), burn(20, 40) - burn(24, 340), 'burn-rate excess of 2.0.0');
  await waitNear(prom, verdict(V1), burn(24, 340) - burn(20, 40), 'burn-rate excess of 1.0.0');
  assert.equal(await single(prom, `${verdict(V2)} > bool 1`), 1, 'the canary analysis fails 2.0.0');
  assert.equal(await single(prom, `${verdict(V1)} > bool 1`), 0, 'the canary analysis passes 1.0.0');

  // ---- 5. the fast-burn page alert over the fleet: all bad fires, all good stays silent ----
  for (const [name, bad] of [['refund', true], ['status', false]]) {
    await sendNamed(a.col, name, 1, bad ? 1 : 0, `seed ${name} on A`);
    await sendNamed(b2.col, name, 1, bad ? 1 : 0, `seed ${name} on B`);
  }
  const total = (name) => single(prom, `sum(kansatsu_sli_events_total{sli="${name}"})`);
  await pollUntil(async () => (await total('refund')) === 2 && (await total('status')) === 2, WAIT_MS,
    'Prometheus to hold the alert SLIs\' seeds', 200);
  for (const [name, bad] of [['refund', true], ['status', false]]) {
    await sendNamed(a.col, name, 30, bad ? 30 : 0, `${name} on A`);
    await sendNamed(b2.col, name, 20, bad ? 20 : 0, `${name} on B`);
  }
  const FAST = 'KansatsuSLOBurnPage1h';
  const firing = (name) => values(prom, `ALERTS{alertname="${FAST}",sli="${name}",alertstate="firing"}`);
  await pollUntil(async () => (await firing('refund')).size === 1 || null, WAIT_MS, `${FAST} firing for refund (all bad)`, 250)
    .catch(async (e) => { throw new Error(`${e.message}: burn 5m ${await single(prom, 'kansatsu:sli_burn_rate:rate5m{sli="refund"}')}`); });
  // all good: its burn rates are recorded (the same group evaluates its alerts
  // right after them) as 0 over the 52 events, and nothing is pending or firing
  await pollUntil(async () => (await total('status')) === 52 && (await single(prom, 'kansatsu:sli_burn_rate:rate1h{sli="status"}')) === 0,
    WAIT_MS, 'the status burn rate recorded as 0 over all its events', 250);
  const groupOf = (name) => promApi(prom.port, '/api/v1/rules').then((r) => r.groups.find((g) => g.name === `kansatsu-slo/sli/${name}`));
  const evaluated = Date.parse((await groupOf('status')).lastEvaluation);
  await pollUntil(async () => Date.parse((await groupOf('status')).lastEvaluation) > evaluated, WAIT_MS,
    'one more evaluation of the status group', 250);
  assert.equal((await values(prom, 'ALERTS{sli="status"}')).size, 0, 'no alert pending or firing for the all-good SLI');
  const fastExpr = (await groupOf('status')).rules.find((r) => r.name === FAST).query;
  assert.equal((await values(prom, fastExpr)).size, 0, `the fast-burn expression is empty for status: ${fastExpr}`);
  assert.equal((await values(prom, (await groupOf('refund')).rules.find((r) => r.name === FAST).query)).size, 1,
    'and holds for refund');

  // ---- 4. the dashboard's queries ----
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  const vars = dash.templating.list;
  assert.deepEqual(vars.map((v) => v.name), ['datasource', 'sli', 'version'], 'template variables');
  assert.equal(vars[0].type, 'datasource', 'the datasource is a variable');
  const subst = (e) => e.replaceAll('$__rate_interval', '5m').replaceAll('$sli', SLI).replaceAll('$version', V1);
  // the variables' own queries (label_values(metric, label)) find pay and 1.0.0
  for (const v of vars.slice(1)) {
    const m = subst(v.definition).match(/^label_values\((.*), (\w+)\)$/);
    assert.ok(m, `variable ${v.name}: ${v.definition}`);
    const got = [...(await values(prom, m[1])).keys()].map((k) => JSON.parse(k)[m[2]]);
    assert.ok(got.includes(v.name === 'sli' ? SLI : V1), `variable ${v.name}: values ${got}`);
  }
  for (const c of [a.col, b2.col]) {
    const { text } = await scrapeText(c);
    assert.match(text, /^kansatsu_journey_registry_up\{[^}]*\} 1$/m, 'the collector is connected to the registry');
    assert.match(text, /^kansatsu_journey_closed_without_head_total\{/m, 'the journey processor runs before sli');
  }
  // [value, tolerance] per target; the budget is 1 - burn, so its tolerance is the burn rate's
  const B = burn(24, 340);
  const want = {
    'SLI ratio vs objective (5m, over the fleet)': [[1 - 24 / 340, TOL * (24 / 340)], [OBJ, 1e-9]],
    'Burn rate (alert windows)': Array(7).fill([B, TOL * B]),
    'Error budget remaining (SLO window)': [[1 - B, TOL * B]],
  };
  let checked = 0;
  for (const p of dash.panels) {
    assert.ok(p.targets && p.targets.length, `panel ${p.title}: targets`);
    assert.equal(p.datasource.uid, '${datasource}', `panel ${p.title}: datasource variable`);
    for (const [i, tg] of p.targets.entries()) {
      const q = subst(tg.expr);
      assert.ok(!q.includes('$'), `panel ${p.title}: unsubstituted variable in ${q}`);
      // poll: the first evaluation of a rule may still be ahead for a new series
      let got = new Map();
      const ok = await pollUntil(async () => (got = await values(prom, q)).size > 0 || null, 15000, `panel ${p.title}`, 250)
        .then(() => true, () => false);
      assert.ok(ok, `panel "${p.title}" query ${q}: empty answer`);
      if (want[p.title]) {
        assert.equal(got.size, 1, `panel ${p.title}: ${JSON.stringify([...got])}`);
        const v = [...got.values()][0], [w, tol] = want[p.title][i];
        assert.ok(Math.abs(v - w) <= tol, `panel "${p.title}" query ${q}: ${v}, expected ${w} +- ${tol}`);
        checked++;
      }
    }
  }
  assert.equal(checked, 10, 'value checks on the ratio, burn-rate and budget panels');
  const heat = dash.panels.find((p) => p.type === 'heatmap');
  assert.ok(heat && heat.targets.every((x) => x.exemplar === true && /kansatsu_sli_latency_seconds_bucket/.test(x.expr)), 'latency heatmap with exemplars');

  await prom.stop();
  await Promise.all([a.col.stop(), b2.col.stop()]);
});
