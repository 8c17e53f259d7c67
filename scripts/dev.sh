#!/usr/bin/env bash
# Ferry's one run command: builds (release) and runs `ferry dev`, the managed service on
# loopback: a control plane (API on 127.0.0.1:7070, gRPC + REST) and three agents in zones zone-a,
# zone-b and zone-c that run `ferry node` processes; data in .ferry-dev/ under the directory you run it
# from. It prints the API URL and an admin token (and a service-operator one).
#
#     bash scripts/dev.sh --cluster demo   # also creates a 3-broker/3-controller cluster and
#                                          # prints its bootstrap servers once it is ACTIVE
#     bash scripts/dev.sh --single-node    # one broker on 127.0.0.1:9092, no control plane
#
# Arguments are passed to `ferry dev` (see `bash scripts/dev.sh --help`). Ctrl-C stops the
# agents with their nodes, then the control plane; running it again with the same --data-dir
# brings the same clusters back. Installs nothing beyond what cargo needs. CARGO_TARGET_DIR
# defaults to $HOME/.cache/ferry-target (outside the clone).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
exec cargo run --manifest-path "$REPO_ROOT/Cargo.toml" --release -p ferry-cli --bin ferry -- dev "$@"
