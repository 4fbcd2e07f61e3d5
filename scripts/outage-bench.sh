#!/usr/bin/env bash
# outage-bench.sh: a 90 s outage of the Brain under a steady load, measured on a real daemon
# (`make bench-outage`; about 3 minutes per variant, so not part of every `make bench`;
# docs/performance.md, "A drain that finishes").
#
#   scripts/outage-bench.sh                  both variants: ram (no spill directory), spill
#   VARIANTS=spill OUTAGE=90s scripts/outage-bench.sh
#   RATE=10000 BATCH=100 BEFORE=30s AFTER=60s scripts/outage-bench.sh
#
# For each variant it starts a private epmd, a Brain that timestamps receipt
# (test/erlang/bench/pharos_latency_brain.erl, OTP $PHAROS_OTP, default 25) and `pharos-node run`
# with the defaults (payload mode; "spill": with a spill directory), then scripts/ingestload sends
# RATE records/s over HTTP in requests of BATCH for BEFORE + OUTAGE + AFTER, each record's value
# its sending time. After BEFORE the Brain's node is killed (SIGKILL: gone from EPMD at once); after
# OUTAGE it is started again under the same name. Per second it records the daemon's RSS, CPU,
# state and backlog (pharos_fsm_backlog_records, _drain_seconds_estimate, ...; ingestload
# -timeline) and, at the Brain, the records and their latency from sending. It prints, per variant:
#
#   reconnect_s    from the Brain's return (its process registered) to the daemon Streaming or
#                  Throttled again (the daemon's log)
#   drained_s      from that reconnect to the first second from which the backlog stays under
#                  1,000 records (a tenth of a second of load)
#   p99_next10_ms  the Brain's latency p99 over the 10 s after that (and p99_rest_ms: to the end)
#   peak backlog, peak RSS, records dropped, records delivered at the Brain after the return, and a
#   timeline every 5 s.
#
# Raw data in _build/bench/outage-<time>-<variant>.{timeline,brain,log}.
set -euo pipefail
cd "$(dirname "$0")/.."
OTP="${PHAROS_OTP:-25}"
ROOT=$(scripts/otp.sh root "$OTP")
[ -x "$ROOT/bin/erl" ] || { echo "outage-bench.sh: no OTP $OTP at $ROOT (scripts/otp.sh install $OTP)" >&2; exit 1; }
VARIANTS="${VARIANTS:-ram spill}"
RATE="${RATE:-10000}" BATCH="${BATCH:-100}"
BEFORE="${BEFORE:-30s}" OUTAGE="${OUTAGE:-90s}" AFTER="${AFTER:-60s}"
secs() { echo "${1%s}"; }
WORK=$(mktemp -d /tmp/pharos-outage.XXXXXX)
mkdir -p "$WORK/ebin" _build/bench
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)

. scripts/lib/procs.sh
trap 'stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

"$ROOT/bin/erlc" -o "$WORK/ebin" test/erlang/bench/pharos_latency_brain.erl test/erlang/src/pharos_acked.erl
BIN="${NODE_BIN:-}"
if [ -z "$BIN" ]; then
  ${GO:-go} build -o "$WORK/pharos-node" ./cmd/pharos-node
  BIN="$WORK/pharos-node"
fi
${GO:-go} build -o "$WORK/ingestload" ./scripts/ingestload

start_brain() { # the Brain's node, registered as pharos_brain, appending to $LAT
  setsid "$ROOT/bin/erl" +Bd -noshell -noinput -name "$BRAIN" -setcookie "$COOKIE" -pa "$WORK/ebin" \
    -eval "{ok, _} = pharos_latency_brain:start(pharos_brain, \"$LAT\")" </dev/null >>"$WORK/brain.log" 2>&1 &
  brain_pid=$!
  pids+=("$brain_pid")
  for _ in $(seq 200); do
    "$ROOT/bin/epmd" -port "$ERL_EPMD_PORT" -names 2>/dev/null | grep -q "^name ${BRAIN%@*} " && break
    sleep 0.05
  done
}

