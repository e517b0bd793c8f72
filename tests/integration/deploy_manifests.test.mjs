// SPDX-License-Identifier: Apache-2.0
// Static checks of deploy/: the example configs, the Kubernetes manifests,
// the Dockerfile (+ .dockerignore) and the systemd unit. Nothing is deployed:
// Docker and a cluster are not available to the tests, so the files are
// parsed and checked against the facts they must agree with:
// - every config in deploy/configs validates with the real `kansatsu validate`.
//   A config whose only failure is a component type not registered yet
//   ("unknown exporter type" / "unknown processor type") is a node:test TODO
//   (the reason is printed); it becomes a real check once the component lands.
//   The rest of such a config is still validated for real, with those
//   components stripped;
// - the ConfigMaps are the config files verbatim; every kansatsu container has
//   the health probes, resources, a non-root security context and the scrape
//   annotations; the agents' loadbalancing DNS name is the sampler tier's
//   headless Service;
// - the Dockerfile's runtime stage installs the package of every shared
//   library the built binary needs (objdump + dpkg -S) and no -dev package;
// - the systemd unit passes `systemd-analyze verify` (skipped with a reason
//   when systemd-analyze is not installed).
// YAML is parsed by deploy_yaml.py (python3 + PyYAML, Debian python3-yaml).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, writeFileSync, rmSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, makeTempDir, sanitizerReport } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const DEPLOY = join(ROOT, 'deploy');
const CONFIGS = join(DEPLOY, 'configs');
const K8S = join(DEPLOY, 'kubernetes');

const HEALTH_PORT = 13133;
const METRICS_PORT = 8888;
const CONFIG_PATH = '/etc/kansatsu/config.yaml';
// required ${env:VAR} (no default) in the example configs and a value to validate with
const VALIDATE_ENV = { KANSATSU_BACKEND_ENDPOINT: 'tracing-backend.example:4317' };
// which example config each manifest's kansatsu runs
const MANIFEST_CONFIG = { 'daemonset.yaml': 'agent.yaml', 'sidecar.yaml': 'agent.yaml', 'sampler.yaml': 'sampler.yaml' };
// sanitizer runtimes appear in NEEDED only in the ASan/UBSan build
const SANITIZER_LIB = /^lib(asan|ubsan|lsan|tsan|hwasan)\.so/;
// in every debian:bookworm(-slim) image (Priority: required)
const BASE_IMAGE_PKGS = new Set(['libc6', 'libgcc-s1']);

const dir = makeTempDir('deploy');
test.after(() => rmSync(dir, { recursive: true, force: true }));

// ---- helpers ----------------------------------------------------------------
const yamlFiles = (d) => readdirSync(d).filter((f) => f.endsWith('.yaml')).sort();

