#!/usr/bin/env bash
# ingest-cpu.sh: the daemon's CPU per ingested record, measured on a real `pharos-node run` beside a
# real reference Brain (docs/performance.md, "Ingest").
#
#   scripts/ingest-cpu.sh                      build pharos-node from this tree, run every scenario
#   NODE_BIN=/tmp/old/pharos-node scripts/ingest-cpu.sh    measure another build
#   PERF=1 scripts/ingest-cpu.sh               also `perf record` the daemon for 10 s of one scenario
#                                              (PERF_SCENARIO, default http-100) and print the top of
#                                              `perf report` (needs perf); PERF_OUT=FILE keeps perf.data
#   SCENARIOS="http-100 statsd" DURATION=20s scripts/ingest-cpu.sh
#
# It starts a private epmd on a free port, the reference Brain (test/erlang, OTP $PHAROS_OTP, default
# 25) and `pharos-node run` (payload mode, HTTP and StatsD on loopback, no host metrics), then runs
# scripts/ingestload, an open-loop generator, for each scenario:
#
#   http-100   10,000 records/s over HTTP JSON in requests of 100 records
#   http-1     RATE_HTTP1 (default 5,000) records/s in requests of 1 record
#   statsd     10,000 lines/s over StatsD, 20 lines per datagram
#   statsd-100 10,000 lines/s over StatsD, 100 lines per datagram (a fifth of the datagrams)
#   http-1000  10,000 records/s in requests of 1,000 (per-request costs amortized tenfold)
#   http-100-50k  50,000 records/s in requests of 100 (the fixed and per-wakeup costs amortized)
#   idle       one record a second: the daemon's fixed CPU (cpu_share), not a per-record figure
#
# and prints one JSON line per scenario: us_per_record is the daemon's CPU (utime + stime from
# /proc/<pid>/stat over the window) per record it accepted. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
OTP="${PHAROS_OTP:-25}"
ROOT=$(scripts/otp.sh root "$OTP")
[ -x "$ROOT/bin/erl" ] || { echo "ingest-cpu.sh: no OTP $OTP at $ROOT (scripts/otp.sh install $OTP)" >&2; exit 1; }
export PATH="$ROOT/bin:$PATH"
DURATION="${DURATION:-20s}"
WARMUP="${WARMUP:-3s}"
SCENARIOS="${SCENARIOS:-http-100 http-1 statsd}"
RATE_HTTP1="${RATE_HTTP1:-5000}"
WORK=$(mktemp -d /tmp/pharos-ingest-cpu.XXXXXX)
EBIN="$WORK/ebin"
mkdir -p "$EBIN"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

