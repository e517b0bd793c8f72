#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kansatsu's two commands on a fresh Debian 12 machine (as root, or with sudo):
#
#   deploy/dev.sh run [kansatsu args...]   install what is missing, build, run the
#                                          collector (embedded default config unless
#                                          --config FILE is given)
#   deploy/dev.sh test                     install what is missing, build, run every
#                                          test: a normal build, then the same suite
#                                          under AddressSanitizer + UBSan; ends with
#                                          "N passed, N failed"
#
# Everything it installs is a Debian package (plus the OpenTelemetry JS SDK from
# npm for the integration tests). Build directories: build/ and build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(meson ninja-build pkg-config gcc g++ libc6-dev libabsl-dev
	libprotobuf-c-dev protobuf-c-compiler libgrpc-dev libnghttp2-dev libzstd-dev
	libck-dev zlib1g-dev libyaml-dev libjansson-dev libcurl4-openssl-dev libssl-dev
	libhttp-parser-dev libhiredis-dev libcrypt-dev libpcre2-dev libdeflate-dev libisal-dev)
TEST_PKGS=(libcmocka-dev zstd curl python3 python3-yaml dnsmasq-base prometheus redis-server openssl
	clang libclang-rt-14-dev)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing: ${missing[*]}"
		as_root apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

build() { # dir [meson options...]
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
}

node_modules() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "node and npm are needed for the integration tests" >&2
		exit 1
	fi
	if [ ! -d tests/integration/node_modules ] ||
		[ tests/integration/package-lock.json -nt tests/integration/node_modules ]; then
		echo "== npm ci (OpenTelemetry JS SDK for the integration tests)"
		(cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
	fi
}

# Runs meson test in a build dir (extra arguments go to meson test); adds
# its Ok and Fail counts to PASSED and FAILED.
run_suite() { # dir label [meson test args...]
	local dir=$1 label=$2 log
	shift 2
	echo "== tests ($label)"
	log=$(mktemp)
	set +e
	meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log" |
		grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Expected Fail|Unexpected Pass|Skipped|Timeout):'
	set -e
	local ok fail to
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	ok=${ok:-0}
	fail=$(( ${fail:-0} + ${to:-0} ))
	if [ "$ok" -eq 0 ] && [ "$fail" -eq 0 ]; then
		echo "meson ran no test in $dir:" >&2
		tail -20 "$log" >&2
		fail=1
	fi
	rm -f "$log"
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + fail))
}

cmd=${1:-}
case "$cmd" in
run)
	shift
	install_missing "${BUILD_PKGS[@]}"
	build build -Dbuildtype=release
	exec ./build/kansatsu "$@"
	;;
test)
	install_missing "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
	node_modules
	PASSED=0
	FAILED=0
	build build -Dbuildtype=release
	run_suite build "gcc, -O2"
	build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
		run_suite build-asan "AddressSanitizer + UndefinedBehaviorSanitizer"
	# The corpora once more through libFuzzer, in a clang build with the
	# whole project instrumented (ASan + UBSan): clang's UBSan reports what
	# gcc's does not (arithmetic on a NULL pointer, as in a bug fuzzing found),
	# so a fixed finding stays fixed. Only the fuzz targets are built.
	# (a build-fuzz set up before C++ joined the project links with g++: redo it)
	if [ ! -f build-fuzz/build.ninja ] || ! grep -q 'clang++' build-fuzz/build.ninja; then
		rm -rf build-fuzz
		CC=clang CXX=clang++ meson setup build-fuzz -Dfuzzing=true -Dbuildtype=debug >/dev/null
	fi
	ninja -C build-fuzz $(ls tests/fuzz/fuzz_*.c | sed 's|\.c$||') >/dev/null
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
		run_suite build-fuzz "clang, libFuzzer corpus replay, AddressSanitizer + UndefinedBehaviorSanitizer" \
		--suite fuzz --no-rebuild
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	;;
*)
	echo "usage: deploy/dev.sh run [kansatsu args...] | deploy/dev.sh test" >&2
	exit 2
	;;
esac
