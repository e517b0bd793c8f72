// SPDX-License-Identifier: Apache-2.0
// The two-tier layout with the loadbalancing exporter's dns resolver against
// a real DNS server the test runs: dnsmasq (Debian dnsmasq-base) on port 53
// of a spare loopback address (127.0.0.53), serving samplers.kansatsu.test
// from an addn-hosts file with one A record per sampling instance
// (127.0.0.2, .3, .4: Linux routes all of 127.0.0.0/8 to loopback, so the
// instances listen on 127.0.0.X:<one port>).
// The collector resolves with getaddrinfo, which reads /etc/resolv.conf,
// and a resolv.conf nameserver line takes no port. So the agent runs in a
// private mount namespace: `unshare -m sh -c 'mount --bind <ours>
// /etc/resolv.conf && exec kansatsu ...'` (unshare -m makes mounts private
// by default, so the machine's /etc/resolv.conf is never changed; the test
// checks that). This needs root (mount namespace, port 53); when something
// is missing the test fails and says exactly what.
// Flow: ring {2,3,4}; traces W1 delivered; 127.0.0.5 starts and 127.0.0.4
// stops while DNS still names it; W2 load starts (what the agent routes to
// 127.0.0.4 is held and retried) and the records change to {2,3,5}
// (addn-hosts rewritten, SIGHUP): the agent's ring must follow (its log and
// metrics) and the batches held for 127.0.0.4 must be routed again; W3 on
// the new ring. Every acknowledged span must be in some instance's file,
// exactly once; W1 and W3 traces whole on the endpoint the documented ring
// names; W2 traces only on their old or new owner.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { writeFileSync, renameSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, withTimeout } from './harness.mjs';
import { pollUntil } from './memory_limit_helpers.mjs';
import {
  startInstance, startAgent, makeWorkload, makeSender, collectOutputs, scrapeSamples,
  lbEndpointCounters, metricSum, sum, Ring,
} from './tier_helpers.mjs';

const NAME = 'samplers.kansatsu.test';
const PROBE_IP = '127.0.0.9';
const DNSMASQ = '/usr/sbin/dnsmasq';
const DNS_ADDRS = ['127.0.0.53', '127.0.53.53', '127.53.0.53']; // first free port 53 wins
const DELIVER_MS = 90000;
const LOAD_AFTER_SWAP = 40; // W2 requests acknowledged after the agent's new ring

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const sameSet = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

// dnsmasq in the foreground, logging to stderr; owns its child.
class Dns {
  constructor(dir, addr) {
    this.addr = addr;
    this.hostsPath = join(dir, 'samplers.hosts');
    this.out = '';
    this.exit = null;
    this.probe = `run-${process.pid}-${randomBytes(6).toString('hex')}.probe.kansatsu.test`;
  }

  // The file also names a per-run probe host, so the test knows the server
  // answering is its own (another run of this test on the same machine may
  // hold port 53 of this address with the same samplers records).
  writeRecords(ips) {
    const tmp = `${this.hostsPath}.tmp`;
    writeFileSync(tmp, `${PROBE_IP} ${this.probe}\n${ips.map((ip) => `${ip} ${NAME}\n`).join('')}`);
    renameSync(tmp, this.hostsPath);
  }

