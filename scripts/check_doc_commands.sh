#!/usr/bin/env bash
# Checks that every command shown in README.md and docs/*.md (```sh, ```bash and ```console
# blocks) matches the repository and the `ferry` binary: each `ferry ...` command's subcommand
# path and flags exist (read from `ferry <subcommand...> --help`; nothing is started), and so do
# the repository paths, cargo packages and fuzz targets the other commands name.
#
#     bash scripts/check_doc_commands.sh
#
# A block the checks cannot judge is skipped when the line before its opening fence is
# `<!-- example: real hosts -->` (or its first line is `# on real hosts`). The rules are in
# scripts/check_doc_commands.py, which this runs with python3 (3.11+, standard library only).
#
# Prints one `FILE:LINE: command: problem` line per drift and a summary line
# `check_doc_commands: N checks passed, M failed (...)`. Exit status: 0 when nothing drifted,
# 1 when something did, 2 when a binary is missing.
#
# Environment:
#   FERRY_BIN       the ferry binary (default ${CARGO_TARGET_DIR:-~/.cache/ferry-target}/debug/ferry)
#   FERRY_LOAD_BIN  the ferry-load binary (default: next to FERRY_BIN)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec "${PYTHON:-python3}" scripts/check_doc_commands.py "$@"
