#!/usr/bin/env bash
# run.sh: the README's main job. Starts a local reference Brain (test/erlang) on OTP 25 with its own
# epmd (BRAINS=N: a cluster of N Brain nodes, brain1@127.0.0.1 ..., sharing the mnesia store and
# the pg group pharos_brains, which pharos-node discovers through them with routing shard and the
# acknowledged mode; docs/clusters.md), and `pharos-node run --config examples/pharos.yaml` beside it (host metrics every second,
# StatsD on 127.0.0.1:8125, HTTP on 127.0.0.1:9180), and prints the Brain's summary of what it
# receives every second until Ctrl-C, which stops everything: pharos-node first (it delivers what
# it holds, or spills it), then the Brain and epmd.
#
# The children run in sessions of their own, so the terminal's Ctrl-C never reaches them; this
# script signals each of them exactly once (a second signal would cut pharos-node's drain). On a
# terminal the wait runs as a foreground job of its own (job control), so that Ctrl-C reaches
# only it and not make, which would report the interrupt as an error: Ctrl-C stops everything
# and `make run` exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/otp.sh install 25
OTP="${PHAROS_OTP:-25}"
ROOT=$(scripts/otp.sh root "$OTP")
export PATH="$ROOT/bin:$PATH"
EPMD_PORT="${PHAROS_EPMD_PORT:-4369}"
BRAIN_NODE="${PHAROS_BRAIN_NODE:-brain@127.0.0.1}"
BRAIN_NAME="${PHAROS_BRAIN_NAME:-pharos_brain}"
BRAINS="${BRAINS:-1}"
case "$BRAINS" in ''|*[!0-9]*|0) echo "run.sh: BRAINS must be a positive number, got '$BRAINS'" >&2; exit 2;; esac
CONFIG="${PHAROS_RUN_CONFIG:-examples/pharos.yaml}"
RUN_DIR=_build/run
EBIN="$RUN_DIR/otp-$OTP/ebin"
NODE_LOG="$RUN_DIR/pharos-node.log"
mkdir -p "$EBIN"
erlc -Werror -pa "$EBIN" -o "$EBIN" test/erlang/src/*.erl
cp test/erlang/src/pharos_brain.app.src "$EBIN/pharos_brain.app"
echo "run.sh: building pharos-node"
go build -o "$RUN_DIR/pharos-node" ./cmd/pharos-node

epmd_pid="" brain_pid="" node_pid="" brain_pids=()
stopping=0
# stop_group PID SIGNAL SECONDS: signal the process group led by PID, wait up to SECONDS for it to
# end, then kill it.
stop_group() {
  local pid=$1 sig=$2 secs=$3
  [ -n "$pid" ] || return 0
  kill "-$sig" -- "-$pid" 2>/dev/null || return 0
  for _ in $(seq $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  echo
  if [ -n "$node_pid" ]; then
    echo "run.sh: stopping pharos-node (it delivers or spills what it holds; log in $NODE_LOG)"
    stop_group "$node_pid" TERM 15
    tail -n 1 "$NODE_LOG" 2>/dev/null | sed 's/^/run.sh: pharos-node: /' || true
  fi
  echo "run.sh: stopping the Brain and epmd"
  for pid in "${brain_pids[@]}"; do stop_group "$pid" TERM 5; done
  stop_group "$epmd_pid" TERM 2
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if ! epmd -port "$EPMD_PORT" -names >/dev/null 2>&1; then
  setsid epmd -port "$EPMD_PORT" </dev/null & epmd_pid=$!
  sleep 0.3
fi
export ERL_EPMD_PORT="$EPMD_PORT"
# start_brain NODE [ERL ARGS...]: a reference Brain node in a session of its own; waits until it
# is registered in epmd.
start_brain() {
  local node=$1; shift
  setsid erl +Bd -noshell -noinput -name "$node" -pa "$EBIN" -kernel logger_level warning \
    -pharos_brain name "$BRAIN_NAME" -pharos_brain report_interval_ms 1000 -pharos_brain announce false \
    "$@" -eval '{ok, _} = application:ensure_all_started(pharos_brain)' </dev/null & brain_pid=$!
  brain_pids+=("$brain_pid")
  # The Brain writes ~/.erlang.cookie if there is none; pharos-node reads it once the Brain is up.
  for _ in $(seq 100); do
    epmd -port "$EPMD_PORT" -names 2>/dev/null | grep -q "^name ${node%@*} " && return 0
    kill -0 "$brain_pid" 2>/dev/null || { echo "run.sh: the Brain $node did not start" >&2; exit 1; }
    sleep 0.1
  done
}
NODE_ARGS=()
if [ "$BRAINS" = 1 ]; then
  echo "run.sh: starting the reference Brain $BRAIN_NAME on $BRAIN_NODE (OTP $OTP, epmd port $EPMD_PORT)"
  start_brain "$BRAIN_NODE"
else
  # A cluster: the first node creates the mnesia schema, the others join it; each keeps its
  # mnesia files under _build/run/brainK (a restarted node rejoins with them).
  nodes=() seeds=""
  for k in $(seq "$BRAINS"); do nodes+=("brain$k@127.0.0.1"); done
  peers=$(printf "'%s'," "${nodes[@]}"); peers="[${peers%,}]"
  echo "run.sh: starting $BRAINS reference Brain nodes ${nodes[*]} (OTP $OTP, epmd port $EPMD_PORT, mnesia store, pg group pharos_brains)"
  for k in $(seq "$BRAINS"); do
    rm -rf "$RUN_DIR/brain$k" && mkdir -p "$RUN_DIR/brain$k" # a fresh cluster each time
    start_brain "${nodes[$((k - 1))]}" -pharos_brain store mnesia -pharos_brain pg true \
      -pharos_brain peers "$peers" -pharos_brain state_dir "\"$RUN_DIR/brain$k\"" \
      -kernel prevent_overlapping_partitions false # a demo stopped node by node: no global warnings
    seeds+="${nodes[$((k - 1))]},"
    [ "$k" = 1 ] && sleep 1 # the schema's creator first
  done
  NODE_ARGS=(--brain.node "" --brain.discovery pg --brain.seeds "${seeds%,}" --brain.routing shard
    --brain.mode acked --spill.dir "$RUN_DIR/spill-cluster")
  echo "run.sh: kill one with: kill -9 \$(pgrep -f 'name brain2@127.0.0.1'); /readyz lists them"
fi

echo "run.sh: starting pharos-node run --config $CONFIG (log in $NODE_LOG)"
echo "run.sh: send it records:  echo 'demo.hits:1|c' > /dev/udp/127.0.0.1/8125"
echo "run.sh:   curl -H 'Content-Type: application/json' -d '{\"name\":\"demo\",\"kind\":\"gauge\",\"value\":1}' http://127.0.0.1:9180/v1/metrics"
echo "run.sh: its state: curl http://127.0.0.1:9180/readyz; metrics: curl http://127.0.0.1:9180/metrics"
echo "run.sh: Ctrl-C stops everything"
setsid "$RUN_DIR/pharos-node" run --config "$CONFIG" "${NODE_ARGS[@]}" </dev/null >>"$NODE_LOG" 2>&1 & node_pid=$!

# Until Ctrl-C (the subshell exits 0), or until one of them stops on its own (1).
[ -t 0 ] && set -m
status=0
(
  trap 'exit 0' INT TERM
  # With a cluster, one Brain node may be killed (and started again) to watch pharos-node move on.
  brains_alive() { for p in "${brain_pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
  while brains_alive && kill -0 "$node_pid" 2>/dev/null; do
    sleep 0.5
  done
  exit 1
) || status=$?
set +m
if [ "$status" != 0 ]; then
  echo "run.sh: a process stopped on its own; see $NODE_LOG" >&2
  exit 1
fi
exit 0
