#!/usr/bin/env bash
# The peer comparison (`make bench`): the shared peer harness (`../shared/bench-peers`, or
# BENCH_PEERS) runs the mock provider, the load generator, LiteLLM, Portkey and the bare Ray
# Serve floor beside this checkout as `cb` (/api/v1/agents/{id}/execute) and `cb-openai`
# (/v1/chat/completions), all in one run, and the table is printed. Knobs: run_all.sh's
# (TARGETS, CONCS, MODES, DUR, PIN, CHUNK_DELAY_MS, ...); OUTDIR (default /tmp/cb-bench-peers).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${BENCH_PEERS:-$ROOT/../shared/bench-peers}
OUT=${OUTDIR:-/tmp/cb-bench-peers}
if [[ ! -x $PEERS/run_all.sh ]]; then
  echo "no peer harness at $PEERS (set BENCH_PEERS); bench/bench_execute.py measures alone" >&2
  exit 1
fi
mkdir -p "$OUT"
CB_DIR=$ROOT OUTDIR=$OUT \
  TARGETS=${TARGETS:-"direct litellm portkey ray-tput-aiohttp cb cb-openai"} \
  "$PEERS/run_all.sh"
cat "$OUT/results.md"
