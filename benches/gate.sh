#!/usr/bin/env bash
# The performance regression gate: quick criterion runs, the release binary, and a comparison
# with benches/baseline.json (ratios to floors measured in the same run; size, RSS and start
# budgets). Exits non-zero when a figure is worse than its tolerance.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=(--warm-up-time 0.5 --measurement-time 2 --noplot)
cargo build --release --locked -p kata-agent
cargo bench --locked -p agent-benches --bench rpc --bench uevent -- "${quick[@]}"
cargo run --release --locked -p agent-benches --bin gate
