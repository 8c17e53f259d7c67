#!/usr/bin/env bash
# Runs Ferry's coverage-guided fuzz targets (libFuzzer, through cargo-fuzz, on the stable
# toolchain: `--sanitizer none` needs no -Z flag). docs/fuzzing.md describes the targets.
#
#     scripts/fuzz.sh TARGET SECONDS   run one target for SECONDS
#     scripts/fuzz.sh all SECONDS      run every target for SECONDS each, one after the other
#     scripts/fuzz.sh build            install cargo-fuzz if needed and build every target
#     scripts/fuzz.sh seeds            rewrite the checked-in seed corpora (fuzz/corpus/*/seed-*)
#     scripts/fuzz.sh list             print the targets
#
# It installs cargo-fuzz (pinned below) with `cargo install --locked` into $FERRY_TOOLS_DIR
# (default ~/.cache/ferry-tools, outside the clone) when it is missing (and g++ with apt-get when
# there is no C++ compiler), builds the targets into
# $FERRY_FUZZ_TARGET_DIR (default ~/.cache/ferry-fuzz-target: the instrumented build has its own
# RUSTFLAGS, so it must not share a target or build dir with ordinary builds), and runs each
# target with the checked-in seeds in fuzz/corpus/TARGET plus a working corpus kept in
# $FERRY_FUZZ_TARGET_DIR/corpus/TARGET (what earlier runs found; libFuzzer writes new inputs
# only there, never into the clone).
#
# A crash stops libFuzzer. A crash listed in KNOWN_CRASHES below is reported as known and the
# target is restarted for the rest of its time (the crash is recorded, not fixed, elsewhere:
# see docs/fuzzing.md); any other crash saves its input to fuzz/artifacts/TARGET/, stops that
# target (unless FERRY_FUZZ_KEEP_GOING=1) and makes the script exit 1 at the end. Every target
# prints its executions and crashes, and the last line is a total, e.g.
# `fuzz: 8 targets, 1234567 executions, 0 new crashes, 2 known crashes`.
#
# Environment:
#   FERRY_FUZZ_TARGET_DIR  instrumented build and working corpora (default above)
#   FERRY_TOOLS_DIR        where cargo-fuzz is installed (default above)
#   FERRY_FUZZ_RSS_MB      libFuzzer's -rss_limit_mb (default 2048): more is a crash
#   FERRY_FUZZ_TIMEOUT_S   libFuzzer's -timeout (default 10): one input slower than this is a crash
#   FERRY_FUZZ_KEEP_GOING  1: after a new crash too, restart the target for the rest of its
#                          time; keep one input per kind of crash (the signature with its
#                          numbers masked), known ones too
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

CARGO_FUZZ_VERSION="0.13.2"
TARGETS=(kafka_request record_batch raft_message store_command controller_command rest_request grpc_message group_record)

# Known crashes: "TARGET|extended regex" matched against the crash's signature, one line:
# `LOCATION MESSAGE` for a panic (`data-plane/src/x.rs:12:5 attempt to add with overflow`), the
# allocator's or libFuzzer's message otherwise. Each is a finding of docs/fuzzing.md that
# another change of issue 13 fixes; delete its line when that change lands, so that the crash
# fails the run again if it comes back.
KNOWN_CRASHES=(
  # None: every finding of docs/fuzzing.md is fixed, so any crash fails the run.
)

export FERRY_FUZZ_TARGET_DIR="${FERRY_FUZZ_TARGET_DIR:-$HOME/.cache/ferry-fuzz-target}"
FERRY_TOOLS_DIR="${FERRY_TOOLS_DIR:-$HOME/.cache/ferry-tools}"
RSS_MB="${FERRY_FUZZ_RSS_MB:-2048}"
TIMEOUT_S="${FERRY_FUZZ_TIMEOUT_S:-10}"
KEEP_GOING="${FERRY_FUZZ_KEEP_GOING:-0}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$FERRY_FUZZ_TARGET_DIR/$TRIPLE/release"

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  echo "targets: ${TARGETS[*]}" >&2
  exit 2
}

# cargo-fuzz with the instrumented build's environment: its own target dir, and no shared build
# dir (the instrumented artifacts would otherwise replace everyone's).
fuzz_cargo() {
  (cd "$REPO_ROOT/fuzz" && env -u CARGO_BUILD_BUILD_DIR CARGO_TARGET_DIR="$FERRY_FUZZ_TARGET_DIR" \
    PATH="$FERRY_TOOLS_DIR/bin:$PATH" cargo "$@")
}

