#!/usr/bin/env bash
# ingest-bench.sh: the daemon's own path measured beside the BEAM doing the same work, in one run
# (`make bench` runs it after the Go benchmarks; docs/performance.md, "Ingest beside the BEAM").
#
#   scripts/ingest-bench.sh                       every scenario (about 10 minutes)
#   SCENARIOS="cpu lat" scripts/ingest-bench.sh   some of them: idle cpu lat max
#   RECEIVERS="go beam" LADDER_1="15000 20000" SCENARIOS=max scripts/ingest-bench.sh
#   DURATION=20s WARMUP=3s scripts/ingest-bench.sh
#
# It starts a private epmd and, on it:
#   - a Brain that timestamps receipt (test/erlang/bench/pharos_latency_brain.erl, OTP $PHAROS_OTP,
#     default 25): per second, the records it got and the latency of those whose value is their
#     sending time (ingestload -stamp);
#   - three daemons built from this tree (NODE_BIN to use another build): payload mode with the
#     defaults ("go"), acked mode with a spill directory ("go-acked"), payload mode with
#     delivery.confirm_interval 0s ("go-noconfirm": no delivery confirmations);
#   - an Erlang node doing the same ingest work (test/erlang/bench/pharos_beam_ingest.erl, OTP
#     $BEAM_OTP, default 27, for its json module): HTTP JSON, OTLP/JSON and StatsD in, json:decode,
#     the metric record, term_to_binary, one message per record to the same Brain ("beam");
#
# then scripts/ingestload, open loop, one scenario at a time:
#   idle   1 record a second for 20 s: CPU share and RSS of a daemon and of the BEAM node
#   cpu    10,000 records/s: HTTP JSON in requests of 100 (go, go-noconfirm, beam), StatsD in
#          datagrams of 20 lines (go, beam), OTLP/JSON in requests of 100 points (go, beam):
#          receiver CPU per record accepted (utime + stime over the window, /proc)
#   lat    HTTP-to-Brain latency (p50, p99, p99.9 at the Brain) at 1,000 and 10,000 records/s, in
#          requests of 1 and of 100 records (go, go-acked, beam)
#   max    the highest rate of a ladder each receiver sustains (every request answered 200, at
#          least 97% of the rate reached the Brain, Brain p99 under 100 ms), requests of 1 and of
#          100 records (go, go-acked, beam; requests of 100 also go-noconfirm)
#
# One JSON line per run goes to _build/bench/ingest-<time>.jsonl, and a table to stdout.
# KEEP=DIR keeps the logs and the Brain's per-second file there.
set -euo pipefail
cd "$(dirname "$0")/.."
OTP="${PHAROS_OTP:-25}"
BEAM_OTP="${BEAM_OTP:-27}"
ROOT=$(scripts/otp.sh root "$OTP")
BEAM_ROOT=$(scripts/otp.sh root "$BEAM_OTP")
for r in "$ROOT" "$BEAM_ROOT"; do
  [ -x "$r/bin/erl" ] || { echo "ingest-bench.sh: no OTP at $r (scripts/otp.sh install $OTP $BEAM_OTP)" >&2; exit 1; }
done
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
SCENARIOS="${SCENARIOS:-idle cpu lat max}"
WORK=$(mktemp -d /tmp/pharos-ingest-bench.XXXXXX)
mkdir -p "$WORK/ebin" "$WORK/ebin27" _build/bench
OUT="_build/bench/ingest-$(date -u +%Y-%m-%dT%H%M%SZ).jsonl"

