#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""run_scenarios.py: the kansatsu benchmark scenarios, end to end.

For each scenario it starts a fresh bench/sink and a fresh kansatsu with the
scenario's config (receivers on 127.0.0.1:0, an otlp exporter to the sink),
drives bench/loadgen against it, samples the collector's CPU time (utime +
stime of all threads, /proc/PID/stat) and RSS (/proc/PID/status) every
200 ms, waits until the sink has counted what the collector acknowledged,
and writes a Markdown table and a JSON file (with CPU model and core count).

Scenarios: passthrough (gRPC in -> otlp out), http (HTTP protobuf in -> otlp
out), latency (passthrough at half the measured sustainable rate, loadgen
--pool 16 --stamp: receiver p99 from loadgen, end-to-end p99 from the sink, and the
same load straight into a sink as the baseline, so the collector's added
latency is the difference), tail (10 tail_sampling policies, decision_wait
5s; loadgen --pool 16 --stamp, so every trace is new while loadgen's CPU
stays small), journey-sli (journey + sli processors), journey-fleet (the same
processors in TWO collectors sharing journey heads through a real Redis, behind
a loadbalancing agent routing by trace id, so about half the consumer traces
land on another collector than their producer; spans per collector CPU-second
over both collectors, Redis commands per journey from Redis's own INFO
commandstats; journey-fleet-local is the same layout without the registry, the
baseline for its cost), overload (3x the sustainable rate
against memory_limit_mib: 64; the RSS must stay within the limit + 10%),
tls-grpc and tls-http (passthrough with the receivers' tls block, loadgen
--tls-ca; a CA and a server certificate for 127.0.0.1 are made with the
openssl CLI in the temp dir; three TLS runs alternating with three plain
runs of the same transport, and the medians of spans per collector
CPU-second compared: the cost of TLS, measured in the same run).
persistent-queue: passthrough with the otlp exporter's queue on disk
(extensions.file_storage, sending_queue.storage; a fresh directory per run),
fsync off and fsync on, three runs of each alternating with three plain
passthrough runs, medians of spans per collector CPU-second compared (the
queue's cost, measured in the same run).
agent: W1 (loadgen --pool 16 --stamp, so every trace id is new) through
[memory_limiter, resource (1 upsert), attributes (2 upserts, 1 delete),
probabilistic_sampler 50%, batch], three runs alternating with three plain
passthrough runs of the same load; medians of spans accepted per collector
CPU-second compared, and the share the sampler kept.
ottl: W1 (loadgen --pool 16 --stamp) through [filter (drop spans whose
http.route is /healthz or that last under 1 ms), transform (two set, one
replace_pattern, one delete_key)]; run it with passthrough in the same
invocation (--scenarios passthrough,ottl) for the baseline beside it.
passthrough, http, latency and overload run with NO processor in the
pipeline (no batch processor: its timeout would be the latency measured).
A scenario whose processors `kansatsu validate` does not know is reported as
"skipped: <processor> not available".

--smoke is the CI check (meson test bench_loadgen_smoke): a few thousand
spans over each transport, loadgen -> sink and loadgen -> kansatsu -> sink
(kansatsu cleartext and with the receivers' tls block), asserting counts only (sent == accepted == counted by the sink).

Every process it starts is stopped (SIGTERM, then SIGKILL after 20 s) on
exit; only 127.0.0.1 is used. Python 3 standard library only.
"""
import argparse
import json
import os
import shlex
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
# --compression, --exporter, --export-connections (set by main): the exporter
# every scenario's collector sends to the sink with (debug: no sink traffic,
# spans counted as exported by the collector's own metrics)
EXPORT = {"compression": "none", "exporter": "otlp", "connections": 0}
# --cores N (set by main): the collector runs on CPUs 0..N-1 with N shards and
# N receiver threads per transport, loadgen and the sink on the other CPUs
# (taskset -c LIST); None = not pinned, the collector's own defaults
PIN = {"cores": None, "collector": None, "others": None}


def pinned(argv, who):
    """argv under taskset when --cores is given (who: "collector" or "others")."""
    return ["taskset", "-c", PIN[who]] + argv if PIN[who] else argv


def log(msg):
    print(f"run_scenarios: {msg}", file=sys.stderr, flush=True)


class Proc:
    """A child process with its output in a file; stop() is safe twice."""

    def __init__(self, argv, logpath):
        self.logpath = logpath
        self.log = open(logpath, "w+b")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for(self, pattern, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.logpath}: exited {self.p.returncode}:\n{self.text()[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.logpath}: no /{pattern}/ within {timeout} s:\n{self.text()[-3000:]}")

    def stop(self, timeout=20):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TCK   # utime, stime: all threads


def minflt(pid):
    """Minor page faults of all the process's threads so far."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """Samples a process's CPU seconds and RSS every 200 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.halt = pid, threading.Event()
        self.rss_max_kib = 0
        self.cpu0 = cpu_s(pid)
        self.t0 = time.monotonic()

    def run(self):
        while not self.halt.is_set():
            try:
                self.rss_max_kib = max(self.rss_max_kib, status_kib(self.pid, "VmRSS"))
            except OSError:
                return
            self.halt.wait(0.2)

    def finish(self):
        self.halt.set()
        self.join()
        return cpu_s(self.pid) - self.cpu0, time.monotonic() - self.t0


def sink_stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.loads(r.read())


def metrics(port):
    """Sums of the collector's counters by metric name (labels summed)."""
    out = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                name = re.split(r"[{ ]", line, 1)[0]
                try:
                    out[name] = out.get(name, 0) + float(line.rsplit(" ", 1)[1])
                except ValueError:
                    pass
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- configs -----------------------------------------------------------------

TAIL_POLICIES = """      - name: errors
        type: status_code
        status_code: {status_codes: [ERROR]}
      - name: slow
        type: latency
        latency: {threshold_ms: 45}
      - name: big-traces
        type: span_count
        span_count: {min_spans: 50}
      - name: checkout-route
        type: string_attribute
        string_attribute: {key: http.route, values: [/api/checkout]}
      - name: server-errors
        type: numeric_attribute
        numeric_attribute: {key: http.response.status_code, min_value: 500, max_value: 599}
      - name: canary
        type: boolean_attribute
        boolean_attribute: {key: deployment.canary, value: true}
      - name: tenant-sampled
        type: trace_state
        trace_state: {key: tenant, values: [gold]}
      - name: baseline
        type: probabilistic
        probabilistic: {sampling_percentage: 5}
      - name: rate-cap
        type: rate_limiting
        rate_limiting: {spans_per_second: 50000}
      - name: bytes-cap
        type: bytes_limiting
        bytes_limiting: {bytes_per_second: 20000000, burst_capacity: 40000000}
"""


JOURNEY_SLI = ("  journey:\n    propagate:\n"
               "      - {from: resource, keys: [service.version]}\n"
               "      - {from: span, keys: [http.route, http.request.method]}\n"
               "{registry}"
               "  sli:\n    slis:\n      - name: server-latency\n"
               "        span: {kind: server}\n        threshold: 300ms\n        objective: 99\n"
               "      - name: async-delivery\n        start: {kind: producer, from: journey}\n"
               "        end: {kind: consumer}\n        threshold: 3s\n        objective: 99\n")


# The agent scenario's processors: the chain nearly every OpenTelemetry
# Collector agent config has, sized as issue 12's benchmark names it.
AGENT_PROCESSORS = """  memory_limiter:
    check_interval: 1s
    limit_mib: {memory_mib}
    spike_limit_mib: 64
  resource:
    attributes:
      - {key: deployment.environment.name, value: bench, action: upsert}
  attributes:
    actions:
      - {key: http.route, value: /redacted, action: upsert}
      - {key: app.tier, value: web, action: upsert}
      - {key: server.port, action: delete}
  probabilistic_sampler:
    sampling_percentage: 50
  batch:
    send_batch_size: 2048
    send_batch_max_size: 4096
    timeout: 200ms
"""


# The ottl scenario's processors (issue 13's benchmark): OTTL filter + transform.
OTTL_PROCESSORS = r"""  filter:
    error_mode: ignore
    traces:
      span:
        - 'attributes["http.route"] == "/healthz"'
        - 'end_time_unix_nano - start_time_unix_nano < 1000000'
  transform:
    error_mode: ignore
    trace_statements:
      - 'set(span.attributes["deployment.environment.name"], "bench")'
      - 'set(span.attributes["app.tier"], "web")'
      - 'replace_pattern(span.attributes["http.route"], "\\{id\\}", "ID")'
      - 'delete_key(span.attributes, "server.port")'
"""


def service_yaml(processors, exporter):
    """The service block every scenario config ends with: metrics on an
    ephemeral port, one traces pipeline from the otlp receiver."""
    return f"""service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [{", ".join(processors)}]
      exporters: [{exporter}]
"""


def collector_config(scenario, sink_grpc, memory_mib, redis_port=None, tls=None, storage=None):
    """tls: {"cert": path, "key": path} puts a tls block on both receivers."""
    tls_block = ""
    if tls:
        tls_block = f"\n        tls:\n          cert_file: {tls['cert']}\n          key_file: {tls['key']}"
    threads = f"\n        threads: {PIN['cores']}" if PIN["cores"] else ""       # --cores
    shards = f"  shards: {PIN['cores']}\n" if PIN["cores"] else ""
    registry = ""
    if redis_port:
        registry = ("    registry:\n      redis:\n"
                    f"        endpoint: 127.0.0.1:{redis_port}\n")
    procs = {
        "passthrough": ([], ""),
        "http": ([], ""),
        "latency": ([], ""),
        "overload": ([], ""),
        "tls-grpc": ([], ""),
        "tls-http": ([], ""),
        "tail": (["tail_sampling"],
                 "  tail_sampling:\n    decision_wait: 5s\n    num_traces: 200000\n"
                 "    expected_new_traces_per_sec: 20000\n    policies:\n" + TAIL_POLICIES),
        "journey-sli": (["journey", "sli"], JOURNEY_SLI.replace("{registry}", "")),
        "journey-fleet": (["journey", "sli"], JOURNEY_SLI.replace("{registry}", registry)),
        "journey-fleet-local": (["journey", "sli"], JOURNEY_SLI.replace("{registry}", "")),
        "agent": (["memory_limiter", "resource", "attributes", "probabilistic_sampler", "batch"],
                  AGENT_PROCESSORS.replace("{memory_mib}", str(memory_mib))),
        "ottl": (["filter", "transform"], OTTL_PROCESSORS),
    }[scenario]
    names, body = procs
    return f"""receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        max_recv_msg_size_mib: 16{threads}{tls_block}
      http:
        endpoint: 127.0.0.1:0{threads}{tls_block}
processors:{(chr(10) + body) if body else " {}"}
exporters:
{export_yaml(sink_grpc)}{storage_yaml(storage, service_yaml(names, export_name()))}kansatsu:
  memory_limit_mib: {memory_mib}
{shards}"""


def export_name():
    """zstd goes over otlphttp: libgrpc 1.51 has no zstd message encoding."""
    if EXPORT["exporter"] == "debug":
        return "debug"
    return "otlphttp" if EXPORT["compression"] == "zstd" else "otlp"


def export_yaml(sink_grpc):
    """The exporter to the sink (--compression, --export-connections), plus
    a debug exporter with --exporter debug."""
    conns = f"    connections: {EXPORT['connections']}\n" if EXPORT["connections"] else ""
    if export_name() == "otlphttp":
        out = (f"  otlphttp:\n    endpoint: http://127.0.0.1:{EXPORT['sink_http']}\n"
               f"    compression: zstd\n{conns}")
    else:
        out = (f"  otlp:\n    endpoint: 127.0.0.1:{sink_grpc}\n    tls:\n      insecure: true\n"
               f"    compression: {'none' if EXPORT['compression'] == 'zstd' else EXPORT['compression']}\n{conns}")
    if EXPORT["exporter"] == "debug":
        out += "  debug:\n    verbosity: basic\n"
    return out


def wait_exported(port, want, timeout):
    """--exporter debug: waits until the collector's exporters counted `want`
    spans sent; returns sink-like stats."""
    deadline, n = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        n = metrics(port).get("kansatsu_exporter_sent_spans_total", 0)
        if n >= want:
            break
        time.sleep(0.1)
    return {"spans": int(n), "traces_approx": 0,
            "e2e_latency_ms": {"samples": 0, "p50": 0, "p99": 0, "p999": 0, "max": 0}}


def storage_yaml(storage, service):
    """storage: {"dir": path, "fsync": bool} puts the otlp exporter's queue on
    disk (a file_storage extension listed in service.extensions)."""
    if not storage:
        return service
    return (f"    sending_queue:\n      storage: file_storage\n"
            f"extensions:\n  file_storage:\n    directory: {storage['dir']}\n"
            f"    fsync: {'true' if storage['fsync'] else 'false'}\n"
            + service.replace("service:\n", "service:\n  extensions: [file_storage]\n", 1))


# ---- one scenario ------------------------------------------------------------

class Env:
    def __init__(self, build, tmp):
        self.build, self.tmp = build, tmp
        self.kansatsu = os.path.join(build, "kansatsu")
        self.loadgen = os.path.join(build, "bench", "loadgen")
        self.sink = os.path.join(build, "bench", "sink")
        for f in (self.kansatsu, self.loadgen, self.sink):
            if not os.access(f, os.X_OK):
                sys.exit(f"run_scenarios: {f} not built (ninja -C {build})")
        self.procs = []

    def start_sink(self, name):
        s = Proc(pinned([self.sink], "others"), os.path.join(self.tmp, f"sink-{name}.log"))
        self.procs.append(s)
        m = s.wait_for(r"^sink: ready$")
        txt = s.text()
        ports = {k: int(re.search(rf"^sink: listening {k} (\d+)$", txt, re.M).group(1))
                 for k in ("grpc", "http", "stats")}
        EXPORT["sink_http"] = ports["http"]  # --compression zstd exports over otlphttp
        del m
        return s, ports

    def validate(self, cfg_path):
        r = subprocess.run([self.kansatsu, "validate", "--config", cfg_path],
                           capture_output=True, text=True, timeout=60)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    def start_collector(self, name, cfg_path):
        c = Proc(pinned([self.kansatsu, "--config", cfg_path], "collector"),
                 os.path.join(self.tmp, f"kansatsu-{name}.log"))
        self.procs.append(c)
        c.wait_for(r"^kansatsu: ready", timeout=30)
        perf_dir = os.environ.get("KANSATSU_BENCH_PERF")
        if perf_dir:   # a profile of each collector run (perf record -g), stopped with the rest
            os.makedirs(perf_dir, exist_ok=True)
            pr = Proc(["perf", "record", "-F", "499", "-g", "-o", os.path.join(perf_dir, f"{name}.data"),
                       "-p", str(c.p.pid)], os.path.join(self.tmp, f"perf-{name}.log"))
            self.procs.append(pr)
        txt = c.text()
        ports = {}
        for key, label in (("grpc", "otlp/grpc"), ("http", "otlp/http"), ("metrics", "metrics")):
            m = re.search(rf"^kansatsu: listening {re.escape(label)} \S*:(\d+)$", txt, re.M)
            if not m:
                raise RuntimeError(f"kansatsu-{name}.log: no port for {label}:\n{txt[-2000:]}")
            ports[key] = int(m.group(1))
        return c, ports

    def run_loadgen(self, name, args, timeout):
        out = os.path.join(self.tmp, f"loadgen-{name}.json")
        argv = pinned([self.loadgen, "--quiet", "--json", out] + [str(a) for a in args], "others")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"loadgen {' '.join(argv[1:])}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        with open(out) as f:
            return json.load(f)

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []


def wait_sink(port, want, timeout, settle=None):
    """Waits until the sink counted `want` spans (or, with settle, until its
    count stopped moving for `settle` seconds). Returns the last stats."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    st = sink_stats(port)
    while time.monotonic() < deadline:
        st = sink_stats(port)
        if want is not None and st["spans"] >= want:
            return st
        if st["spans"] != last:
            last, since = st["spans"], time.monotonic()
        elif settle and time.monotonic() - since >= settle:
            return st
        time.sleep(0.1)
    return st


def run_scenario(env, name, lg_args, duration, memory_mib=512, drain_timeout=60, settle=None, tls=None,
                 transport=None, label=None, storage=None):
    """Returns a result dict (with "skipped" when the config does not validate).
    tls: certificates (make_certs) for the receivers, loadgen gets --tls-ca;
    label: the row's name and the file names (default: name)."""
    row = {"scenario": label or name}
    try:
        sink, sp = env.start_sink(label or name)
        cfg = os.path.join(env.tmp, f"{label or name}.yaml")
        with open(cfg, "w") as f:
            f.write(collector_config(name, sp["grpc"], memory_mib, tls=tls, storage=storage))
        ok, msg = env.validate(cfg)
        if not ok:
            m = re.search(r'unknown (?:processor )?type "?([\w-]+)"?', msg) or \
                re.search(r"processors\.([\w-]+)", msg)
            what = m.group(1) if m else name
            row["skipped"] = f"{what} not available"
            row["validate"] = msg[-400:]
            print(f"{name}: skipped: {row['skipped']}", flush=True)
            return row
        col, cp = env.start_collector(label or name, cfg)
        transport = transport or ("http" if name == "http" else "grpc")
        args = ["--" + transport, "--target", f"127.0.0.1:{cp[transport]}", "--duration", duration] + lg_args
        if tls:
            args += ["--tls-ca", tls["ca"]]
        rss0 = status_kib(col.p.pid, "VmRSS")
        flt0 = minflt(col.p.pid)
        samp = Sampler(col.p.pid)
        samp.start()
        lg = env.run_loadgen(label or name, args, timeout=duration + 120)
        cpu_load = cpu_s(col.p.pid) - samp.cpu0
        acked = lg["spans_accepted"]
        if EXPORT["exporter"] == "debug" and not settle:
            st = wait_exported(cp["metrics"], acked, drain_timeout)
        else:
            st = wait_sink(sp["stats"], None if settle else acked, drain_timeout, settle=settle)
        cpu, wall = samp.finish()
        mt = metrics(cp["metrics"])
        hwm = status_kib(col.p.pid, "VmHWM")
        faults = minflt(col.p.pid) - flt0
        rc = col.stop()
        row.update({
            "transport": lg["transport"] + (" TLS" if lg.get("tls") else ""), "connections": lg["connections"],
            "rate_target": lg["rate"], "elapsed_s": round(lg["elapsed_s"], 2),
            "spans_sent": lg["spans_sent"], "spans_accepted": acked, "spans_refused": lg["spans_refused"],
            "retries": lg["retries"], "reasons": lg["reasons"], "sink_spans": st["spans"],
            "sink_traces_approx": st["traces_approx"],
            "spans_per_s": round(acked / lg["elapsed_s"], 0) if lg["elapsed_s"] else 0,
            "collector_cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
            "cores_used": round(cpu_load / lg["elapsed_s"], 2) if lg["elapsed_s"] else 0,
            "collector_accepted": mt.get("kansatsu_receiver_accepted_spans_total", 0),
            "collector_exported": mt.get("kansatsu_exporter_sent_spans_total", 0),
            "collector_dropped": mt.get("kansatsu_exporter_dropped_spans_total", 0)
            + mt.get("kansatsu_pipeline_dropped_spans_total", 0),
            "spans_per_cpu_s": round(acked / cpu, 0) if cpu else 0,
            "page_faults_per_kspan": round(faults * 1000 / acked, 2) if acked else 0,
            "rss_max_mib": round(max(samp.rss_max_kib, 0) / 1024, 1), "vmhwm_mib": round(hwm / 1024, 1),
            "memory_limit_mib": memory_mib,
            "span_budget_mib": round(mt.get("kansatsu_memory_budget_bytes", 0) / 1048576, 1),
            "rss_at_start_mib": round(rss0 / 1024, 1),
            "memory_trims": mt.get("kansatsu_memory_trims_total", 0),
            "latency_ms": lg["latency_ms"], "e2e_latency_ms": st["e2e_latency_ms"],
            "loadgen_cpu_s": lg["loadgen_cpu_s"], "collector_exit": rc,
        })
        if storage:
            row["queue_spilled_batches"] = mt.get("kansatsu_exporter_queue_spilled_batches_total", 0)
            row["queue_replayed_batches"] = mt.get("kansatsu_exporter_queue_replayed_batches_total", 0)
            row["queue_append_failures"] = mt.get("kansatsu_exporter_queue_append_failures_total", 0)
        return row
    finally:
        env.stop_all()


def make_certs(tmp):
    """A private CA and a server certificate for 127.0.0.1 signed by it (EC
    P-256, as the TLS integration tests make them), with the openssl CLI."""
    d = os.path.join(tmp, "tls")
    os.makedirs(d, exist_ok=True)

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    for name in ("ca", "server"):
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key")
    ossl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", "/CN=kansatsu-bench-ca",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-out", "ca.crt")
    ossl("req", "-new", "-key", "server.key", "-subj", "/CN=kansatsu-bench", "-out", "server.csr")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
         "-sha256", "-extfile", "server.ext", "-out", "server.crt")
    return {"ca": os.path.join(d, "ca.crt"), "cert": os.path.join(d, "server.crt"),
            "key": os.path.join(d, "server.key")}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def run_tls(env, name, lg_args, duration, runs=3):
    """Plain and TLS passthrough of one transport, alternating, `runs` each
    (so drift on a shared machine hits both alike); the medians compared."""
    transport = "grpc" if name == "tls-grpc" else "http"
    certs = make_certs(env.tmp)
    plain, tls = [], []
    for i in range(runs):
        for use_tls, out in ((False, plain), (True, tls)):
            label = f"{name}-{'tls' if use_tls else 'plain'}-{i + 1}"
            r = run_scenario(env, name, lg_args, duration, tls=certs if use_tls else None, transport=transport,
                             label=label)
            if "skipped" in r:
                return r
            if not (r["spans_accepted"] == r["sink_spans"]) or r["collector_exit"] != 0:
                raise RuntimeError(f"{label}: accepted {r['spans_accepted']} sink {r['sink_spans']} "
                                   f"exit {r['collector_exit']}")
            log(f"  {label}: {r['spans_per_s']:.0f} spans/s, {r['spans_per_cpu_s']:.0f} per collector CPU-s")
            out.append(r)
    row = dict(median_row(tls))
    row["scenario"] = name
    row["tls"] = {
        "runs": runs,
        "plain_spans_per_cpu_s": [r["spans_per_cpu_s"] for r in plain],
        "tls_spans_per_cpu_s": [r["spans_per_cpu_s"] for r in tls],
        "plain_spans_per_s": [r["spans_per_s"] for r in plain],
        "tls_spans_per_s": [r["spans_per_s"] for r in tls],
        "plain_rss_max_mib": [r["rss_max_mib"] for r in plain],
        "tls_rss_max_mib": [r["rss_max_mib"] for r in tls],
    }
    return row