for variant in $VARIANTS; do
  export ERL_EPMD_PORT=$(free_port)
  COOKIE="outage$RANDOM$RANDOM"
  export PHAROS_COOKIE="$COOKIE"
  BRAIN="brain_outage$RANDOM@127.0.0.1"
  LAT="$WORK/$variant.brain"
  TL="$WORK/$variant.timeline"
  HTTP_PORT=$(free_port)
  setsid "$ROOT/bin/epmd" -port "$ERL_EPMD_PORT" </dev/null >/dev/null 2>&1 & pids+=($!)
  sleep 0.3
  start_brain
  extra=()
  [ "$variant" = spill ] && extra=(--spill.dir "$WORK/spill")
  setsid env -u PHAROS_OTP ${DAEMON_ENV:-} "$BIN" run --node.name "pharos_outage$RANDOM@127.0.0.1" --brain.node "$BRAIN" \
    --brain.name pharos_brain --ingest.http.listen "127.0.0.1:$HTTP_PORT" --ingest.source outage \
    --log.level info --log.format json "${extra[@]}" </dev/null >"$WORK/$variant.log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "# outage-bench.sh $variant: $($BIN version 2>/dev/null | head -1), OTP $OTP, $(nproc) cores, $RATE records/s in requests of $BATCH, outage $OUTAGE after $BEFORE, then $AFTER" >&2
  total=$(( $(secs "$BEFORE") + $(secs "$OUTAGE") + $(secs "$AFTER") ))
  "$WORK/ingestload" -pid "$node_pid" -metrics "http://127.0.0.1:$HTTP_PORT/metrics" -mode http \
    -url "http://127.0.0.1:$HTTP_PORT/v1/metrics" -rate "$RATE" -batch "$BATCH" -warmup 0s -duration "${total}s" \
    -workers 256 -stamp -timeline "$TL" >"$WORK/$variant.result" &
  load_pid=$!
  sleep "$(secs "$BEFORE")"
  down_at=$(date +%s.%N)
  kill -KILL -- "-$brain_pid"
  wait "$brain_pid" 2>/dev/null || true
  sleep "$(secs "$OUTAGE")"
  start_brain
  back_at=$(date +%s.%N)
  wait "$load_pid"
  sleep 2.5 # the Brain's last second
  for f in timeline brain log result; do cp "$WORK/$variant.$f" "_build/bench/outage-$STAMP-$variant.$f"; done
  python3 - "$variant" "$WORK/$variant.timeline" "$LAT" "$WORK/$variant.log" "$down_at" "$back_at" "$WORK/$variant.result" <<'PY'
import json, sys, datetime
variant, tl_path, lat_path, log_path, down_at, back_at, result_path = sys.argv[1:]
down_at, back_at = float(down_at), float(back_at)
tl = [json.loads(l) for l in open(tl_path)]
brain = {}
for l in open(lat_path):
    d = json.loads(l)
    brain[d["sec"]] = d
def pct(d, p):
    n = d["n"]
    if n == 0:
        return None
    want, seen = int(p * (n - 1)) + 1, 0
    for b, c in d["hist"]:
        seen += c
        if seen >= want:
            return b / 1000
    return d["hist"][-1][0] / 1000
reconnect = None
for l in open(log_path):
    try:
        e = json.loads(l)
    except ValueError:
        continue
    if e.get("message") == "connection state changed" and e.get("to") in ("streaming", "throttled"):
        t = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
        if t > back_at:
            reconnect = t
            break
drained = None
if reconnect is not None:
    for i, row in enumerate(tl):
        if row["t"] < int(reconnect):
            continue
        if all(later.get("backlog_records", 0) < 1000 for later in tl[i:]):
            drained = row["t"]
            break
def merged(secs):
    hist, n = {}, 0
    for s in secs:
        d = brain.get(s)
        if not d:
            continue
        n += d["n"]
        for b, c in d["hist"]:
            hist[b] = hist.get(b, 0) + c
    return {"n": n, "hist": sorted(hist.items())}
last = max(brain) if brain else 0
p99_next = pct(merged(range(drained, drained + 10)), 0.99) if drained else None
p99_rest = pct(merged(range(drained, last + 1)), 0.99) if drained else None
peak_backlog = max((r.get("backlog_records", 0) for r in tl), default=0)
peak_rss = max((r.get("rss_mib", 0) for r in tl), default=0)
dropped = max((r.get("dropped_total", 0) for r in tl), default=0)
after = sum(d["records"] for s, d in brain.items() if s >= int(back_at))
out = {"variant": variant, "reconnect_s": None if reconnect is None else round(reconnect - back_at, 2),
       "drained_s": None if drained is None else round(drained - reconnect, 1),
       "p99_next10_ms": p99_next, "p99_rest_ms": p99_rest,
       "peak_backlog": int(peak_backlog), "peak_rss_mib": round(peak_rss, 1), "dropped": int(dropped),
       "brain_records_after_return": after, "load": json.loads(open(result_path).read())["achieved_records_per_s"]}
print(json.dumps(out))
print("|  t (s) | state | backlog | drain est. (s) | RSS MiB | CPU % | accepted/s | at the Brain/s | Brain p50 / p99 ms |")
print("|---|---|---|---|---|---|---|---|---|")
t0 = tl[0]["t"] if tl else 0
for r in tl:
    rel = r["t"] - t0
    if rel % 5 and not (reconnect and abs(r["t"] - reconnect) < 3):
        continue
    b = brain.get(r["t"], {"n": 0, "records": 0})
    lat = "-" if not b["n"] else f"{pct(b, .5):.2f} / {pct(b, .99):.2f}"
    est = r.get("drain_seconds_estimate", "-")
    print(f"| {rel} | {r.get('state', '-')} | {int(r.get('backlog_records', 0))} | {est if isinstance(est, str) else round(est, 1)} "
          f"| {r.get('rss_mib', 0):.1f} | {100 * r.get('cpu_s', 0):.0f} | {r['accepted']} | {b['records']} | {lat} |")
PY
  stop_all
done
