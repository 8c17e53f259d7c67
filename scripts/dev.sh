#!/usr/bin/env bash
# Ferry's one run command: builds (release) and runs `ferry dev`, a local single-node Ferry
# on 127.0.0.1 (Kafka on port 9092, node admin on 9192, data in .ferry-dev/ under the
# directory you run it from).
#
#     bash scripts/dev.sh                  # then e.g.: kcat -b 127.0.0.1:9092 -L
#     bash scripts/dev.sh --port 19092 --admin-port 19192 --data-dir /tmp/ferry-dev
#
# Arguments are passed to `ferry dev` (see `bash scripts/dev.sh --help`). Ctrl-C stops it and
# flushes the data; running it again with the same --data-dir serves the same topics.
# Installs nothing beyond what cargo needs. CARGO_TARGET_DIR defaults to
# $HOME/.cache/ferry-target (outside the clone).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
exec cargo run --manifest-path "$REPO_ROOT/Cargo.toml" --release -p ferry-cli --bin ferry -- dev "$@"