def run_agent(env, lg_args, duration, runs=3):
    """Passthrough and the agent chain, alternating, `runs` each, the same
    load; the sink counts what the sampler kept (settled, not an exact
    count), so the check is accepted == collector accepted, exit 0."""
    out = {"plain": [], "agent": []}
    for i in range(runs):
        for kind in ("plain", "agent"):
            label = f"agent-{kind}-{i + 1}"
            name = "passthrough" if kind == "plain" else "agent"
            r = run_scenario(env, name, lg_args, duration, label=label,
                             settle=None if kind == "plain" else 3, drain_timeout=90)
            if "skipped" in r:
                return r
            want = r["spans_accepted"] if kind == "plain" else None
            if r["collector_exit"] != 0 or (want is not None and r["sink_spans"] != want) or \
                    r["collector_accepted"] != r["spans_accepted"]:
                raise RuntimeError(f"{label}: accepted {r['spans_accepted']} collector "
                                   f"{r['collector_accepted']} sink {r['sink_spans']} exit {r['collector_exit']}")
            kept = r["sink_spans"] / r["spans_accepted"] if r["spans_accepted"] else 0
            log(f"  {label}: {r['spans_per_s']:.0f} spans/s, {r['spans_per_cpu_s']:.0f} per collector CPU-s, "
                f"kept {kept * 100:.2f}%, {r['page_faults_per_kspan']:.1f} page faults per 1000 spans")
            r["kept"] = kept
            out[kind].append(r)
    row = dict(median_row(out["agent"]))
    row["scenario"] = "agent"
    row["agent"] = {k: {"spans_per_cpu_s": [r["spans_per_cpu_s"] for r in v],
                        "spans_per_s": [r["spans_per_s"] for r in v],
                        "kept": [r["kept"] for r in v],
                        "rss_max_mib": [r["rss_max_mib"] for r in v]} for k, v in out.items()}
    row["agent"]["runs"] = runs
    return row


