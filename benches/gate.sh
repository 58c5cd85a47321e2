#!/usr/bin/env bash
# The performance regression gate (see "Benchmarks" in the README): builds the release agent
# and the bench tools, runs every bench in quick mode, then compares the figures with
# benches/baseline.json: ratios of bench to floor measured in this run, the scale bench's
# 100-vs-1 container ratio, callgrind instruction counts, and the agent's stripped size, idle
# RSS and start time against their budgets. Exits non-zero when a figure is worse than its
# limit. Needs valgrind; root for the real-Linux exec benches (reported as not measured
# without it). Honours CARGO_TARGET_DIR; extra arguments go to criterion.
set -euo pipefail
cd "$(dirname "$0")/.."
GATE_SINCE=$(date +%s)
export GATE_SINCE
quick=(--warm-up-time 0.5 --measurement-time 2 --noplot)
.ci/release-agent
cargo build --profile bench --locked -p agent-benches --bins
cargo bench --locked -p agent-benches --benches -- "${quick[@]}" "$@"
cargo run --profile bench --locked -p agent-benches --bin gate