. scripts/lib/procs.sh
cleanup() {
  stop_all
  if [ -n "${KEEP:-}" ]; then cp -r "$WORK" "$KEEP"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROOT/bin/erlc" -o "$WORK/ebin" test/erlang/bench/pharos_latency_brain.erl test/erlang/src/pharos_acked.erl
"$BEAM_ROOT/bin/erlc" -o "$WORK/ebin27" test/erlang/bench/pharos_beam_ingest.erl test/erlang/bench/pharos_json_bench.erl
BIN="${NODE_BIN:-}"
if [ -z "$BIN" ]; then
  ${GO:-go} build -o "$WORK/pharos-node" ./cmd/pharos-node
  BIN="$WORK/pharos-node"
fi
${GO:-go} build -o "$WORK/ingestload" ./scripts/ingestload

export ERL_EPMD_PORT=$(free_port)
COOKIE="ingestbench$RANDOM$RANDOM"
export PHAROS_COOKIE="$COOKIE"
BRAIN="brain_bench$RANDOM@127.0.0.1"
LAT="$WORK/latency.jsonl"
setsid "$ROOT/bin/epmd" -port "$ERL_EPMD_PORT" </dev/null >/dev/null 2>&1 & pids+=($!)
sleep 0.3
setsid "$ROOT/bin/erl" +Bd -noshell -noinput -name "$BRAIN" -setcookie "$COOKIE" -pa "$WORK/ebin" \
  -eval "{ok, _} = pharos_latency_brain:start(pharos_brain, \"$LAT\")" </dev/null >"$WORK/brain.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  "$ROOT/bin/epmd" -port "$ERL_EPMD_PORT" -names 2>/dev/null | grep -q "^name ${BRAIN%@*} " && break
  sleep 0.1
done
sleep 0.5

declare -A HTTP STATSD OTLP PID
start_daemon() { # name, extra flags...
  local name=$1; shift
  HTTP[$name]=$(free_port) STATSD[$name]=$(free_udp) OTLP[$name]=$(free_port)
  setsid env -u PHAROS_OTP ${DAEMON_ENV:-} "$BIN" run --node.name "pharos_${name//-/_}$RANDOM@127.0.0.1" \
    --brain.node "$BRAIN" --brain.name pharos_brain --ingest.http.listen "127.0.0.1:${HTTP[$name]}" \
    --ingest.statsd.listen "127.0.0.1:${STATSD[$name]}" --ingest.otlp.listen "127.0.0.1:${OTLP[$name]}" \
    --ingest.source bench --log.level warn --log.format json "$@" </dev/null >"$WORK/$name.log" 2>&1 & PID[$name]=$!
  pids+=("${PID[$name]}")
}
start_daemon go
start_daemon go-acked --brain.mode acked --spill.dir "$WORK/spill-acked"
start_daemon go-noconfirm --delivery.confirm_interval 0s
for name in go go-acked go-noconfirm; do
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:${HTTP[$name]}/readyz" >/dev/null 2>&1 && break
    kill -0 "${PID[$name]}" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:${HTTP[$name]}/readyz" >/dev/null || { echo "ingest-bench.sh: $name not ready" >&2; cat "$WORK/$name.log" >&2; exit 1; }
done
HTTP[beam]=$(free_port) OTLP[beam]=$(free_port) STATSD[beam]=$(free_udp)
setsid "$BEAM_ROOT/bin/erl" -noshell -noinput -name "beam_ingest$RANDOM@127.0.0.1" -setcookie "$COOKIE" -pa "$WORK/ebin27" \
  -eval "ok = pharos_beam_ingest:start(#{brain => {pharos_brain, '$BRAIN'}, http => ${HTTP[beam]}, otlp => ${OTLP[beam]}, statsd => ${STATSD[beam]}})" \
  </dev/null >"$WORK/beam.log" 2>&1 & PID[beam]=$!
pids+=("${PID[beam]}")
for _ in $(seq 100); do
  (echo >"/dev/tcp/127.0.0.1/${HTTP[beam]}") 2>/dev/null && break
  sleep 0.1
done
echo "# ingest-bench.sh: $($BIN version 2>/dev/null | head -1), Brain OTP $OTP, BEAM ingest OTP $BEAM_OTP, $(nproc) cores, window $DURATION after $WARMUP; $OUT" >&2

# run SCENARIO RECEIVER MODE RATE BATCH [ingestload flags...]: one run, one JSON line (none for
# a receiver left out of RECEIVERS, when set).
run() {
  local sc=$1 who=$2 mode=$3 rate=$4 batch=$5; shift 5
  if [ -n "${RECEIVERS:-}" ] && [[ " $RECEIVERS " != *" $who "* ]]; then return 1; fi
  local target metrics=""
  case "$mode" in
    http) target=(-url "http://127.0.0.1:${HTTP[$who]}/v1/metrics") ;;
    otlp) target=(-url "http://127.0.0.1:${OTLP[$who]}/v1/metrics") ;;
    statsd) target=(-addr "127.0.0.1:${STATSD[$who]}") ;;
  esac
  [ "$who" != beam ] && metrics="http://127.0.0.1:${HTTP[$who]}/metrics"
  local line
  line=$("$WORK/ingestload" -pid "${PID[$who]}" ${metrics:+-metrics "$metrics"} -mode "$mode" "${target[@]}" \
    -rate "$rate" -batch "$batch" -duration "$DURATION" -warmup "$WARMUP" -stamp -latency-file "$LAT" "$@")
  echo "{\"scenario\":\"$sc\",\"receiver\":\"$who\",$(echo "$line" | cut -c2-)" | tee -a "$OUT"
}