def median_row(rows):
    """The run with the median spans per collector CPU-second."""
    return sorted(rows, key=lambda r: r["spans_per_cpu_s"])[len(rows) // 2]


def run_pq(env, lg_args, duration, runs=3):
    """Plain passthrough and passthrough with the persistent queue (fsync off,
    then on), alternating, `runs` each; every queue starts in a fresh
    directory. The medians of spans per collector CPU-second are compared."""
    kinds = (("plain", None), ("pq", False), ("pq-fsync", True))
    out = {k: [] for k, _ in kinds}
    for i in range(runs):
        for kind, fsync in kinds:
            label = f"persistent-queue-{kind}-{i + 1}"
            storage = None
            if fsync is not None:
                storage = {"dir": os.path.join(env.tmp, f"queue-{kind}-{i + 1}"), "fsync": fsync}
                os.makedirs(storage["dir"])
            r = run_scenario(env, "passthrough", lg_args, duration, label=label, storage=storage)
            if "skipped" in r:
                return r
            if not (r["spans_accepted"] == r["sink_spans"]) or r["collector_exit"] != 0:
                raise RuntimeError(f"{label}: accepted {r['spans_accepted']} sink {r['sink_spans']} "
                                   f"exit {r['collector_exit']}")
            log(f"  {label}: {r['spans_per_s']:.0f} spans/s, {r['spans_per_cpu_s']:.0f} per collector CPU-s"
                + (f", {r['queue_spilled_batches']:.0f} batches read back from disk" if storage else ""))
            out[kind].append(r)
    row = dict(median_row(out["pq"]))
    row["scenario"] = "persistent-queue"
    row["pq"] = {"runs": runs}
    for kind, _ in kinds:
        row["pq"][kind] = {
            "spans_per_cpu_s": [r["spans_per_cpu_s"] for r in out[kind]],
            "spans_per_s": [r["spans_per_s"] for r in out[kind]],
            "rss_max_mib": [r["rss_max_mib"] for r in out[kind]],
            "p99_ms": [r["latency_ms"]["p99"] for r in out[kind]],
            "spilled": [r.get("queue_spilled_batches", 0) for r in out[kind]],
        }
    return row


def agent_config(endpoints):
    hosts = ", ".join(f'"127.0.0.1:{p}"' for p in endpoints)
    return f"""receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        max_recv_msg_size_mib: 16
processors: {{}}
exporters:
  loadbalancing:
    routing_key: traceID
    protocol:
      otlp:
        tls:
          insecure: true
        compression: none
    resolver:
      static:
        hostnames: [{hosts}]
{service_yaml([], "loadbalancing")}"""


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def redis_cmdstats(port):
    r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "INFO", "commandstats"],
                       capture_output=True, text=True, timeout=30)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^cmdstat_(\w+):calls=(\d+)", r.stdout, re.M)}