// Parses YAML texts/files with deploy_yaml.py; returns per input its documents.
function parseYaml(inputs, stdin) {
  const r = spawnSync('/usr/bin/python3', [join(HERE, 'deploy_yaml.py'), ...inputs], { encoding: 'utf8', input: stdin, timeout: 60000 });
  if (r.error) throw new Error(`python3 is needed to parse YAML (Debian: python3 python3-yaml): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`deploy_yaml.py failed (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

let parsed;
function loadAll() {
  if (!parsed) {
    const cfg = yamlFiles(CONFIGS);
    const man = yamlFiles(K8S);
    const out = parseYaml([...cfg.map((f) => join(CONFIGS, f)), ...man.map((f) => join(K8S, f))]);
    parsed = { configs: {}, manifests: {} };
    cfg.forEach((f, i) => { parsed.configs[f] = out[i][0]; });
    man.forEach((f, i) => { parsed.manifests[f] = out[cfg.length + i].filter((d) => d !== null); });
  }
  return parsed;
}
const configs = () => loadAll().configs;
const manifests = () => loadAll().manifests;
const allDocs = () => Object.entries(manifests()).flatMap(([file, docs]) => docs.map((doc) => ({ file, doc })));

const DUR_UNITS = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
function seconds(d) {
  const parts = [...String(d).matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  assert.ok(parts.length && parts.map((p) => p[0]).join('') === String(d), `not a duration: ${d}`);
  return parts.reduce((s, p) => s + Number(p[1]) * DUR_UNITS[p[2]], 0);
}

// Kubernetes quantity -> MiB (memory) or cores (cpu)
function quantity(q) {
  const m = String(q).match(/^(\d+(?:\.\d+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/);
  assert.ok(m, `not a Kubernetes quantity: ${q}`);
  const f = { m: 1e-3, k: 1e3, Ki: 1024, M: 1e6, Mi: 2 ** 20, G: 1e9, Gi: 2 ** 30, T: 1e12, Ti: 2 ** 40 }[m[2]] || 1;
  return Number(m[1]) * f;
}

// ${env:VAR:-default} / ${VAR} references in a config text
function envRefs(text) {
  return [...text.matchAll(/(?<!\$)\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g)]
    .map((m) => ({ name: m[1], def: m[2] }));
}

// the test's own environment minus KANSATSU_* (so config defaults apply) plus vars
function cleanEnv(vars) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KANSATSU_')) env[k] = v;
  return { ...env, ...vars };
}

function validate(path, env) {
  const r = spawnSync(BIN, ['validate', '--config', path], { encoding: 'utf8', env: cleanEnv(env), timeout: 30000 });
  const text = (r.stdout || '') + (r.stderr || '');
  assert.equal(sanitizerReport(text), null, `sanitizer report from kansatsu validate ${path}:\n${text}`);
  assert.equal(r.signal, null, `kansatsu validate ${path} died (${r.signal}):\n${text}`);
  return { code: r.status, text };
}

const UNKNOWN_TYPE = /^kansatsu: invalid config: ((exporters|processors)\.([^:\s]+)): unknown (exporter|processor) type "([^"]+)"/m;

// workloads and the kansatsu containers in them
const WORKLOAD_KINDS = new Set(['Deployment', 'DaemonSet', 'StatefulSet']);
const isKansatsu = (c) => /(^|\/)kansatsu([:@]|$)/.test(c.image || '');
function workloads() {
  return allDocs().filter(({ doc }) => WORKLOAD_KINDS.has(doc.kind));
}
function kansatsuContainers(pod) {
  return [
    ...(pod.containers || []).filter(isKansatsu).map((c) => ({ c, init: false })),
    ...(pod.initContainers || []).filter(isKansatsu).map((c) => ({ c, init: true })),
  ];
}
const label = ({ file, doc }) => `${file}: ${doc.kind}/${doc.metadata.name}`;
function portNumber(c, port) {
  if (typeof port === 'number') return port;
  const p = (c.ports || []).find((x) => x.name === port);
  return p ? p.containerPort : NaN;
}
function selects(selector, labels) {
  return selector && Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([k, v]) => labels && labels[k] === v);
}
function configMapOf(file, doc, c) {
  const mount = (c.volumeMounts || []).find((m) => m.mountPath === dirname(CONFIG_PATH) ||
    (m.mountPath === CONFIG_PATH && m.subPath === 'config.yaml'));
  if (!mount) return null;
  const vol = (doc.spec.template.spec.volumes || []).find((v) => v.name === mount.name);
  if (!vol || !vol.configMap) return null;
  const ns = doc.metadata.namespace;
  return manifests()[file].find((d) => d.kind === 'ConfigMap' && d.metadata.name === vol.configMap.name &&
    d.metadata.namespace === ns) || null;
}

// ---- configs ----------------------------------------------------------------
test('deploy/configs holds agent, sampler and standalone', () => {
  for (const f of ['agent.yaml', 'sampler.yaml', 'standalone.yaml']) assert.ok(existsSync(join(CONFIGS, f)), `deploy/configs/${f} missing`);
});

for (const f of existsSync(CONFIGS) ? yamlFiles(CONFIGS) : []) {
  test(`kansatsu validate deploy/configs/${f}`, (t) => {
    assert.ok(BIN && existsSync(BIN), `KANSATSU_BIN (${BIN}) does not exist; build the kansatsu target first`);
    const path = join(CONFIGS, f);
    const text = readFileSync(path, 'utf8');
    for (const ref of envRefs(text)) {
      if (ref.def === undefined) assert.ok(ref.name in VALIDATE_ENV, `${f} needs \${env:${ref.name}}: add a value to VALIDATE_ENV`);
    }
    const r = validate(path, VALIDATE_ENV);
    if (r.code === 0) return;
    const m = r.text.match(UNKNOWN_TYPE);
    assert.ok(m, `kansatsu validate deploy/configs/${f} failed (exit ${r.code}):\n${r.text}`);
    const why = `deploy/configs/${f}: ${m[4]} type "${m[5]}" is not registered in this build yet: ${m[0].trim()}`;
    console.log(`# TODO ${why}`);
    t.todo(why);
  });

  // With the not-yet-registered components removed, the rest must be valid now.
  test(`kansatsu validate deploy/configs/${f} without unregistered components`, () => {
    assert.ok(BIN && existsSync(BIN), `KANSATSU_BIN (${BIN}) does not exist`);
    // substitute env here so typed values (numbers, booleans) survive JSON
    const env = cleanEnv(VALIDATE_ENV);
    const text = readFileSync(join(CONFIGS, f), 'utf8').replace(
      /(?<!\$)\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (_, name, def) => (env[name] !== undefined && env[name] !== '' ? env[name] : (def ?? '')));
    const cfg = parseYaml(['-'], text)[0][0];
    const stripped = [];
    for (let round = 0; round < 20; round++) {
      const path = join(dir, `stripped-${round}-${f}.json`);
      writeFileSync(path, JSON.stringify(cfg, null, 2));
      const r = validate(path, {});
      if (r.code === 0) {
        if (stripped.length) console.log(`# deploy/configs/${f} is valid without ${stripped.join(', ')}`);
        return;
      }
      const m = r.text.match(UNKNOWN_TYPE);
      assert.ok(m, `deploy/configs/${f}${stripped.length ? ` without ${stripped.join(', ')}` : ''} is invalid:\n${r.text}`);
      const [section, id] = [m[2], m[3]];
      delete cfg[section][id];
      stripped.push(`${section}.${id}`);
      for (const p of Object.values(cfg.service.pipelines)) {
        if (p[section]) p[section] = p[section].filter((x) => x !== id);
        if (section === 'exporters' && p.exporters.length === 0) {
          // a pipeline needs an exporter: stand in the debug exporter
          cfg.exporters.debug = { verbosity: 'basic' };
          p.exporters = ['debug'];
        }
      }
    }
    assert.fail(`deploy/configs/${f}: gave up after stripping ${stripped.join(', ')}`);
  });
}

test('the agents route to the sampler tier: loadbalancing resolver names the headless Service', () => {
  const lb = configs()['agent.yaml'].exporters.loadbalancing;
  assert.ok(lb, 'agent.yaml: exporters.loadbalancing missing');
  assert.equal(lb.routing_key, 'traceID', 'agent.yaml: exporters.loadbalancing.routing_key must be traceID (whole traces to one sampler)');
  assert.deepEqual(configs()['agent.yaml'].service.pipelines.traces.exporters, ['loadbalancing']);
  const { hostname, port } = lb.resolver.dns;
  const hm = String(hostname).match(/^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/);
  assert.ok(hm, `agent.yaml: exporters.loadbalancing.resolver.dns.hostname ${hostname} is not <service>.<namespace>.svc.cluster.local`);
  const [, svcName, ns] = hm;
  const svc = allDocs().find(({ doc }) => doc.kind === 'Service' && doc.metadata.name === svcName && doc.metadata.namespace === ns);
  assert.ok(svc, `no Service ${ns}/${svcName} in deploy/kubernetes (resolver.dns.hostname ${hostname})`);
  assert.equal(svc.doc.spec.clusterIP, 'None', `${label(svc)} must be headless (clusterIP: None): DNS must list every sampler`);
  assert.notEqual(svc.doc.spec.publishNotReadyAddresses, true, `${label(svc)}: not-ready samplers must leave the ring`);
  assert.ok(svc.doc.spec.ports.some((p) => p.port === Number(port)), `${label(svc)} has no port ${port} (resolver.dns.port)`);
  assert.ok(existsSync(join(K8S, 'sampler.yaml')), 'deploy/kubernetes/sampler.yaml missing');
  const targets = workloads().filter((w) => w.doc.metadata.namespace === ns &&
    selects(svc.doc.spec.selector, w.doc.spec.template.metadata.labels));
  assert.equal(targets.length, 1, `${label(svc)} must select exactly one workload, selects ${targets.map(label).join(', ') || 'none'}`);
  const w = targets[0];
  assert.equal(w.file, 'sampler.yaml', `${label(svc)} selects ${label(w)}`);
  const ks = kansatsuContainers(w.doc.spec.template.spec);
  assert.ok(ks.some(({ c }) => (c.ports || []).some((p) => p.containerPort === Number(port))),
    `${label(w)}: no kansatsu container port ${port}`);
  if (w.doc.kind === 'StatefulSet') assert.equal(w.doc.spec.serviceName, svcName, `${label(w)}: serviceName`);
});

// ---- manifests ----------------------------------------------------------------
test('deploy/kubernetes holds the sidecar, DaemonSet and sampler layouts', () => {
  for (const f of ['sidecar.yaml', 'daemonset.yaml', 'sampler.yaml']) assert.ok(existsSync(join(K8S, f)), `deploy/kubernetes/${f} missing`);
  const kinds = (f) => manifests()[f].map((d) => d.kind);
  assert.ok(kinds('daemonset.yaml').includes('DaemonSet'), 'daemonset.yaml has no DaemonSet');
  assert.ok(kinds('sampler.yaml').some((k) => k === 'StatefulSet' || k === 'Deployment'), 'sampler.yaml has no StatefulSet or Deployment');
  assert.ok(kinds('sidecar.yaml').some((k) => WORKLOAD_KINDS.has(k)), 'sidecar.yaml has no workload');
});

test('every manifest document is a named object; names are unique', () => {
  const seen = new Map();
  for (const x of allDocs()) {
    const { doc, file } = x;
    assert.ok(doc.apiVersion && doc.kind && doc.metadata && doc.metadata.name, `${file}: a document lacks apiVersion/kind/metadata.name: ${JSON.stringify(doc).slice(0, 200)}`);
    const key = `${doc.kind}/${doc.metadata.namespace || ''}/${doc.metadata.name}`;
    assert.ok(!seen.has(key), `${key} defined twice (${seen.get(key)} and ${file})`);
    seen.set(key, file);
  }
});

test('namespaces and ServiceAccounts used are defined', () => {
  const docs = allDocs().map((x) => x.doc);
  const namespaces = new Set(docs.filter((d) => d.kind === 'Namespace').map((d) => d.metadata.name));
  for (const x of allDocs()) {
    const ns = x.doc.metadata.namespace;
    if (ns && x.doc.kind !== 'Namespace') assert.ok(namespaces.has(ns), `${label(x)}: namespace ${ns} is not defined in deploy/kubernetes`);
  }
  for (const w of workloads()) {
    const sa = w.doc.spec.template.spec.serviceAccountName;
    if (!sa) continue;
    assert.ok(docs.some((d) => d.kind === 'ServiceAccount' && d.metadata.name === sa && d.metadata.namespace === w.doc.metadata.namespace),
      `${label(w)}: ServiceAccount ${sa} not defined in namespace ${w.doc.metadata.namespace}`);
  }
});

test('ConfigMaps carry deploy/configs files verbatim', () => {
  const cms = allDocs().filter(({ doc }) => doc.kind === 'ConfigMap');
  assert.ok(cms.length >= 3, `expected a ConfigMap per layout, found ${cms.length}`);
  for (const x of cms) {
    const src = (x.doc.metadata.annotations || {})['kansatsu.io/config-source'];
    assert.ok(src, `${label(x)}: no kansatsu.io/config-source annotation naming its deploy/configs file`);
    assert.match(src, /^deploy\/configs\/[a-z0-9_-]+\.yaml$/, `${label(x)}: config-source`);
    assert.ok(existsSync(join(ROOT, src)), `${label(x)}: ${src} does not exist`);
    assert.ok(x.doc.data && typeof x.doc.data['config.yaml'] === 'string', `${label(x)}: no data.config.yaml`);
    assert.ok(x.doc.data['config.yaml'] === readFileSync(join(ROOT, src), 'utf8'),
      `${label(x)}: data.config.yaml differs from ${src} (run deploy/kubernetes/sync-configmaps.py)`);
  }
});

test('every workload runs kansatsu with probes, resources, non-root, scrape annotations and its config', () => {
  const dockerUid = dockerfileStages().at(-1).user.split(':')[0];
  const ws = workloads();
  assert.ok(ws.length >= 3, `expected workloads in sidecar, daemonset and sampler manifests, found ${ws.length}`);
  for (const w of ws) {
    const { doc, file } = w;
    const tpl = doc.spec.template;
    const pod = tpl.spec;
    const at = label(w);
    assert.ok(selects(doc.spec.selector.matchLabels, tpl.metadata.labels), `${at}: selector.matchLabels must match the template labels`);
    const ann = tpl.metadata.annotations || {};
    assert.equal(ann['prometheus.io/scrape'], 'true', `${at}: template annotation prometheus.io/scrape`);
    assert.equal(ann['prometheus.io/port'], String(METRICS_PORT), `${at}: template annotation prometheus.io/port`);
    if ('prometheus.io/path' in ann) assert.equal(ann['prometheus.io/path'], '/metrics', `${at}: prometheus.io/path`);
    const ks = kansatsuContainers(pod);
    assert.ok(ks.length >= 1, `${at}: no kansatsu container`);
    for (const { c, init } of ks) {
      const ct = `${at}: container ${c.name}`;
      if (init) assert.equal(c.restartPolicy, 'Always', `${ct}: an init container must be a native sidecar (restartPolicy: Always)`);
      // config
      const args = [...(c.command || []), ...(c.args || [])];
      const ci = args.indexOf('--config');
      assert.ok(ci >= 0 && args[ci + 1] === CONFIG_PATH, `${ct}: args must pass --config ${CONFIG_PATH}: ${JSON.stringify(args)}`);
      const cm = configMapOf(file, doc, c);
      assert.ok(cm, `${ct}: no ConfigMap (from this file, same namespace) mounted at ${dirname(CONFIG_PATH)}`);
      const src = cm.metadata.annotations['kansatsu.io/config-source'];
      if (MANIFEST_CONFIG[file]) assert.equal(src, `deploy/configs/${MANIFEST_CONFIG[file]}`, `${ct}: runs the wrong config`);
      const cfgFile = src.replace(/^deploy\/configs\//, '');
      const cfgText = readFileSync(join(ROOT, src), 'utf8');
      const cfg = configs()[cfgFile];
      // ports and probes
      const ports = (c.ports || []).map((p) => p.containerPort);
      for (const p of [4317, 4318, METRICS_PORT, HEALTH_PORT]) assert.ok(ports.includes(p), `${ct}: containerPort ${p} missing`);
      for (const [probe, path] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']]) {
        const g = c[probe] && c[probe].httpGet;
        assert.ok(g, `${ct}: ${probe}.httpGet missing`);
        assert.equal(g.path, path, `${ct}: ${probe}.httpGet.path`);
        assert.equal(portNumber(c, g.port), HEALTH_PORT, `${ct}: ${probe}.httpGet.port`);
      }
      // resources
      for (const k of ['requests', 'limits']) {
        for (const r of ['cpu', 'memory']) assert.ok(c.resources && c.resources[k] && c.resources[k][r] !== undefined, `${ct}: resources.${k}.${r} missing`);
      }
      assert.ok(quantity(c.resources.requests.memory) <= quantity(c.resources.limits.memory), `${ct}: memory request above limit`);
      assert.ok(quantity(c.resources.requests.cpu) <= quantity(c.resources.limits.cpu), `${ct}: cpu request above limit`);
      // security
      const psc = pod.securityContext || {};
      const sc = c.securityContext || {};
      assert.equal(sc.runAsNonRoot ?? psc.runAsNonRoot, true, `${ct}: runAsNonRoot must be true (container or pod)`);
      const uid = sc.runAsUser ?? psc.runAsUser;
      assert.ok(uid !== undefined && uid !== 0, `${ct}: runAsUser must be set and non-zero`);
      assert.equal(String(uid), dockerUid, `${ct}: runAsUser should be the image's USER ${dockerUid}`);
      assert.equal(sc.allowPrivilegeEscalation, false, `${ct}: allowPrivilegeEscalation must be false`);
      assert.equal(sc.readOnlyRootFilesystem, true, `${ct}: readOnlyRootFilesystem must be true`);
      assert.ok(sc.capabilities && (sc.capabilities.drop || []).includes('ALL'), `${ct}: capabilities.drop must include ALL`);
      // environment the config needs
      const env = Object.fromEntries((c.env || []).map((e) => [e.name, e]));
      for (const ref of envRefs(cfgText)) {
        if (ref.def === undefined) assert.ok(env[ref.name], `${ct}: ${src} needs env ${ref.name}`);
      }
      for (const e of Object.values(env)) {
        const rf = e.valueFrom && e.valueFrom.resourceFieldRef;
        if (rf) assert.equal(rf.containerName, c.name, `${ct}: env ${e.name} resourceFieldRef.containerName`);
      }
      // kansatsu's memory budget fits in the container's memory limit with headroom
      const memRef = envRefs(cfgText).find((r) => r.name === 'KANSATSU_MEMORY_LIMIT_MIB');
      const budget = Number(env.KANSATSU_MEMORY_LIMIT_MIB ? env.KANSATSU_MEMORY_LIMIT_MIB.value
        : memRef ? memRef.def : (cfg.kansatsu && cfg.kansatsu.memory_limit_mib) || 512);
      const limitMiB = quantity(c.resources.limits.memory) / 2 ** 20;
      assert.ok(budget > 0 && budget <= 0.8 * limitMiB, `${ct}: kansatsu memory budget ${budget} MiB must be at most 80% of limits.memory (${limitMiB} MiB)`);
      // SIGTERM drain fits in the grace period
      const shutdown = seconds((cfg.kansatsu && cfg.kansatsu.shutdown_timeout) || '30s');
      const pre = c.lifecycle && c.lifecycle.preStop;
      const preSleep = pre && pre.exec && pre.exec.command && /sleep$/.test(pre.exec.command[0]) ? Number(pre.exec.command[1])
        : pre && pre.sleep ? Number(pre.sleep.seconds) : 0;
      const grace = pod.terminationGracePeriodSeconds ?? 30;
      assert.ok(grace > preSleep + shutdown, `${ct}: terminationGracePeriodSeconds ${grace} must exceed preStop ${preSleep}s + kansatsu.shutdown_timeout ${shutdown}s`);
    }
  }
});

test('the DaemonSet agent is reachable on its node (hostPort or a Service with internalTrafficPolicy: Local)', () => {
  const ds = allDocs().filter(({ doc }) => doc.kind === 'DaemonSet');
  assert.ok(ds.length >= 1, 'no DaemonSet');
  for (const w of ds) {
    const ks = kansatsuContainers(w.doc.spec.template.spec);
    const hostPorts = ks.flatMap(({ c }) => (c.ports || []).filter((p) => p.hostPort).map((p) => p.hostPort));
    const local = allDocs().filter(({ doc }) => doc.kind === 'Service' && doc.metadata.namespace === w.doc.metadata.namespace &&
      doc.spec.internalTrafficPolicy === 'Local' && selects(doc.spec.selector, w.doc.spec.template.metadata.labels));
    const svcPorts = local.flatMap(({ doc }) => doc.spec.ports.map((p) => p.port));
    for (const p of [4317, 4318]) {
      assert.ok(hostPorts.includes(p) || svcPorts.includes(p), `${label(w)}: port ${p} neither a hostPort nor on a node-local Service`);
    }
  }
});

// ---- Dockerfile -----------------------------------------------------------------
// Instructions per stage: {from, name, user, run: [cmd], copy: [...], expose, entrypoint, cmd}
function dockerfileStages() {
  const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  const logical = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) { cur += line.slice(0, -1) + ' '; continue; }
    cur += line;
    if (cur.trim()) logical.push(cur.trim());
    cur = '';
  }
  const stages = [];
  for (const l of logical) {
    const [, ins, rest] = l.match(/^(\S+)\s*(.*)$/);
    const I = ins.toUpperCase();
    if (I === 'FROM') {
      const m = rest.match(/^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i);
      stages.push({ from: m[1], name: m[2], user: 'root', run: [], copy: [], expose: [], entrypoint: null, cmd: null });
      continue;
    }
    const s = stages.at(-1);
    assert.ok(s, `Dockerfile: ${I} before FROM`);
    if (I === 'RUN') s.run.push(rest);
    else if (I === 'COPY' || I === 'ADD') s.copy.push(rest);
    else if (I === 'USER') s.user = rest;
    else if (I === 'EXPOSE') s.expose.push(...rest.split(/\s+/).map((p) => Number(p.split('/')[0])));
    else if (I === 'ENTRYPOINT') s.entrypoint = JSON.parse(rest);
    else if (I === 'CMD') s.cmd = JSON.parse(rest);
  }
  return stages;
}

function aptPackages(stage) {
  const pkgs = [];
  for (const r of stage.run) {
    for (const part of r.split(/&&|;|\|\|/)) {
      const m = part.match(/\bapt-get\s+(?:\S+\s+)*?install\s+(.*)$/);
      if (m) pkgs.push(...m[1].split(/\s+/).filter((w) => w && !w.startsWith('-')));
    }
  }
  return pkgs;
}

function devShArray(name) {
  const text = readFileSync(join(DEPLOY, 'dev.sh'), 'utf8');
  const m = text.match(new RegExp(`^${name}=\\(([^)]*)\\)`, 'm'));
  assert.ok(m, `deploy/dev.sh: ${name}=(...) not found`);
  return m[1].split(/\s+/).filter(Boolean);
}

// NEEDED sonames of the built binary
function neededSonames() {
  for (const [tool, args] of [['objdump', ['-p', BIN]], ['readelf', ['-d', BIN]]]) {
    const r = spawnSync(tool, args, { encoding: 'utf8' });
    if (r.error || r.status !== 0) continue;
    const re = tool === 'objdump' ? /^\s*NEEDED\s+(\S+)/gm : /\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g;
    return [...r.stdout.matchAll(re)].map((m) => m[1]);
  }
  throw new Error('neither objdump nor readelf works (Debian package binutils)');
}

test('Dockerfile: multi-stage Debian 12 build, lean non-root runtime stage', () => {
  const stages = dockerfileStages();
  assert.ok(stages.length >= 2, `expected a build and a runtime stage, found ${stages.length}`);
  for (const s of stages) assert.match(s.from, /^debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?$/, `stage ${s.name}: FROM ${s.from} is not Debian 12`);
  const build = stages[0];
  const rt = stages.at(-1);
  // the build stage installs what deploy/dev.sh builds with
  const buildPkgs = aptPackages(build);
  for (const p of devShArray('BUILD_PKGS')) assert.ok(buildPkgs.includes(p), `build stage does not install ${p} (deploy/dev.sh BUILD_PKGS)`);
  assert.ok(build.run.some((r) => /meson setup .*--buildtype[= ]release/.test(r)), 'build stage: no `meson setup --buildtype=release`');
  assert.ok(build.run.some((r) => /ninja .*kansatsu/.test(r)), 'build stage: no ninja build of kansatsu');
  // the runtime stage
  const rtPkgs = aptPackages(rt);
  const dev = rtPkgs.filter((p) => /-dev$/.test(p) || ['gcc', 'meson', 'ninja-build', 'pkg-config', 'protobuf-c-compiler'].includes(p));
  assert.deepEqual(dev, [], 'runtime stage installs build-only packages');
  assert.ok(rt.copy.some((c) => build.name && c.includes(`--from=${build.name}`)), `runtime stage does not COPY --from=${build.name}`);
  const [user] = rt.user.split(':');
  assert.match(user, /^[1-9][0-9]*$/, `runtime stage USER ${rt.user} must be a fixed non-zero numeric UID`);
  for (const p of [4317, 4318, METRICS_PORT, HEALTH_PORT]) assert.ok(rt.expose.includes(p), `EXPOSE ${p} missing`);
  const argv = [...(rt.entrypoint || []), ...(rt.cmd || [])];
  assert.ok(argv.length && /(^|\/)kansatsu$/.test(argv[0]), `ENTRYPOINT must run kansatsu: ${JSON.stringify(argv)}`);
  assert.deepEqual(argv.slice(1), ['--config', CONFIG_PATH], `ENTRYPOINT/CMD must pass --config ${CONFIG_PATH}`);
  assert.ok(build.run.some((r) => r.includes(CONFIG_PATH.replace(/^\//, ''))) || rt.copy.some((c) => c.includes(CONFIG_PATH)),
    `no default config written to ${CONFIG_PATH}`);
});

test('Dockerfile: the runtime stage installs the package of every library the binary needs', () => {
  assert.ok(BIN && existsSync(BIN), `KANSATSU_BIN (${BIN}) does not exist`);
  const rtPkgs = new Set(aptPackages(dockerfileStages().at(-1)));
  const sonames = neededSonames().filter((s) => !SANITIZER_LIB.test(s));
  assert.ok(sonames.length >= 5, `suspiciously few NEEDED entries: ${sonames.join(' ')}`);
  const missing = [];
  for (const so of sonames) {
    const r = spawnSync('dpkg', ['-S', `*/${so}`], { encoding: 'utf8' });
    assert.ok(!r.error, `dpkg is needed to map ${so} to its package: ${r.error && r.error.message}`);
    // "pkg:arch: /lib/x86_64-linux-gnu/libz.so.1" or "pkg1, pkg2: path"; prefer a multiarch lib dir
    const lines = r.stdout.split('\n').filter((l) => l.includes(': /'));
    const line = lines.find((l) => /: \/(usr\/)?lib\/[^/]*-linux-gnu\//.test(l)) || lines[0];
    assert.ok(line, `dpkg -S: no package ships ${so}: ${r.stderr}`);
    const owners = line.split(': /')[0].split(',').map((p) => p.trim().split(':')[0]);
    if (!owners.some((p) => rtPkgs.has(p) || BASE_IMAGE_PKGS.has(p))) missing.push(`${so} (${owners.join('/')})`);
  }
  assert.deepEqual(missing, [], `runtime stage lacks packages for: ${missing.join(', ')}`);
});

// .dockerignore semantics: patterns relative to the context root, `*` within
// one path element, `**` across elements, a match on a parent excludes its
// children, a later `!pattern` re-includes.
function dockerIgnored(patterns, path) {
  let ignored = false;
  for (let p of patterns) {
    const neg = p.startsWith('!');
    if (neg) p = p.slice(1);
    p = p.replace(/^\/+/, '').replace(/\/+$/, '');
    const re = new RegExp('^' + p.split('/').map((seg) => seg === '**' ? '.*'
      : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('/').replace(/\.\*\//g, '(?:.*/)?') + '$');
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) if (re.test(parts.slice(0, i).join('/'))) { ignored = !neg; break; }
  }
  return ignored;
}

test('.dockerignore keeps build dirs, node_modules and .git out, sources in', () => {
  const file = join(ROOT, '.dockerignore');
  assert.ok(existsSync(file), '.dockerignore missing at the repository root');
  const pats = readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const builds = readdirSync(ROOT).filter((n) => /^build/.test(n));
  for (const p of ['.git', 'build', 'build-asan', 'tests/integration/node_modules', 'tests/integration/node_modules/x/y.js', ...builds]) {
    assert.ok(dockerIgnored(pats, p), `.dockerignore does not exclude ${p}`);
  }
  for (const p of ['meson.build', 'meson_options.txt', 'collector/main.c', 'proto', 'deploy/configs/agent.yaml', 'tests/unit/meson.build', 'bench/meson.build']) {
    assert.ok(!dockerIgnored(pats, p), `.dockerignore excludes ${p}, which the image build needs`);
  }
});

// ---- systemd -------------------------------------------------------------------
function unitSettings(text) {
  const s = {};
  for (const l of text.split('\n')) {
    const m = l.match(/^([A-Za-z]+)=(.*)$/);
    if (m) (s[m[1]] ||= []).push(m[2].trim());
  }
  return s;
}

test('systemd unit: hardened, runs kansatsu with the config, drains on SIGTERM', () => {
  const text = readFileSync(join(DEPLOY, 'systemd', 'kansatsu.service'), 'utf8');
  const s = unitSettings(text);
  const one = (k) => (s[k] || []).at(-1);
  assert.equal(one('ExecStart'), `/usr/bin/kansatsu --config ${CONFIG_PATH}`, 'ExecStart');
  assert.equal(one('Restart'), 'on-failure', 'Restart');
  assert.equal(one('KillSignal'), 'SIGTERM', 'KillSignal');
  assert.equal(one('NoNewPrivileges'), 'yes', 'NoNewPrivileges');
  assert.equal(one('ProtectSystem'), 'strict', 'ProtectSystem');
  assert.ok(one('DynamicUser') === 'yes' || (one('User') && one('User') !== 'root'), 'needs DynamicUser=yes or a non-root User=');
  const stop = one('TimeoutStopSec');
  assert.ok(stop, 'TimeoutStopSec missing');
  const stopS = /^\d+$/.test(stop) ? Number(stop) : seconds(stop.replace(/\s+/g, '').replace(/min/g, 'm'));
  for (const [f, cfg] of Object.entries(configs())) {
    const sd = seconds((cfg.kansatsu && cfg.kansatsu.shutdown_timeout) || '30s');
    assert.ok(stopS > sd, `TimeoutStopSec ${stop} must exceed kansatsu.shutdown_timeout ${sd}s of deploy/configs/${f}`);
  }
});

test('systemd unit: systemd-analyze verify and security', (t) => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = 'systemd-analyze is not installed (Debian package systemd)';
    console.log(`# SKIP ${why}`);
    t.skip(why);
    return;
  }
  assert.ok(BIN && existsSync(BIN), `KANSATSU_BIN (${BIN}) does not exist`);
  // verify checks that ExecStart's binary exists: point it at the built one
  const text = readFileSync(join(DEPLOY, 'systemd', 'kansatsu.service'), 'utf8');
  const unit = join(dir, 'kansatsu.service');
  writeFileSync(unit, text.replace(/^ExecStart=\/usr\/bin\/kansatsu /m, `ExecStart=${BIN} `));
  const v = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', timeout: 60000 });
  const out = (v.stdout || '') + (v.stderr || '');
  assert.equal(v.status, 0, `systemd-analyze verify failed:\n${out}`);
  assert.doesNotMatch(out, /kansatsu\.service/, `systemd-analyze verify complains:\n${out}`);
  // exposure score (0 = locked down .. 10 = unprotected); threshold is in tenths
  const sec = spawnSync('systemd-analyze', ['security', '--offline=yes', '--threshold=20', unit], { encoding: 'utf8', timeout: 60000 });
  const so = (sec.stdout || '') + (sec.stderr || '');
  if (/unrecognized option|unknown option/i.test(so)) {
    console.log('# systemd-analyze security --offline is not supported by this systemd; exposure not checked');
    return;
  }
  const level = so.match(/Overall exposure level for \S+: ([0-9.]+)/);
  console.log(`# systemd-analyze security: exposure ${level ? level[1] : '?'}`);
  assert.equal(sec.status, 0, `systemd-analyze security: exposure above 2.0:\n${so}`);
});

// ---- README ----------------------------------------------------------------------
test('deploy/README.md covers the image and every layout', () => {
  const text = readFileSync(join(DEPLOY, 'README.md'), 'utf8');
  for (const w of ['docker build', 'deploy/Dockerfile', 'kubectl apply', 'namespace.yaml', 'sidecar.yaml', 'daemonset.yaml',
    'sampler.yaml', 'kansatsu.service', 'sync-configmaps.py', 'shutdown_timeout', 'memory_limit_mib']) {
    assert.ok(text.includes(w), `deploy/README.md does not mention ${w}`);
  }
});