# sustains LINE RATE: the run kept up (see the header).
sustains() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1]); rate = float(sys.argv[2])
ok = d.get("statuses", {}) == {"200": d["requests"]} or (d["mode"] == "statsd")
ok = ok and d.get("brain_records", 0) >= 0.97 * rate * d["seconds"] and d.get("brain_latency_p99_ms", 1e9) < 100
sys.exit(0 if ok else 1)' "$1" "$2"
}

for sc in $SCENARIOS; do
  case "$sc" in
    idle)
      DURATION=20s WARMUP=3s run idle go http 1 1
      DURATION=20s WARMUP=3s run idle beam http 1 1 ;;
    cpu)
      for who in go go-noconfirm beam; do run cpu-http-100 "$who" http 10000 100; done
      for who in go beam; do run cpu-statsd-20 "$who" statsd 10000 20; done
      for who in go beam; do run cpu-otlp-100 "$who" otlp 10000 100; done ;;
    lat)
      for rate in 1000 10000; do
        for batch in 1 100; do
          for who in go go-acked beam; do run "lat-$rate-$batch" "$who" http "$rate" "$batch" -workers 128; done
        done
      done ;;
    max)
      for batch in 1 100; do
        if [ "$batch" = 1 ]; then ladder="${LADDER_1:-5000 10000 15000 20000 25000 30000}"; whos="go go-acked beam"
        else ladder="${LADDER_100:-50000 100000 150000 200000 300000}"; whos="go go-noconfirm go-acked beam"; fi
        for who in $whos; do
          for rate in $ladder; do
            line=$(run "max-$batch" "$who" http "$rate" "$batch" -workers 256) || break
            sustains "$line" "$rate" || break
          done
        done
      done ;;
    *) echo "ingest-bench.sh: unknown scenario $sc" >&2; exit 2 ;;
  esac
done >/dev/null

python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def fmt(x, d=2):
    return "-" if x is None else f"{x:.{d}f}"
print("| scenario | receiver | rate | achieved rec/s | µs CPU/rec | CPU share | RSS MiB | HTTP p99 ms | Brain p50 / p99 / p99.9 ms |")
print("|---|---|---|---|---|---|---|---|---|")
for d in rows:
    brain = "-" if not d.get("brain_latency_n") else f'{d["brain_latency_p50_ms"]:.2f} / {d["brain_latency_p99_ms"]:.2f} / {d["brain_latency_p999_ms"]:.2f}'
    print(f'| {d["scenario"]} | {d["receiver"]} | {d["rate"]} | {d["achieved_records_per_s"]:.0f} | {fmt(d["us_per_record"])} '
          f'| {100*d["cpu_share"]:.2f}% | {d["rss_mib"]:.1f} | {fmt(d.get("latency_p99_ms"))} | {brain} |')
PY
echo "raw: $OUT" >&2