ensure_cargo_fuzz() {
  # libfuzzer-sys compiles libFuzzer (C++) with the system compiler.
  if ! command -v c++ >/dev/null; then
    echo "apt-get install g++ (libfuzzer-sys compiles libFuzzer with it)"
    local sudo=(); [[ $EUID -eq 0 ]] || sudo=(sudo -n)
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends g++
  fi
  local have
  have="$("$FERRY_TOOLS_DIR/bin/cargo-fuzz" --version 2>/dev/null | awk '{print $2}' || true)"
  if [[ "$have" == "$CARGO_FUZZ_VERSION" ]]; then
    echo "cargo-fuzz $have: installed in $FERRY_TOOLS_DIR"
    return 0
  fi
  echo "cargo install --locked cargo-fuzz@$CARGO_FUZZ_VERSION --root $FERRY_TOOLS_DIR"
  env -u CARGO_BUILD_BUILD_DIR -u CARGO_TARGET_DIR \
    cargo install --quiet --locked --root "$FERRY_TOOLS_DIR" "cargo-fuzz@$CARGO_FUZZ_VERSION"
}

# build [TARGET]: builds one target, or every target.
build() {
  ensure_cargo_fuzz
  echo "cargo fuzz build --sanitizer none ${1:-} (into $FERRY_FUZZ_TARGET_DIR)"
  fuzz_cargo fuzz build --sanitizer none ${1:+"$1"}
}

# known_crash TARGET SIGNATURE: succeeds if a KNOWN_CRASHES entry of TARGET matches SIGNATURE.
known_crash() {
  local target="$1" signature="$2" entry
  for entry in "${KNOWN_CRASHES[@]}"; do
    if [[ "${entry%%|*}" == "$target" ]] && grep -qE "${entry#*|}" <<<"$signature"; then
      return 0
    fi
  done
  return 1
}

# The crash's signature from a libFuzzer log: `LOCATION MESSAGE` of the panic (the location
# relative to the repository or to the registry's crate directory), else the allocator's
# message, else libFuzzer's verdict (out-of-memory, timeout, deadly signal).
crash_signature() {
  local log="$1" at message line
  at="$(grep -m1 -E "panicked at " "$log" | sed -E 's/.*panicked at (.*):$/\1/' || true)"
  if [[ -n "$at" ]]; then
    message="$(grep -m1 -A1 -E "panicked at " "$log" | tail -n 1)"
    at="${at#"$REPO_ROOT"/}"
    at="$(sed -E 's#^.*/registry/src/[^/]+/##' <<<"$at")"
    echo "$at $message"
    return 0
  fi
  line="$(grep -m1 -E "memory allocation of|capacity overflow" "$log" || true)"
  [[ -n "$line" ]] || line="$(grep -m1 -E "ERROR: libFuzzer: " "$log" | sed 's/^==[0-9]*== //' || true)"
  echo "${line:-unknown crash (see the log above)}"
}

TOTAL_EXECS=0 TOTAL_NEW=0 TOTAL_KNOWN=0 TARGETS_RUN=0
declare -a SUMMARY=()