def run_fleet(env, name, lg_args, duration, memory_mib=512):
    """loadgen -> agent (loadbalancing, traceID) -> collectors A and B (journey +
    sli, heads shared through Redis) -> one sink."""
    row = {"scenario": name}
    try:
        sink, sp = env.start_sink(name)
        rport = None
        if name == "journey-fleet":
            rport = free_port()
            redis = Proc(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", env.tmp], os.path.join(env.tmp, f"redis-{name}.log"))
            env.procs.append(redis)
            redis.wait_for(r"Ready to accept connections", timeout=30)
        cols, ports = [], []
        for side in ("a", "b"):
            cfg = os.path.join(env.tmp, f"{name}-{side}.yaml")
            with open(cfg, "w") as f:
                f.write(collector_config(name, sp["grpc"], memory_mib, rport))
            ok, msg = env.validate(cfg)
            if not ok:
                row["skipped"] = msg[-200:]
                return row
            c, cp = env.start_collector(f"{name}-{side}", cfg)
            cols.append(c)
            ports.append(cp)
        acfg = os.path.join(env.tmp, f"{name}-agent.yaml")
        with open(acfg, "w") as f:
            f.write(agent_config([p["grpc"] for p in ports]))
        agent = Proc([env.kansatsu, "--config", acfg], os.path.join(env.tmp, f"kansatsu-{name}-agent.log"))
        env.procs.append(agent)
        agent.wait_for(r"^kansatsu: ready", timeout=30)
        aport = int(re.search(r"^kansatsu: listening otlp/grpc \S*:(\d+)$", agent.text(), re.M).group(1))
        samps = [Sampler(c.p.pid) for c in cols]
        asamp = Sampler(agent.p.pid)
        for x in samps + [asamp]:
            x.start()
        lg = env.run_loadgen(name, ["--grpc", "--target", f"127.0.0.1:{aport}", "--duration", duration] + lg_args,
                             timeout=duration + 120)
        acked = lg["spans_accepted"]
        st = wait_sink(sp["stats"], None, 90, settle=7)
        cpus = [x.finish()[0] for x in samps]
        acpu = asamp.finish()[0]
        mts = [metrics(p["metrics"]) for p in ports]
        cmds = redis_cmdstats(rport) if rport else {}
        rcs = [agent.stop()] + [c.stop() for c in cols]
        tot = lambda k: sum(m.get(k, 0) for m in mts)
        joined = tot("kansatsu_journey_traces_joined_total")
        closed = tot("kansatsu_journey_closed_without_head_total")
        hops = joined + closed
        cpu = sum(cpus)
        row.update({
            "transport": lg["transport"], "connections": lg["connections"], "rate_target": lg["rate"],
            "elapsed_s": round(lg["elapsed_s"], 2), "spans_sent": lg["spans_sent"], "spans_accepted": acked,
            "spans_refused": lg["spans_refused"], "retries": lg["retries"], "reasons": lg["reasons"],
            "sink_spans": st["spans"], "spans_per_s": round(acked / lg["elapsed_s"], 0) if lg["elapsed_s"] else 0,
            "collector_cpu_s": round(cpu, 2), "collector_cpu_s_each": [round(c, 2) for c in cpus],
            "agent_cpu_s": round(acpu, 2),
            "cores_used": round(cpu / lg["elapsed_s"], 2) if lg["elapsed_s"] else 0,
            "collector_dropped": tot("kansatsu_exporter_dropped_spans_total"),
            "spans_per_cpu_s": round(acked / cpu, 0) if cpu else 0,
            "rss_max_mib": max(round(x.rss_max_kib / 1024, 1) for x in samps),
            "latency_ms": lg["latency_ms"], "collector_exit": rcs,
            "journeys_joined": joined, "journeys_closed_without_head": closed,
            "registry_lookups": tot("kansatsu_journey_registry_lookups_total"),
            "redis_set": cmds.get("set", 0), "redis_mget": cmds.get("mget", 0),
            "redis_commands_per_journey": round((cmds.get("set", 0) + cmds.get("mget", 0)) / hops, 3) if hops else 0,
            "redis_commands_per_1k_spans": round(1000 * (cmds.get("set", 0) + cmds.get("mget", 0)) / acked, 2)
            if acked else 0,
        })
        return row
    finally:
        env.stop_all()


def run_direct(env, name, lg_args, duration):
    """The same load straight into a sink (no collector): what loadgen, the
    sink and the loopback add by themselves, the baseline the latency scenario
    subtracts."""
    row = {"scenario": name}
    try:
        sink, sp = env.start_sink(name)
        args = ["--grpc", "--target", f"127.0.0.1:{sp['grpc']}", "--duration", duration] + lg_args
        lg = env.run_loadgen(name, args, timeout=duration + 120)
        st = wait_sink(sp["stats"], lg["spans_accepted"], 60)
        row.update({"spans_accepted": lg["spans_accepted"], "sink_spans": st["spans"], "rate_target": lg["rate"],
                    "spans_per_s": round(lg["spans_accepted"] / lg["elapsed_s"], 0) if lg["elapsed_s"] else 0,
                    "latency_ms": lg["latency_ms"], "e2e_latency_ms": st["e2e_latency_ms"],
                    "spans_sent": lg["spans_sent"]})
        return row
    finally:
        env.stop_all()


# ---- output ------------------------------------------------------------------

def markdown(results, meta):
    out = [f"Machine: {meta['cpu_model']}, {meta['cores']} cores, {meta['kernel']}; "
           f"build `{meta['build']}`; {meta['date']}; loadgen shape W1 (512 spans/request)"
           + (f"; collector pinned to CPUs {meta['pin']['collector']} (shards = receiver threads = "
              f"{meta['pin']['cores']}), loadgen and sink to {meta['pin']['others']}"
              if meta.get("pin", {}).get("cores") else "") + ".", ""]
    out.append("| scenario | transport | conns | target spans/s | spans/s accepted | spans accepted | sink spans | "
               "collector dropped | refused | retries | collector CPU s / s | spans per collector core | RSS max MiB | "
               "p50 ms | p99 ms | p99.9 ms |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if "skipped" in r:
            out.append(f"| {r['scenario']} | skipped: {r['skipped']} |" + " |" * 14)
            continue
        lat = r["latency_ms"]
        out.append(f"| {r['scenario']} | {r['transport']} | {r['connections']} | "
                   f"{r['rate_target'] or 'max'} | {r['spans_per_s']:.0f} | {r['spans_accepted']} | {r['sink_spans']} | "
                   f"{r['collector_dropped']:.0f} | {r['spans_refused']} | "
                   f"{r['retries']} | {r['cores_used']:.2f} | {r['spans_per_cpu_s']:.0f} | {r['rss_max_mib']} | "
                   f"{lat['p50']:.2f} | {lat['p99']:.2f} | {lat['p999']:.2f} |")
    lat = next((r for r in results if r["scenario"] == "latency" and "skipped" not in r), None)
    if lat:
        e = lat["e2e_latency_ms"]
        out += ["", "Passthrough added latency at half the sustainable rate "
                f"({lat['rate_target']:.0f} spans/s offered, {lat['spans_per_s']:.0f} accepted; loadgen --pool 16 --stamp; "
                "no processor in the pipeline):", "",
                "| measure | p50 ms | p99 ms | p99.9 ms | samples |", "| --- | ---: | ---: | ---: | ---: |",
                f"| request (receiver ack, loadgen) | {lat['latency_ms']['p50']:.2f} | {lat['latency_ms']['p99']:.2f} | "
                f"{lat['latency_ms']['p999']:.2f} | {lat['spans_sent'] // 512} |",
                f"| end to end (root span end -> sink arrival) | {e['p50']:.2f} | {e['p99']:.2f} | {e['p999']:.2f} | "
                f"{e['samples']} |"]
        d = lat.get("direct")
        if d:
            de = d["e2e_latency_ms"]
            out += [f"| baseline: loadgen -> sink, no collector ({d['spans_per_s']:.0f} spans/s) | {de['p50']:.2f} | "
                    f"{de['p99']:.2f} | {de['p999']:.2f} | {de['samples']} |",
                    f"| **collector added** (end to end minus baseline) | {e['p50'] - de['p50']:.2f} | "
                    f"{e['p99'] - de['p99']:.2f} | {e['p999'] - de['p999']:.2f} | |"]
    for fl in (r for r in results if r["scenario"].startswith("journey-fleet") and "skipped" not in r):
        how = ("heads shared through Redis" if fl["scenario"] == "journey-fleet"
               else "NO shared registry: the baseline")
        out += ["", f"{fl['scenario']} (two collectors behind a loadbalancing agent, {how}): "
                f"{fl['spans_per_cpu_s']:.0f} spans per collector CPU-second over both collectors "
                f"(CPU s {fl['collector_cpu_s_each']}, agent {fl['agent_cpu_s']} s); consumer traces joined "
                f"{fl['journeys_joined']:.0f}, closed without head {fl['journeys_closed_without_head']:.0f}; "
                f"Redis SET {fl['redis_set']}, MGET {fl['redis_mget']}: {fl['redis_commands_per_journey']} commands "
                f"per journey, {fl['redis_commands_per_1k_spans']} per 1000 spans."]
    tl = [r for r in results if r["scenario"].startswith("tls-") and "skipped" not in r]
    if tl:
        out += ["", "Passthrough over TLS against plain passthrough of the same transport, in the same run "
                f"({tl[0]['tls']['runs']} runs each, alternating; medians; loadgen --pool 16, {tl[0]['connections']} "
                "connections, each handshakes once; EC P-256 certificate):", "",
                "| transport | plain spans per collector core | TLS spans per collector core | TLS cost | "
                "plain spans/s | TLS spans/s | runs (plain / TLS spans per core) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for r in tl:
            x = r["tls"]
            p, t = median(x["plain_spans_per_cpu_s"]), median(x["tls_spans_per_cpu_s"])
            cost = (1 - t / p) * 100 if p else 0
            out.append(f"| {r['transport']} | {p:.0f} | {t:.0f} | {cost:.1f}% | {median(x['plain_spans_per_s']):.0f} | "
                       f"{median(x['tls_spans_per_s']):.0f} | "
                       f"{' '.join(f'{v:.0f}' for v in x['plain_spans_per_cpu_s'])} / "
                       f"{' '.join(f'{v:.0f}' for v in x['tls_spans_per_cpu_s'])} |")
    pq = next((r for r in results if r["scenario"] == "persistent-queue" and "skipped" not in r), None)
    if pq:
        x = pq["pq"]
        base = median(x["plain"]["spans_per_cpu_s"])
        out += ["", "Passthrough with the persistent queue (`sending_queue.storage: file_storage`) against plain "
                f"passthrough, in the same run ({x['runs']} runs each, alternating; medians; loadgen --pool 16, "
                f"{pq['connections']} connections; gRPC in, otlp out, no processor):", "",
                "| queue | spans per collector core | cost | spans/s | request p99 ms | RSS max MiB | "
                "batches read back from disk | runs (spans per core) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for kind, what in (("plain", "in memory (plain passthrough)"), ("pq", "on disk, fsync off"),
                           ("pq-fsync", "on disk, fsync on")):
            k = x[kind]
            v = median(k["spans_per_cpu_s"])
            cost = (1 - v / base) * 100 if base else 0
            out.append(f"| {what} | {v:.0f} | {'-' if kind == 'plain' else f'{cost:.1f}%'} | "
                       f"{median(k['spans_per_s']):.0f} | {median(k['p99_ms']):.2f} | {median(k['rss_max_mib'])} | "
                       f"{median(k['spilled']):.0f} | {' '.join(f'{s:.0f}' for s in k['spans_per_cpu_s'])} |")
    ag = next((r for r in results if r["scenario"] == "agent" and "skipped" not in r), None)
    if ag:
        x = ag["agent"]
        base = median(x["plain"]["spans_per_cpu_s"])
        out += ["", "The agent chain [memory_limiter, resource (1 upsert), attributes (2 upserts, 1 delete), "
                "probabilistic_sampler 50%, batch] against plain passthrough, in the same run "
                f"({x['runs']} runs each, alternating; medians; loadgen --pool 16 --stamp, {ag['connections']} "
                "connections; gRPC in, otlp out; spans counted as accepted by the collector):", "",
                "| pipeline | spans per collector core | vs passthrough | spans/s | kept by the sampler | RSS max MiB | "
                "runs (spans per core) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for kind, what in (("plain", "passthrough (no processor)"), ("agent", "agent chain")):
            k = x[kind]
            v = median(k["spans_per_cpu_s"])
            out.append(f"| {what} | {v:.0f} | {v / base * 100:.1f}% | {median(k['spans_per_s']):.0f} | "
                       f"{median(k['kept']) * 100:.2f}% | {median(k['rss_max_mib'])} | "
                       f"{' '.join(f'{s:.0f}' for s in k['spans_per_cpu_s'])} |")
    ov = next((r for r in results if r["scenario"] == "overload" and "skipped" not in r), None)
    if ov:
        retryable = all(k in ("grpc UNAVAILABLE", "grpc RESOURCE_EXHAUSTED", "http 429", "http 503")
                        for k in ov["reasons"])
        reasons = ", ".join(f"{k}: {v['retries']} retries, {v['refused_spans']} spans given up"
                            for k, v in ov["reasons"].items())
        lim = ov.get("memory_limit_mib", 64)
        peak = max(ov["rss_max_mib"], ov["vmhwm_mib"])
        out += ["", f"Overload (memory_limit_mib {lim}, offered {ov['rate_target']:.0f} spans/s): RSS max "
                f"{ov['rss_max_mib']} MiB (VmHWM {ov['vmhwm_mib']} MiB) vs limit {lim} MiB + 10% = {lim * 1.1:.1f} MiB: "
                f"{'within' if peak <= lim * 1.1 else 'ABOVE'} (RSS at start {ov.get('rss_at_start_mib', 0)} MiB, "
                f"span budget {ov.get('span_budget_mib', 0)} MiB, {ov.get('memory_trims', 0):.0f} allocator trims); refusals "
                f"{'all retryable' if retryable else 'NOT all retryable'} "
                f"({reasons or 'none'}); "
                f"spans acknowledged {ov['spans_accepted']} vs counted by the sink {ov['sink_spans']} "
                f"({'equal' if ov['spans_accepted'] == ov['sink_spans'] else 'DIFFERENT'})."]
    return "\n".join(out) + "\n"


# ---- main --------------------------------------------------------------------

def smoke(env):
    """Counts only: every span sent is accepted and counted by the sink."""
    failures = []
    sink, sp = env.start_sink("smoke-direct")
    for t in ("grpc", "http"):
        lg = env.run_loadgen(f"direct-{t}", [f"--{t}", "--target", f"127.0.0.1:{sp[t]}", "--spans", 5120,
                                             "-c", 2, "--duration", 60, "--async-pct", 10], timeout=120)
        if not (lg["spans_sent"] == lg["spans_accepted"] == 5120):
            failures.append(f"direct {t}: sent {lg['spans_sent']} accepted {lg['spans_accepted']}")
    st = wait_sink(sp["stats"], 10240, 30)
    if st["spans"] != 10240:
        failures.append(f"direct: sink counted {st['spans']} of 10240")
    rc = sink.stop()
    if rc != 0:   # a sanitizer report makes it non-zero
        failures.append(f"sink exited {rc}:\n{sink.text()[-3000:]}")
    env.stop_all()
    # pooled bodies re-stamped per send: 10 requests cycling 2 bodies per
    # worker must still be ~1024 distinct traces (repeated ids: ~410), each
    # root ending just before it is sent (unstamped W1 times are from 2024)
    sink, sp = env.start_sink("smoke-stamp")
    lg = env.run_loadgen("direct-stamp", ["--grpc", "--target", f"127.0.0.1:{sp['grpc']}", "--spans", 5120,
                                          "-c", 2, "--duration", 60, "--pool", 2, "--stamp"], timeout=120)
    st = wait_sink(sp["stats"], 5120, 30)
    roots = st["e2e_latency_ms"]["samples"]
    if st["spans"] != 5120 or lg["spans_accepted"] != 5120:
        failures.append(f"stamp: sent {lg['spans_sent']} accepted {lg['spans_accepted']} sink {st['spans']}")
    if not 1000 <= roots <= 1060:
        failures.append(f"stamp: {roots} root spans ended just before they were sent, not ~1024")
    elif not 0.95 * roots <= st["traces_approx"] <= 1.05 * roots:
        failures.append(f"stamp: ~{st['traces_approx']:.0f} distinct traces for {roots} roots")
    rc = sink.stop()
    if rc != 0:
        failures.append(f"sink exited {rc}:\n{sink.text()[-3000:]}")
    env.stop_all()
    certs = make_certs(env.tmp)
    for name in ("passthrough", "http", "tls-grpc", "tls-http"):
        tls = certs if name.startswith("tls-") else None
        transport = {"tls-grpc": "grpc", "tls-http": "http"}.get(name)
        r = run_scenario(env, name, ["--spans", 5120, "-c", 2], 60, drain_timeout=60, tls=tls, transport=transport)
        if "skipped" in r:
            failures.append(f"{name}: {r['skipped']}")
            continue
        if not (r["spans_sent"] == r["spans_accepted"] == r["sink_spans"] == 5120) or r["collector_exit"] != 0:
            failures.append(f"{name}: sent {r['spans_sent']} accepted {r['spans_accepted']} "
                            f"sink {r['sink_spans']} collector exit {r['collector_exit']}")
    for f in failures:
        log("FAIL " + f)
    if not failures:
        print("smoke: ok (loadgen -> sink and loadgen -> kansatsu -> sink, gRPC and HTTP, cleartext and TLS: "
              "counts match)")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build dir with kansatsu and bench/ (default build)")
    ap.add_argument("--duration", type=float, default=10, help="seconds per scenario (default 10)")
    ap.add_argument("--connections", type=int, default=2, help="loadgen connections (default 2)")
    ap.add_argument("--scenarios", default="passthrough,http,latency,tail,journey-sli,overload")
    ap.add_argument("--out", default=None, help="write <out>.md and <out>.json (default: stdout only)")
    ap.add_argument("--sustainable", type=float, default=None,
                    help="spans/s to base latency (1/2) and overload (3x) on when passthrough is not run")
    ap.add_argument("--smoke", action="store_true", help="CI check: counts only, a few seconds")
    ap.add_argument("--compression", choices=("none", "gzip", "zstd"), default="none",
                    help="the exporter's compression towards the sink, in every scenario (default none; "
                         "zstd goes over otlphttp to the sink's HTTP port: libgrpc 1.51 has no zstd encoding)")
    ap.add_argument("--exporter", choices=("otlp", "debug"), default="otlp",
                    help="otlp (to the sink, default) or debug (verbosity basic: no export traffic; the "
                         "ingest side alone, for the otlp vs debug passthrough ratio)")
    ap.add_argument("--export-connections", type=int, default=0,
                    help="the otlp exporter's connections key (default 0: its own default)")
    ap.add_argument("--cores", type=int, default=0,
                    help="pin the collector to CPUs 0..N-1 with shards = receiver threads = N, loadgen and "
                         "the sink to the other CPUs (taskset; default 0: not pinned, the collector's defaults)")
    a = ap.parse_args()
    if a.cores:
        ncpu = os.cpu_count() or 1
        if not 0 < a.cores < ncpu:
            sys.exit(f"run_scenarios: --cores {a.cores}: needs 1..{ncpu - 1} (loadgen and the sink need a CPU)")
        PIN.update(cores=a.cores, collector=f"0-{a.cores - 1}", others=f"{a.cores}-{ncpu - 1}")
    EXPORT.update(compression=a.compression, exporter=a.exporter, connections=a.export_connections)
    with tempfile.TemporaryDirectory(prefix="kansatsu-scenarios.") as tmp:
        env = Env(a.build, tmp)
        try:
            if a.smoke:
                return smoke(env)
            results, sustainable = [], a.sustainable
            d, c = a.duration, a.connections
            for name in a.scenarios.split(","):
                log(f"scenario {name}")
                if name in ("passthrough", "http"):
                    r = run_scenario(env, name, ["-c", c, "--pool", 16], d)
                    if name == "passthrough" and "skipped" not in r:
                        sustainable = r["spans_per_s"]
                elif name == "latency":
                    rate = (sustainable or 100000) / 2
                    # pooled bodies re-stamped per send: loadgen's own CPU stays small
                    args = ["-c", c, "--rate", f"{rate:.0f}", "--pool", 16, "--stamp"]
                    r = run_scenario(env, name, args, d)
                    if "skipped" not in r:
                        r["direct"] = run_direct(env, "latency-direct", args, d)
                elif name == "tail":
                    r = run_scenario(env, name, ["-c", c, "--pool", 16, "--stamp"], d, drain_timeout=60, settle=7)
                elif name == "journey-sli":
                    r = run_scenario(env, name, ["-c", c, "--async-pct", 20, "--stamp"], d,
                                     drain_timeout=60, settle=7)
                elif name in ("journey-fleet", "journey-fleet-local"):
                    r = run_fleet(env, name, ["-c", c, "--async-pct", 20, "--stamp"], d)
                elif name == "persistent-queue":
                    r = run_pq(env, ["-c", c, "--pool", 16], d)
                elif name == "agent":
                    r = run_agent(env, ["-c", c, "--pool", 16, "--stamp"], d)
                elif name == "ottl":   # the filter drops spans: the sink settles below acked
                    r = run_scenario(env, name, ["-c", c, "--pool", 16, "--stamp"], d, drain_timeout=60, settle=5)
                elif name in ("tls-grpc", "tls-http"):
                    r = run_tls(env, name, ["-c", c, "--pool", 16], d)
                elif name == "overload":
                    rate = 3 * (sustainable or 200000)
                    r = run_scenario(env, name, ["-c", 4 * c, "--pool", 16, "--rate", f"{rate:.0f}", "--retry-max", 60,
                                                 "--timeout", 30], d, memory_mib=64, drain_timeout=120)
                else:
                    sys.exit(f"run_scenarios: unknown scenario {name}")
                results.append(r)
                if "skipped" not in r:
                    log(f"  {r['spans_per_s']:.0f} spans/s, {r['spans_per_cpu_s']:.0f} spans per collector "
                        f"CPU-s, sink {r['sink_spans']} of {r['spans_accepted']}, "
                    f"{r.get('page_faults_per_kspan', 0):.1f} page faults per 1000 spans")
        finally:
            env.stop_all()
    meta = {"cpu_model": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
            "build": a.build, "date": time.strftime("%Y-%m-%d"), "duration_s": a.duration,
            "connections": a.connections, "export": dict(EXPORT), "pin": dict(PIN)}
    md = markdown(results, meta)
    print(md)
    if a.out:
        with open(a.out + ".md", "w") as f:
            f.write(f"# kansatsu scenarios on {meta['cpu_model']} ({meta['cores']} cores)\n\n"
                    f"Generated by `bench/run_scenarios.py {command_line(a.out)}`; "
                    f"see bench/README.md for how to read it.\n\n" + md)
        with open(a.out + ".json", "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    return 0


def command_line(out):
    """This run's arguments as a reader would type them again; an --out
    outside the working directory is shown by its name alone (no machine
    paths in committed tables)."""
    args = list(sys.argv[1:])
    rel = os.path.relpath(os.path.abspath(out), os.getcwd())
    shown = rel if not rel.startswith("..") else os.path.basename(out)
    for i, v in enumerate(args):
        if v == "--out" and i + 1 < len(args):
            args[i + 1] = shown
        elif v.startswith("--out="):
            args[i] = "--out=" + shown
    return shlex.join(args)


if __name__ == "__main__":
    sys.exit(main())