  start() {
    this.proc = spawn(DNSMASQ, [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${this.hostsPath}`,
      '--port=53', `--listen-address=${this.addr}`, '--bind-interfaces', '--pid-file', '--user=root',
      '--log-facility=-', '--log-queries',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [this.proc.stdout, this.proc.stderr]) {
      s.setEncoding('utf8');
      s.on('data', (d) => { this.out += d; });
    }
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
      this.proc.on('error', (e) => { this.exit = { error: e.message }; resolve(this.exit); });
    });
  }

  async query(name = NAME) {
    const r = new Resolver({ timeout: 500, tries: 1 });
    r.setServers([this.addr]);
    try { return await r.resolve4(name); } catch (e) { return { error: e.code || e.message }; }
  }

  // Resolves when our dnsmasq (it knows the probe name) answers exactly
  // `ips`; rejects if it exits first.
  async waitServing(ips, ms = 15000) {
    let last;
    const serving = pollUntil(async () => {
      if (this.exit) return true;
      const probe = await this.query(this.probe);
      last = await this.query();
      return Array.isArray(probe) && sameSet(probe, [PROBE_IP]) && Array.isArray(last) && sameSet(last, ips);
    }, ms, `dnsmasq on ${this.addr}:53 to answer ${NAME} -> ${ips.join(', ')}`, 50);
    await serving.catch((e) => { throw new Error(`${e.message}; last answer ${JSON.stringify(last)}\n${this.tail()}`); });
    if (this.exit) throw new Error(`dnsmasq on ${this.addr}:53 exited ${JSON.stringify(this.exit)}\n${this.tail()}`);
  }

  tail(n = 20) { return `--- dnsmasq output (last ${n} lines) ---\n${this.out.split('\n').slice(-n).join('\n')}`; }

  async stop() {
    if (!this.exit) this.proc.kill('SIGTERM');
    await withTimeout(this.exited, 10000, 'dnsmasq to exit').catch((e) => { this.proc.kill('SIGKILL'); throw e; });
  }
}

// Starts dnsmasq on the first loopback address whose port 53 is free.
// Everything that cannot work here fails with the precise reason.
async function startDns(t, dir, ips) {
  if (!existsSync(DNSMASQ)) {
    throw new Error(`${DNSMASQ} is missing: this test needs Debian's dnsmasq-base (apt-get install -y dnsmasq-base; deploy/dev.sh lists it in TEST_PKGS)`);
  }
  const tried = [];
  for (const addr of DNS_ADDRS) {
    const d = new Dns(dir, addr);
    d.writeRecords(ips);
    d.start();
    t.after(() => { if (!d.exit) d.proc.kill('SIGKILL'); });
    try {
      await d.waitServing(ips);
      return d;
    } catch (e) {
      tried.push(`${addr}: ${e.message}`);
      await d.stop().catch(() => {});
      if (!/Address already in use/.test(d.out)) break; // any other failure will not change with the address
    }
  }
  throw new Error(`cannot run dnsmasq on port 53 of a loopback address (uid ${process.getuid()}; binding port 53 needs root or CAP_NET_BIND_SERVICE):\n${tried.join('\n')}`);
}

// The agent's wrapper: a private mount namespace where /etc/resolv.conf is ours.
function resolvWrap(resolvPath) {
  return (argv) => ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvPath, ...argv];
}

function checkNamespaceWorks(resolvPath) {
  const want = readFileSync(resolvPath, 'utf8');
  const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && cat /etc/resolv.conf', resolvPath], { encoding: 'utf8', timeout: 10000 });
  if (r.error || r.status !== 0 || r.stdout !== want) {
    throw new Error('cannot give the agent its own /etc/resolv.conf with `unshare -m sh -c \'mount --bind <file> /etc/resolv.conf\'` ' +
      `(uid ${process.getuid()}; needs CAP_SYS_ADMIN, i.e. root, and util-linux's unshare): exit ${r.status} ` +
      `${r.error ? r.error.message : ''} stderr: ${(r.stderr || '').trim()} stdout: ${JSON.stringify((r.stdout || '').slice(0, 200))}`);
  }
}

// each trace of `traces` whole at ring.lookup(traceId), nowhere else
function wholeOnOwner(traces, out, ring) {
  const bad = [];
  for (const [traceId, spanIds] of traces) {
    const want = ring.lookup(traceId);
    const owners = new Set(spanIds.flatMap((s) => out.spanOwners.get(s) || ['(missing)']));
    const got = (out.byOwner.get(want) && out.byOwner.get(want).get(traceId)) || [];
    if (owners.size !== 1 || !owners.has(want) || got.length !== spanIds.length) {
      bad.push(`trace ${traceId}: owner ${want}, found at ${[...owners].join(' ')} (${got.length}/${spanIds.length} spans at the owner)`);
    }
  }
  return bad;
}

test('dns tier: the agent follows A records that change under load and loses nothing acknowledged', async (t) => {
  const hostResolv = existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : null;
  const dir = makeTempDir('tier-dns');
  t.after(() => { if (!process.env.KANSATSU_IT_KEEP) rmSync(dir, { recursive: true, force: true }); });

  // instances on 127.0.0.2-4 sharing one port (the first picks it)
  const first = await startInstance(t, { label: 'sampler-127.0.0.2', host: '127.0.0.2' });
  const port = first.grpcPort;
  const insts = { '127.0.0.2': first };
  for (const ip of ['127.0.0.3', '127.0.0.4']) insts[ip] = await startInstance(t, { label: `sampler-${ip}`, host: ip, port });
  const ep = (ip) => `${ip}:${port}`;

  const dns = await startDns(t, dir, ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  const resolvPath = join(dir, 'resolv.conf');
  writeFileSync(resolvPath, `nameserver ${dns.addr}\noptions timeout:1 attempts:2\n`);
  checkNamespaceWorks(resolvPath);

  const agent = await startAgent(t, {
    resolver: { dns: { hostname: NAME, port, interval: '200ms', timeout: '1s' } },
    wrap: resolvWrap(resolvPath),
  });
  const ring1 = new Ring(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(ep));
  await agent.waitForLine(new RegExp(`ring rebuilt, 3 endpoint\\(s\\): ${ring1.endpoints.map(escapeRe).join(', ')}$`, 'm'));
  assert.notEqual(hostResolv, null, '/etc/resolv.conf exists on this machine');
  assert.equal(readFileSync('/etc/resolv.conf', 'utf8'), hostResolv, 'the machine\'s /etc/resolv.conf is untouched');

  const sender = makeSender(agent);
  const acked = new Set();
  const failures = [];
  const take = (r) => { for (const id of r.acked) acked.add(id); failures.push(...r.failures); };
  const w1 = makeWorkload({ label: 'dns-w1', nTraces: 150, seed: 31 });
  // W2: blocks of 60 interleaved traces one after another, so traces (not
  // just requests) straddle the swap
  const w2 = { traces: new Map(), requests: [] };
  for (let b = 0; b < 40; b++) {
    const blk = makeWorkload({ label: `dns-w2-${b}`, nTraces: 60, seed: 32 + b });
    for (const [k, v] of blk.traces) w2.traces.set(k, v);
    w2.requests.push(...blk.requests);
  }
  const w3 = makeWorkload({ label: 'dns-w3', nTraces: 150, seed: 33 });
  const ring2 = new Ring(['127.0.0.2', '127.0.0.3', '127.0.0.5'].map(ep));
  let beforeW3;
  let w2sent = new Map(); // W2 traces with at least one span acknowledged
  let w2info = '';
  try {
    // W1 on {2,3,4}, delivered before anything changes
    take(await sender.sendAll(w1.requests));
    await pollUntil(async () => {
      const c = lbEndpointCounters(await scrapeSamples(agent));
      return sum(c.sent) >= w1.totalSpans && sum(c.routed) === sum(c.sent);
    }, DELIVER_MS, 'the agent to deliver W1', 100);

    // the replacement instance comes up before DNS names it; 127.0.0.4 goes
    // away while DNS still names it (as a pod that dies before its record is
    // removed): the agent holds and retries what it routes there until the
    // record goes, then takes those batches back and routes them again
    insts['127.0.0.5'] = await startInstance(t, { label: 'sampler-127.0.0.5', host: '127.0.0.5', port });
    await insts['127.0.0.4'].stop();
    // W2 runs while the records change: 127.0.0.4 goes, 127.0.0.5 comes.
    // It is larger than needed and stops once the agent has logged its new
    // ring and then acknowledged LOAD_AFTER_SWAP more requests, so load runs
    // across the swap; if W2 runs out first the checks still hold.
    const newRing = new RegExp(`ring rebuilt, 3 endpoint\\(s\\): ${ring2.endpoints.map(escapeRe).join(', ')}$`, 'm');
    let changing;
    let ackedAtSwap = null;
    let nW2 = 0;
    const change = async () => {
      dns.writeRecords(['127.0.0.2', '127.0.0.3', '127.0.0.5']);
      dns.proc.kill('SIGHUP');
      await dns.waitServing(['127.0.0.2', '127.0.0.3', '127.0.0.5']);
    };
    const r2 = await sender.sendAll(w2.requests, {
      onAck: (n) => {
        nW2 = n;
        if (!changing && n >= 60) changing = change().then(() => null, (e) => e); // thrown below
        if (ackedAtSwap === null && newRing.test(agent.out)) ackedAtSwap = n;
      },
      stopWhen: () => ackedAtSwap !== null && nW2 >= ackedAtSwap + LOAD_AFTER_SWAP,
    });
    take(r2);
    const changeErr = await changing;
    if (changeErr) throw changeErr;
    w2sent = new Map([...w2.traces].filter(([, ids]) => ids.some((id) => r2.acked.has(id))));
    w2info = `W2: ${nW2} requests acknowledged, ${ackedAtSwap === null ? 'all before the agent logged its new ring' : `${nW2 - ackedAtSwap} after the agent logged its new ring`}`;
    await agent.waitForLine(new RegExp(`endpoint ${escapeRe(ep('127.0.0.4'))} left the ring`, 'm'), 30000);
    await agent.waitForLine(newRing, 30000);

    beforeW3 = lbEndpointCounters(await scrapeSamples(agent)).routed;
    take(await sender.sendAll(w3.requests));
  } finally {
    sender.close();
  }
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} request(s) not acknowledged\n${agent.tail()}`);
  const total = acked.size;

  let c;
  await pollUntil(async () => {
    c = lbEndpointCounters(await scrapeSamples(agent));
    return sum(c.sent) >= total && ring2.endpoints.every((e) => (c.sent[e] || 0) >= (c.routed[e] || 0));
  }, DELIVER_MS, 'the agent to deliver everything', 100).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(c)}\n${agent.tail()}`); });
  const samples = await scrapeSamples(agent);
  const m = (name, labels = {}) => metricSum(samples, name, { exporter: 'loadbalancing', ...labels });
  assert.equal(m('kansatsu_loadbalancer_backends'), 3, 'kansatsu_loadbalancer_backends after the change');
  assert.equal(m('kansatsu_loadbalancer_backend_updates_total'), 2, 'ring rebuilds: the first resolution and the change');
  assert.ok(m('kansatsu_loadbalancer_resolutions_total', { resolver: 'dns', success: 'true' }) >= 2, 'successful dns resolutions');
  const rerouted = m('kansatsu_loadbalancer_rerouted_spans_total');
  assert.ok(rerouted > 0, `spans held for the dead 127.0.0.4 were routed again (kansatsu_loadbalancer_rerouted_spans_total ${rerouted}, failed requests ${JSON.stringify(c.failed)})`);
  assert.equal(sum(c.routed), total + rerouted, `routed = acknowledged + rerouted (${JSON.stringify(c.routed)}, rerouted ${rerouted})`);
  assert.ok((c.routed[ep('127.0.0.5')] || 0) > 0, 'spans were routed to the new endpoint');
  assert.equal(c.routed[ep('127.0.0.4')], beforeW3[ep('127.0.0.4')], 'nothing routed to the removed endpoint after it left');
  const dropped = samples.filter((s) => s.name === 'kansatsu_exporter_dropped_spans_total' && s.value !== 0);
  assert.deepEqual(dropped, [], 'agent: no dropped spans');

  await agent.stop();
  for (const w of agent.warnings().slice(0, 5)) console.log(`# agent: ${w}`);
  for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.5']) await insts[ip].stop();
  await dns.stop();

  const out = collectOutputs(Object.entries(insts).map(([ip, p]) => ({ owner: ep(ip), path: p.outPath })));
  const missing = [...acked].filter((id) => !out.spanOwners.has(id));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged span(s) in no instance's output`);
  assert.equal(out.duplicates, 0, 'spans written more than once (127.0.0.4 stopped with nothing in flight: W1 was delivered)');
  assert.deepEqual(wholeOnOwner(w1.traces, out, ring1).slice(0, 10), [], 'W1 (ring 127.0.0.2-4): traces whole on their owner');
  assert.deepEqual(wholeOnOwner(w3.traces, out, ring2).slice(0, 10), [], 'W3 (ring 127.0.0.2,3,5): traces whole on their owner');
  // W2 straddles the change: a trace may be split between its old and new
  // owner (and only then); a trace whose owner did not change stays whole.
  const bad = [];
  let moved = 0;
  for (const [traceId, spanIds] of w2sent) {
    const a = ring1.lookup(traceId);
    const b = ring2.lookup(traceId);
    if (a !== b) moved++;
    const owners = new Set(spanIds.filter((s) => acked.has(s)).flatMap((s) => out.spanOwners.get(s) || []));
    if ([...owners].some((o) => o !== a && o !== b)) bad.push(`trace ${traceId}: owners ${[...owners].join(' ')}, ring says ${a} then ${b}`);
  }
  assert.deepEqual(bad.slice(0, 10), [], 'W2: spans only at the old or new ring owner');
  const perEp = Object.fromEntries([...out.byOwner].map(([o, tr]) => [o, tr.size]));
  for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) assert.ok(perEp[ep(ip)] > 0, `${ep(ip)} got traces: ${JSON.stringify(perEp)}`);
  assert.equal(readFileSync('/etc/resolv.conf', 'utf8'), hostResolv, 'the machine\'s /etc/resolv.conf is untouched');
  console.log(`# dns: dnsmasq on ${dns.addr}:53; ${total} spans acknowledged; traces per endpoint ${JSON.stringify(perEp)}; ` +
    `${w2info}; W2 traces whose owner changed ${moved}/${w2sent.size}; rerouted spans ${rerouted}`);
});
