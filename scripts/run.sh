#!/usr/bin/env bash
# run.sh: the README's main job. Starts a local reference Brain (test/erlang) on OTP 25 with its own
# epmd, and prints a summary of what it receives every second until Ctrl-C, which stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/otp.sh install 25
OTP="${PHAROS_OTP:-25}"
ROOT=$(scripts/otp.sh root "$OTP")
export PATH="$ROOT/bin:$PATH"
EPMD_PORT="${PHAROS_EPMD_PORT:-4369}"
BRAIN_NODE="${PHAROS_BRAIN_NODE:-brain@127.0.0.1}"
BRAIN_NAME="${PHAROS_BRAIN_NAME:-pharos_brain}"
EBIN="_build/run/otp-$OTP/ebin"
mkdir -p "$EBIN"
erlc -Werror -o "$EBIN" test/erlang/src/*.erl
cp test/erlang/src/pharos_brain.app.src "$EBIN/pharos_brain.app"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if ! epmd -port "$EPMD_PORT" -names >/dev/null 2>&1; then
  epmd -port "$EPMD_PORT" & pids+=($!)
  sleep 0.3
fi
export ERL_EPMD_PORT="$EPMD_PORT"
echo "run.sh: starting the reference Brain $BRAIN_NAME on $BRAIN_NODE (OTP $OTP, epmd port $EPMD_PORT); Ctrl-C stops it"
echo "run.sh: the Brain uses the cookie in ~/.erlang.cookie; send it records with"
echo "run.sh:   pharos-node send --brain-node $BRAIN_NODE --brain-name $BRAIN_NAME --count 1000"
erl +Bd -noshell -noinput -name "$BRAIN_NODE" -pa "$EBIN" \
  -pharos_brain name "$BRAIN_NAME" -pharos_brain report_interval_ms 1000 \
  -eval '{ok, _} = application:ensure_all_started(pharos_brain)' & pids+=($!)
wait "${pids[-1]}"