epmd_pid="" brain_pid="" node_pid=""
cleanup() {
  for pid in $node_pid $brain_pid $epmd_pid; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in $node_pid $brain_pid $epmd_pid; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

erlc -pa "$EBIN" -o "$EBIN" test/erlang/src/*.erl
cp test/erlang/src/pharos_brain.app.src "$EBIN/pharos_brain.app"
BIN="${NODE_BIN:-}"
if [ -z "$BIN" ]; then
  go build -o "$WORK/pharos-node" ./cmd/pharos-node
  BIN="$WORK/pharos-node"
fi
go build -o "$WORK/ingestload" ./scripts/ingestload

EPMD_PORT=$(free_port)
HTTP_PORT=$(free_port)
STATSD_PORT=$(free_port)
export ERL_EPMD_PORT="$EPMD_PORT"
COOKIE="ingestcpu$RANDOM$RANDOM"
export PHAROS_COOKIE="$COOKIE"
BRAIN_NODE="brain_cpu$RANDOM@127.0.0.1"
setsid epmd -port "$EPMD_PORT" </dev/null >/dev/null 2>&1 & epmd_pid=$!
sleep 0.3
setsid erl +Bd -noshell -noinput -name "$BRAIN_NODE" -setcookie "$COOKIE" -pa "$EBIN" \
  -pharos_brain name pharos_brain -pharos_brain report_interval_ms 60000 \
  -eval '{ok, _} = application:ensure_all_started(pharos_brain)' </dev/null >"$WORK/brain.log" 2>&1 & brain_pid=$!
for _ in $(seq 100); do
  epmd -port "$EPMD_PORT" -names 2>/dev/null | grep -q "^name ${BRAIN_NODE%@*} " && break
  sleep 0.1
done

setsid env -u PHAROS_OTP ${DAEMON_ENV:-} "$BIN" run --node.name "pharos_cpu$RANDOM@127.0.0.1" --brain.node "$BRAIN_NODE" --brain.name pharos_brain \
  --ingest.http.listen "127.0.0.1:$HTTP_PORT" --ingest.statsd.listen "127.0.0.1:$STATSD_PORT" \
  --ingest.source bench --log.level warn --log.format json </dev/null >"$WORK/node.log" 2>&1 & node_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$node_pid" 2>/dev/null || { cat "$WORK/node.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null || { echo "ingest-cpu.sh: the daemon is not ready" >&2; cat "$WORK/node.log" >&2; exit 1; }
echo "# ingest-cpu.sh: $($BIN version 2>/dev/null | head -1), OTP $OTP, $(nproc) cores, window $DURATION after $WARMUP" >&2

# perf_report FILE: the hottest functions by self samples, then the share of samples by Go package
# (runtime, kernel and the rest grouped), on stderr.
perf_report() {
  perf report -i "$1" --no-children --sort symbol --stdio -g none 2>/dev/null | grep '%' | grep -v '^#' >"$WORK/perf.txt" || true
  echo "--- perf: top functions (self) ---" >&2
  head -20 "$WORK/perf.txt" | sed 's/  */ /g' >&2
  echo "--- perf: by package (self) ---" >&2
  awk '{p=$1; sub("%","",p); s=$0; sub(/.*\] /,"",s); k=s;
        if ($2 == "[k]") k="[kernel]"; else if (s ~ /^runtime\./) k="runtime";
        else { n=split(s,a,"/"); last=a[n]; sub(/\..*/,"",last); a[n]=last; k=a[1]; for (i=2;i<=n;i++) k=k"/"a[i] }
        t[k]+=p} END {for (k in t) printf "%6.1f%% %s\n", t[k], k}' "$WORK/perf.txt" | sort -rn | head -15 >&2
}

load() { "$WORK/ingestload" -pid "$node_pid" -metrics "http://127.0.0.1:$HTTP_PORT/metrics" \
  -duration "$DURATION" -warmup "$WARMUP" "$@"; }

for sc in $SCENARIOS; do
  perf_pid=""
  if [ "${PERF:-0}" = 1 ] && [ "$sc" = "${PERF_SCENARIO:-http-100}" ]; then
    (sleep "${WARMUP%s}"; perf record -F 999 -g -p "$node_pid" -o "$WORK/perf.data" -- sleep 10 >/dev/null 2>&1) &
    perf_pid=$!
  fi
  case "$sc" in
    http-100) printf '%s ' "$sc"; load -mode http -url "http://127.0.0.1:$HTTP_PORT/v1/metrics" -rate 10000 -batch 100 ;;
    http-100-50k) printf '%s ' "$sc"; load -mode http -url "http://127.0.0.1:$HTTP_PORT/v1/metrics" -rate 50000 -batch 100 ;;
    http-1000) printf '%s ' "$sc"; load -mode http -url "http://127.0.0.1:$HTTP_PORT/v1/metrics" -rate 10000 -batch 1000 ;;
    idle) printf '%s ' "$sc"; load -mode http -url "http://127.0.0.1:$HTTP_PORT/v1/metrics" -rate 1 -batch 1 ;;
    http-1) printf '%s ' "$sc"; load -mode http -url "http://127.0.0.1:$HTTP_PORT/v1/metrics" -rate "$RATE_HTTP1" -batch 1 -workers 128 ;;
    statsd) printf '%s ' "$sc"; load -mode statsd -addr "127.0.0.1:$STATSD_PORT" -rate 10000 -batch 20 ;;
    statsd-100) printf '%s ' "$sc"; load -mode statsd -addr "127.0.0.1:$STATSD_PORT" -rate 10000 -batch 100 ;;
    *) echo "ingest-cpu.sh: unknown scenario $sc" >&2; exit 2 ;;
  esac
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    perf_report "$WORK/perf.data"
    [ -n "${PERF_OUT:-}" ] && cp "$WORK/perf.data" "$PERF_OUT"
  fi
done