# run_target TARGET SECONDS: fuzzes TARGET for SECONDS (restarting after known crashes).
run_target() {
  local target="$1" seconds="$2"
  local bin="$BIN_DIR/$target"
  [[ -x "$bin" ]] || { echo "scripts/fuzz.sh: $bin is missing (build failed?)" >&2; return 1; }
  local corpus="$FERRY_FUZZ_TARGET_DIR/corpus/$target"
  local seeds="$REPO_ROOT/fuzz/corpus/$target"
  local artifacts="$FERRY_FUZZ_TARGET_DIR/artifacts/$target"
  mkdir -p "$corpus" "$artifacts" "$REPO_ROOT/fuzz/artifacts/$target"
  local log; log="$(mktemp -t "fuzz-$target-XXXXXX.log")"
  local execs=0 new=0 known=0 start=$SECONDS left runs=0
  local -A seen=()
  echo "== $target: ${seconds}s, corpus $corpus + $seeds"
  while left=$(( seconds - (SECONDS - start) )); (( left > 0 )); do
    runs=$(( runs + 1 ))
    local rc=0
    "$bin" "$corpus" "$seeds" -max_total_time="$left" -rss_limit_mb="$RSS_MB" \
      -timeout="$TIMEOUT_S" -print_final_stats=1 -artifact_prefix="$artifacts/" \
      >"$log" 2>&1 || rc=$?
    local n; n="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    execs=$(( execs + ${n:-0} ))
    if (( rc == 0 )); then
      break
    fi
    local input; input="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    local summary; summary="$(crash_signature "$log")"
    # Crashes that differ only in numbers (sizes, indexes, line numbers) count as one.
    local kind; kind="$(sed -E 's/[0-9]+/N/g' <<<"$summary")"
    local first=""; [[ -n "${seen[$kind]:-}" ]] || first=1
    seen[$kind]=$(( ${seen[$kind]:-0} + 1 ))
    if known_crash "$target" "$summary"; then
      known=$(( known + 1 ))
      if [[ -n "$first" ]]; then
        echo "   known crash (run $runs, after ${n:-?} executions): $summary"
        if [[ "$KEEP_GOING" == 1 && -n "$input" && -f "$input" ]]; then
          cp "$input" "$REPO_ROOT/fuzz/artifacts/$target/"
          echo "   input saved to fuzz/artifacts/$target/$(basename "$input")"
        fi
      fi
      [[ -n "$input" ]] && rm -f "$input"
    else
      new=$(( new + 1 ))
      echo "   NEW CRASH (run $runs, exit $rc): $summary"
      if [[ -z "$first" ]]; then
        echo "   (like an earlier crash of this run; input not kept)"
      elif [[ -n "$input" && -f "$input" ]]; then
        cp "$input" "$REPO_ROOT/fuzz/artifacts/$target/"
        echo "   input saved to fuzz/artifacts/$target/$(basename "$input"); reproduce with:"
        echo "   $bin fuzz/artifacts/$target/$(basename "$input")"
        echo "   ---- the end of libFuzzer's log:"
        grep -v -E '^ +at /rustc/|^ +[0-9]+: (std|core|__rustc|libfuzzer_sys|fuzzer)::' "$log" \
          | tail -n 40 | sed 's/^/   | /'
      fi
      [[ -n "$input" ]] && rm -f "$input"
      [[ "$KEEP_GOING" == 1 ]] || break
    fi
  done
  rm -f "$log"
  local k
  for k in "${!seen[@]}"; do
    (( ${seen[$k]} > 1 )) && echo "   ${seen[$k]} crashes like: $k"
  done
  echo "   $target: $execs executions in $(( SECONDS - start ))s, $new new crashes, $known known crashes"
  SUMMARY+=("$(printf '%-20s %10s executions %3ss  %s new crashes, %s known' "$target" "$execs" "$(( SECONDS - start ))" "$new" "$known")")
  TOTAL_EXECS=$(( TOTAL_EXECS + execs ))
  TOTAL_NEW=$(( TOTAL_NEW + new ))
  TOTAL_KNOWN=$(( TOTAL_KNOWN + known ))
  TARGETS_RUN=$(( TARGETS_RUN + 1 ))
}

is_target() {
  local t
  for t in "${TARGETS[@]}"; do [[ "$t" == "$1" ]] && return 0; done
  return 1
}

[[ $# -ge 1 ]] || usage
case "$1" in
  list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
  build) build; exit 0 ;;
  seeds)
    # Not instrumented (plain cargo, host target): shares nothing with the fuzz build's
    # $TRIPLE/release but the build scripts and proc macros, which are the same.
    echo "cargo run --release --example seeds (into $FERRY_FUZZ_TARGET_DIR)"
    (cd "$REPO_ROOT/fuzz" && env -u CARGO_BUILD_BUILD_DIR CARGO_TARGET_DIR="$FERRY_FUZZ_TARGET_DIR" \
      cargo run --quiet --release --example seeds -- "$REPO_ROOT/fuzz/corpus")
    exit 0
    ;;
esac
[[ $# -eq 2 && "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]] || usage
if [[ "$1" == all ]]; then
  build
  for target in "${TARGETS[@]}"; do run_target "$target" "$2"; done
elif is_target "$1"; then
  build "$1"
  run_target "$1" "$2"
else
  echo "scripts/fuzz.sh: unknown target '$1'" >&2
  usage
fi

echo
printf '  %s\n' "${SUMMARY[@]}"
echo "fuzz: $TARGETS_RUN targets, $TOTAL_EXECS executions, $TOTAL_NEW new crashes, $TOTAL_KNOWN known crashes"
(( TOTAL_NEW == 0 ))
