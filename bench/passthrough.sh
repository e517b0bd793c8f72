#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# passthrough.sh: end-to-end throughput of the real collector on W1.
#
# For each transport (OTLP/HTTP over h2c, OTLP/gRPC) it starts a fresh
# build/kansatsu with the scenario config
#   otlp receiver (127.0.0.1:0) -> batch -> file exporter, format proto,
#   into this run's temp dir (rotated at 64 MiB, one backup: bounded disk)
# drives it with h2load for a fixed request count (each of K parallel h2load
# processes POSTs its own W1 body from bench/w1_bodies), waits until the
# file exporter has written every accepted span (the exporter's queue is part
# of the pipeline, so the clock stops only when it is empty), and prints a
# Markdown table. Accepted spans come from the collector's /metrics, not from
# h2load (h2load checks :status only, not grpc-status). Collector CPU is
# utime+stime of all its threads from /proc/PID/stat, sampled just before the
# load and after the drain; peak RSS is VmHWM at the end (one fresh process
# per transport, so it is that transport's peak).
#
# Why the file exporter: it is the cheapest honest sink. It still does the
# collector's export work (queue, framing, write(2) into the page cache) but
# needs no second process competing for the same cores, so the CPU figure is
# the collector's alone. -x debug swaps in the debug exporter (verbosity
# basic: one stderr line per batch), which leaves out the file I/O and so
# shows the receive + pipeline side alone.
#
# Usage: bench/passthrough.sh [-b BUILD_DIR] [-n REQUESTS] [-k BODIES]
#                             [-c CONNS] [-m STREAMS] [-t TIMEOUT_S] [-x EXPORTER]
#   -b  build dir holding kansatsu and bench/w1_bodies (default: build)
#   -x  file (default) or debug
#   -n  requests per transport (default 4000; 512 spans each)
#   -k  parallel h2load processes, each with its own distinct body (default 2)
#   -c  connections per h2load process (default 2)
#   -m  concurrent streams per connection (default 4)
#   -t  bound in seconds for each load and for each drain (default 120)
# Exit 0 when every request got a 2xx, every span was exported and the
# collector exited 0; 1 otherwise (the table is printed either way).
# Only 127.0.0.1; every process it starts is stopped on exit.
set -euo pipefail

BUILD=build
REQUESTS=4000
BODIES=2
CONNS=2
STREAMS=4
TMO=120
EXPORTER=file
while getopts "b:n:k:c:m:t:x:" opt; do
	case "$opt" in
	b) BUILD=$OPTARG ;;
	n) REQUESTS=$OPTARG ;;
	k) BODIES=$OPTARG ;;
	c) CONNS=$OPTARG ;;
	m) STREAMS=$OPTARG ;;
	t) TMO=$OPTARG ;;
	x) EXPORTER=$OPTARG ;;
	*) sed -n '/^# Usage/,/^# Only/p' "$0" >&2; exit 2 ;;
	esac
done

KANSATSU=$BUILD/kansatsu
W1_BODIES=$BUILD/bench/w1_bodies
for f in "$KANSATSU" "$W1_BODIES"; do
	[ -x "$f" ] || { echo "passthrough.sh: -b: $f not built (ninja -C $BUILD)" >&2; exit 2; }
done
for t in h2load curl awk; do
	command -v "$t" >/dev/null || { echo "passthrough.sh: $t missing (apt-get install -y nghttp2-client curl)" >&2; exit 2; }
done
case "$EXPORTER" in file | debug) ;; *) echo "passthrough.sh: -x: file or debug" >&2; exit 2 ;; esac
[ "$REQUESTS" -ge "$BODIES" ] || { echo "passthrough.sh: -n must be >= -k" >&2; exit 2; }
PER=$((REQUESTS / BODIES))
REQUESTS=$((PER * BODIES))
SPANS_PER_REQ=512
TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/kansatsu-passthrough.XXXXXX)
COLLECTOR_PID=
LOAD_PIDS=()

