#!/usr/bin/env bash
# bench.sh: run every Go benchmark, package by package, and print a summary table (`make bench`).
#
#   scripts/bench.sh                 full run: -benchtime 1s; cmd/pharos-node: 3 rounds of 500,000 metrics
#   BENCH_QUICK=1 scripts/bench.sh   smoke run: -benchtime 100ms; cmd/pharos-node: 1 round of 50,000
#
# Benchmarks that compare with the BEAM run it in the same run, on the OTP release BENCH_OTP (else
# PHAROS_OTP, else 25; provisioned by scripts/otp.sh). A missing release fails them: nothing is
# skipped. The raw `go test -bench` output goes to _build/bench/bench-<UTC time>.txt (benchstat
# reads it), the summary table (scripts/benchsum) to the same name with .summary.txt, and both to
# the terminal. Exit status: non-zero if any package's benchmarks failed.
#
# After the Go benchmarks it runs scripts/ingest-bench.sh (the daemon's ingest path, latency and
# CPU beside an Erlang node doing the same work; INGEST_BENCH=0 leaves it out). The 90 s outage
# is `make bench-outage` (scripts/outage-bench.sh), not part of this run.
#
# Environment: GO (default go), BENCHTIME (default 1s), BENCHTIME_CMD (cmd/pharos-node, default 3x),
# BENCH_PKGS (default: every package with a Benchmark function, e.g. "./etf ./spill"),
# PHAROS_BENCH_COUNT (metrics per sender per round in cmd/pharos-node).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
export PHAROS_OTP=${BENCH_OTP:-${PHAROS_OTP:-25}}
# cmd/pharos-node's benchmarks run whole rounds against a Brain (seconds each): a number of rounds.
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  BENCHTIME=${BENCHTIME:-100ms}
  BENCHTIME_CMD=${BENCHTIME_CMD:-1x}
  export PHAROS_BENCH_COUNT=${PHAROS_BENCH_COUNT:-50000}
else
  BENCHTIME=${BENCHTIME:-1s}
  BENCHTIME_CMD=${BENCHTIME_CMD:-3x}
  export PHAROS_BENCH_COUNT=${PHAROS_BENCH_COUNT:-500000}
fi

if [ -z "${BENCH_PKGS:-}" ]; then
  # Every directory with a Benchmark function in a test file, as ./dir.
  BENCH_PKGS=$(grep -l --include='*_test.go' -r '^func Benchmark' . | grep -v '^\./_build/' |
    xargs -n1 dirname | sort -u | tr '\n' ' ')
fi

mkdir -p _build/bench
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
raw=_build/bench/bench-$stamp.txt
summary=_build/bench/bench-$stamp.summary.txt

{
  echo "# pharos-node benchmarks, $stamp, OTP $PHAROS_OTP, -benchtime $BENCHTIME, $(nproc) cores, $($GO version)"
  echo "# git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (modified)')"
} | tee "$raw"

failed=()
for pkg in $BENCH_PKGS; do
  bt=$BENCHTIME
  [ "$pkg" = ./cmd/pharos-node ] && bt=$BENCHTIME_CMD
  echo "=== $pkg (-benchtime $bt)" >&2
  if ! $GO test -run '^$' -bench . -benchmem -benchtime "$bt" -count 1 -timeout 10m "$pkg" 2>&1 | tee -a "$raw"; then
    failed+=("$pkg")
  fi
done

# The daemon's own path beside the BEAM doing the same work: real processes, open-loop load
# (scripts/ingest-bench.sh; INGEST_BENCH=0 leaves it out).
ingest_table=""
if [ "${INGEST_BENCH:-1}" != 0 ]; then
  echo "=== scripts/ingest-bench.sh" >&2
  if [ "${BENCH_QUICK:-0}" = 1 ]; then
    export DURATION=${DURATION:-4s} WARMUP=${WARMUP:-1s}
  fi
  if ingest_table=$(PHAROS_OTP=$PHAROS_OTP GO=$GO scripts/ingest-bench.sh); then :; else failed+=("scripts/ingest-bench.sh"); fi
fi

echo
{ $GO run ./scripts/benchsum "$raw" || echo "bench.sh: no summary" >&2
  if [ -n "$ingest_table" ]; then echo; echo "## The daemon's ingest path beside the BEAM (scripts/ingest-bench.sh)"; echo; echo "$ingest_table"; fi
} | tee "$summary"
echo
echo "raw output: $raw; summary: $summary (OTP $PHAROS_OTP)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench.sh: benchmarks FAILED in: ${failed[*]}" >&2
  exit 1
fi