COLLECTOR_LOG=
# SIGTERM drains and exits 0; anything else (a sanitizer report, a crash) is shown
stop_collector() {
	if [ -n "$COLLECTOR_PID" ]; then
		local rc=0
		kill -TERM "$COLLECTOR_PID" 2>/dev/null || true
		wait "$COLLECTOR_PID" 2>/dev/null || rc=$?
		COLLECTOR_PID=
		if [ $rc -ne 0 ]; then
			STATUS=1
			echo "passthrough.sh: collector exited with $rc:" >&2
			tail -n 40 "$COLLECTOR_LOG" >&2
		fi
	fi
}
cleanup() {
	for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	stop_collector
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# sum of the samples whose series starts with $1 (name plus label prefix)
metric() {
	curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" |
		awk -v p="$1" 'substr($0, 1, 1) != "#" && index($0, p) == 1 { s += $NF } END { printf "%d\n", s }'
}
# utime + stime of all threads, in ticks (fields 14 and 15; comm may hold spaces)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

mkdir -p "$TMP/bodies"
"$W1_BODIES" -n "$BODIES" -o "$TMP/bodies" >"$TMP/bodies.txt"
W1_LINE=$(cat "$TMP/bodies.txt")

cat >"$TMP/config.yaml" <<EOF
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
processors:
  batch: {}
exporters:
  file:
    path: $TMP/out.bin
    format: proto
    rotation:
      max_megabytes: 64
      max_backups: 1
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [$EXPORTER]
EOF

start_collector() {
	local log=$TMP/collector-$1.log
	COLLECTOR_LOG=$log
	"$KANSATSU" --config "$TMP/config.yaml" >"$log" 2>&1 &
	COLLECTOR_PID=$!
	local deadline=$((SECONDS + 15))
	until grep -q '^kansatsu: ready' "$log"; do
		kill -0 "$COLLECTOR_PID" 2>/dev/null || { echo "passthrough.sh: collector exited:" >&2; cat "$log" >&2; exit 1; }
		[ $SECONDS -lt $deadline ] || { echo "passthrough.sh: collector not ready in 15 s" >&2; cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	HPORT=$(sed -n 's/^kansatsu: listening otlp\/http .*:\([0-9]*\)$/\1/p' "$log")
	GPORT=$(sed -n 's/^kansatsu: listening otlp\/grpc .*:\([0-9]*\)$/\1/p' "$log")
	MPORT=$(sed -n 's/^kansatsu: listening metrics .*:\([0-9]*\)$/\1/p' "$log")
	[ -n "$HPORT" ] && [ -n "$GPORT" ] && [ -n "$MPORT" ] ||
		{ echo "passthrough.sh: ports not found in $log" >&2; cat "$log" >&2; exit 1; }
}

ROWS=()
STATUS=0   # 1 when a request was refused, a span not exported or the collector failed
run_transport() {
	local transport=$1 url ext
	local -a hdrs
	start_collector "$transport"
	if [ "$transport" = http ]; then
		url=http://127.0.0.1:$HPORT/v1/traces
		ext=pb
		hdrs=(-H 'content-type: application/x-protobuf')
	else
		url=http://127.0.0.1:$GPORT/opentelemetry.proto.collector.trace.v1.TraceService/Export
		ext=grpc
		hdrs=(-H 'content-type: application/grpc' -H 'te: trailers')
	fi
	local acc_key="kansatsu_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"$transport\"}"
	local ref_key="kansatsu_receiver_refused_spans_total{receiver=\"otlp\",transport=\"$transport\""
	local sent_key="kansatsu_exporter_sent_spans_total{exporter=\"$EXPORTER\"}"
	local acc0 sent0 cpu0 t0 t1 t2
	acc0=$(metric "$acc_key")
	sent0=$(metric "$sent_key")
	cpu0=$(cpu_ticks "$COLLECTOR_PID")
	t0=$(now)
	LOAD_PIDS=()
	local i
	for ((i = 0; i < BODIES; i++)); do
		timeout "$TMO" h2load -n "$PER" -c "$CONNS" -m "$STREAMS" -t 1 \
			-d "$TMP/bodies/w1-$(printf %04d "$i").$ext" "${hdrs[@]}" "$url" \
			>"$TMP/h2load-$transport-$i.txt" 2>&1 &
		LOAD_PIDS+=($!)
	done
	local failed=0
	for p in "${LOAD_PIDS[@]}"; do wait "$p" || failed=1; done
	LOAD_PIDS=()
	t1=$(now)
	[ $failed -eq 0 ] || echo "passthrough.sh: an h2load run failed (see below)" >&2
	local ok2xx
	ok2xx=$(cat "$TMP"/h2load-"$transport"-*.txt | awk '/^status codes:/ { s += $3 } END { print s + 0 }')
	# drain: every accepted span written by the file exporter
	local acc sent deadline=$((SECONDS + TMO))
	while :; do
		acc=$(($(metric "$acc_key") - acc0))
		sent=$(($(metric "$sent_key") - sent0))
		[ "$sent" -lt "$acc" ] || break
		[ $SECONDS -lt $deadline ] || { echo "passthrough.sh: $transport: drain not done in $TMO s ($sent of $acc)" >&2; STATUS=1; break; }
		sleep 0.05
	done
	t2=$(now)
	local cpu1 rss refused
	cpu1=$(cpu_ticks "$COLLECTOR_PID")
	rss=$(peak_rss_kib "$COLLECTOR_PID")
	refused=$(metric "$ref_key")
	if [ $failed -ne 0 ] || [ "$ok2xx" -ne "$REQUESTS" ] || [ "$acc" -ne $((REQUESTS * SPANS_PER_REQ)) ]; then
		echo "passthrough.sh: $transport: $ok2xx of $REQUESTS requests got 2xx, $acc spans accepted, $refused refused" >&2
		STATUS=1
		tail -n 6 "$TMP"/h2load-"$transport"-*.txt >&2
	fi
	stop_collector
	ROWS+=("$(awk -v tr="$transport" -v n="$REQUESTS" -v acc="$acc" -v sent="$sent" -v t0="$t0" -v t1="$t1" -v t2="$t2" \
		-v c="$((cpu1 - cpu0))" -v tck="$TCK" -v rss="$rss" -v ok="$ok2xx" 'BEGIN {
		wall = t2 - t0; cpu = c / tck;
		printf "| %s | %d | %d | %d | %d | %.2f | %.2f | %.0f | %.2f | %.0f | %.1f |",
			tr, n, n - ok, acc, sent, t1 - t0, wall, acc / wall, cpu, (cpu > 0 ? acc / cpu : 0), rss / 1024 }')")
}

run_transport http
run_transport grpc

echo "W1 bodies: $W1_LINE"
echo "load: $BODIES h2load processes x $CONNS connections x $STREAMS streams, $REQUESTS requests per transport; exporter $EXPORTER; nproc $(nproc)"
echo
echo "| transport | requests | refused | spans accepted | spans exported | load s | wall s (load+drain) | spans/s | collector CPU s | spans per CPU-s (per core) | peak RSS MiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${ROWS[@]}"
exit $STATUS
