#!/usr/bin/env bash
# kcat (librdkafka) against a real `ferry node`.
#
# Starts its own node (FERRY_BIN, or $CARGO_TARGET_DIR/debug/ferry with CARGO_TARGET_DIR
# defaulting to ~/.cache/ferry-target) on 127.0.0.1 port 0 with `--set num.partitions=3`,
# runs every check (each kcat call bounded by `timeout`), stops the node (SIGTERM, then
# SIGKILL) and prints `ok`/`not ok` per check and a closing `N passed, M failed` line.
# Exit status: 0 only if every check passed.
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
FERRY_BIN="${FERRY_BIN:-$TARGET_DIR/debug/ferry}"
ARTIFACTS="${FERRY_TEST_ARTIFACTS:-$REPO_ROOT/tests/artifacts}"
KCAT_TIMEOUT=30

die() { echo "test_kcat: $*" >&2; exit 2; }
[[ -x "$FERRY_BIN" ]] || die "ferry binary not found at $FERRY_BIN (build it first: bash scripts/test.sh, or cargo build -p ferry-cli; or set FERRY_BIN)"
command -v kcat >/dev/null || die "kcat not found (scripts/test.sh installs it: apt-get install kcat)"

WORK="$(mktemp -d -t ferry-kcat-XXXXXX)"
mkdir -p "$ARTIFACTS"
NODE_LOG="$ARTIFACTS/test_kcat-$$.node.log"
NODE_PID=""

cleanup() {
  if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -TERM "$NODE_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$NODE_PID" 2>/dev/null; then
      echo "test_kcat: node did not stop within 10 s of SIGTERM; killing it" >&2
      kill -KILL "$NODE_PID" 2>/dev/null
    fi
    wait "$NODE_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- start the node and wait (bounded) for its ready line --------------------------------
mkfifo "$WORK/stdout"
"$FERRY_BIN" node --data-dir "$WORK/data" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --set num.partitions=3 >"$WORK/stdout" 2>"$NODE_LOG" </dev/null &
NODE_PID=$!
exec 3<"$WORK/stdout"
READY=""
if ! read -r -t 30 READY <&3; then
  echo "test_kcat: no ready line from ferry node within 30 s; log tail:" >&2
  tail -n 40 "$NODE_LOG" >&2
  exit 2
fi
# Keep draining the node's stdout so it never blocks on a full pipe.
cat <&3 >"$WORK/stdout.rest" &
exec 3<&-
BOOTSTRAP="$(sed -n 's/^ferry node ready: .* bootstrap=\([^ ]*\) .*/\1/p' <<<"$READY")"
[[ -n "$BOOTSTRAP" ]] || die "unexpected first line from ferry node: $READY"
echo "# ferry node pid $NODE_PID at $BOOTSTRAP (log: $NODE_LOG)"

kc() { timeout "$KCAT_TIMEOUT" kcat -b "$BOOTSTRAP" "$@"; }

PASSED=0
FAILED=0
N=0
check() { # check NAME FUNCTION
  local name="$1"; shift
  N=$((N + 1))
  local out
  if out="$("$@" 2>&1)"; then
    PASSED=$((PASSED + 1)); echo "ok $N - $name"
  else
    FAILED=$((FAILED + 1)); echo "not ok $N - $name"
    sed 's/^/#   /' <<<"$out"
  fi
}
fail() { echo "$*"; return 1; }

TOPIC_ONE="kcat-ordered-$$"   # explicitly one partition (-p 0): exact order check
TOPIC_KEYED="kcat-keyed-$$"   # auto-created with num.partitions=3, keyed produce

# --- checks ------------------------------------------------------------------------------
t_metadata_broker() {
  local out; out="$(kc -L)" || fail "kcat -L failed: $out" || return 1
  grep -q "broker 1 at $BOOTSTRAP" <<<"$out" || fail "broker 1 at $BOOTSTRAP not in: $out"
}

t_produce_one_partition() {
  seq 1 100 | sed 's/.*/key-&:value-&/' >"$WORK/sent-one"
  kc -P -t "$TOPIC_ONE" -p 0 -K: -X message.timeout.ms=20000 <"$WORK/sent-one"
}

t_consume_exact() {
  kc -C -t "$TOPIC_ONE" -e -q -o beginning -f '%k:%s\n' >"$WORK/got-one" || fail "kcat -C failed" || return 1
  diff -u "$WORK/sent-one" "$WORK/got-one" || fail "consumed records differ from produced ones"
}

t_offsets_dense() {
  local got; got="$(kc -C -t "$TOPIC_ONE" -p 0 -e -q -o beginning -f '%o\n')" || return 1
  [[ "$got" == "$(seq 0 99)" ]] || fail "offsets are not 0..99: $(head -c 300 <<<"$got")"
}

t_consume_last_5() {
  local got; got="$(kc -C -t "$TOPIC_ONE" -p 0 -e -q -o -5 -f '%o %k:%s\n')" || return 1
  local want; want="$(for i in 96 97 98 99 100; do echo "$((i - 1)) key-$i:value-$i"; done)"
  [[ "$got" == "$want" ]] || fail "-o -5 gave: $got"
}

t_consume_from_offset() {
  local got; got="$(kc -C -t "$TOPIC_ONE" -p 0 -e -q -o 42 -c 3 -f '%o %s\n')" || return 1
  [[ "$got" == $'42 value-43\n43 value-44\n44 value-45' ]] || fail "-o 42 -c 3 gave: $got"
}

t_query_offsets_by_time() {
  local got; got="$(kc -Q -t "$TOPIC_ONE:0:0")" || return 1
  grep -q "\[0\] offset 0" <<<"$got" || fail "-Q t=0 gave: $got"
  got="$(kc -Q -t "$TOPIC_ONE:0:$(( ($(date +%s) + 3600) * 1000 ))")" || return 1
  grep -q "\[0\] offset -1" <<<"$got" || fail "-Q t=now+1h gave (expected -1): $got"
}

t_keyed_auto_create() {
  seq 1 100 | sed 's/.*/k&:v&/' >"$WORK/sent-keyed"
  kc -P -t "$TOPIC_KEYED" -K: -X message.timeout.ms=20000 <"$WORK/sent-keyed" || return 1
  local md; md="$(kc -L -t "$TOPIC_KEYED")" || return 1
  grep -q "topic \"$TOPIC_KEYED\" with 3 partitions" <<<"$md" \
    || fail "auto-created topic should have num.partitions=3: $md"
}

t_keyed_round_trip() {
  kc -C -t "$TOPIC_KEYED" -e -q -o beginning -f '%p %o %k:%s\n' >"$WORK/got-keyed" || return 1
  [[ "$(wc -l <"$WORK/got-keyed")" -eq 100 ]] || fail "expected 100 records, got $(wc -l <"$WORK/got-keyed")" || return 1
  diff <(sort "$WORK/sent-keyed") <(cut -d' ' -f3 "$WORK/got-keyed" | sort) || fail "record sets differ" || return 1
  local parts; parts="$(cut -d' ' -f1 "$WORK/got-keyed" | sort -u | wc -l)"
  [[ "$parts" -gt 1 ]] || fail "all 100 keys landed on one partition" || return 1
  # Per partition: offsets dense from 0 and records in produce order.
  local p
  for p in $(cut -d' ' -f1 "$WORK/got-keyed" | sort -u); do
    local offs; offs="$(awk -v p="$p" '$1 == p { print $2 }' "$WORK/got-keyed")"
    [[ "$offs" == "$(seq 0 $(( $(wc -l <<<"$offs") - 1 )))" ]] || fail "partition $p offsets: $offs" || return 1
    local nums; nums="$(awk -v p="$p" '$1 == p { sub(/^k/, "", $3); sub(/:.*/, "", $3); print $3 }' "$WORK/got-keyed")"
    [[ "$nums" == "$(sort -n <<<"$nums")" ]] || fail "partition $p out of produce order" || return 1
  done
}

t_large_value() {
  head -c 200000 /dev/zero | tr '\0' 'z' >"$WORK/big"
  echo >>"$WORK/big"
  kc -P -t "$TOPIC_ONE-big" -p 0 -X message.timeout.ms=20000 <"$WORK/big" || return 1
  kc -C -t "$TOPIC_ONE-big" -e -q -o beginning -f '%s\n' >"$WORK/big-got" || return 1
  cmp "$WORK/big" "$WORK/big-got" || fail "200 kB value differs after round trip"
}

t_invalid_topic_produce_fails() {
  local out
  if out="$(echo 'k:v' | kc -P -t 'bad topic!' -K: -X message.timeout.ms=10000 2>&1)"; then
    fail "producing to an invalid topic name succeeded: $out"; return 1
  fi
  grep -qi "invalid topic" <<<"$out" || fail "expected an 'Invalid topic' error, got: $out"
}

t_invalid_topic_consume_fails() {
  local out
  if out="$(kc -C -t 'bad topic!' -e -o beginning 2>&1)"; then
    fail "consuming an invalid topic name succeeded: $out"; return 1
  fi
  grep -qi "invalid topic" <<<"$out" || fail "expected an 'Invalid topic' error, got: $out"
}

t_group_consume_resumes_from_commits() {
  local topic="$TOPIC_ONE-group" group="kcat-group-$$"
  seq 1 30 | sed 's/^/g-/' >"$WORK/group-in"
  kc -P -t "$topic" -X message.timeout.ms=10000 <"$WORK/group-in" || return 1
  # A balanced consumer (-G): JoinGroup/SyncGroup/Heartbeat, then commits on close.
  kc -G "$group" -X auto.offset.reset=earliest -c 30 -q -f '%s\n' "$topic" \
    | sort >"$WORK/group-got" || { fail "kcat -G did not consume 30 messages"; return 1; }
  sort "$WORK/group-in" | cmp - "$WORK/group-got" || { fail "group consumed other messages"; return 1; }
  seq 1 5 | sed 's/^/late-/' >"$WORK/group-late"
  kc -P -t "$topic" -X message.timeout.ms=10000 <"$WORK/group-late" || return 1
  # The same group resumes from its committed offsets: only the 5 new messages.
  kc -G "$group" -X auto.offset.reset=earliest -c 5 -q -f '%s\n' "$topic" \
    | sort >"$WORK/group-got2" || { fail "kcat -G did not resume"; return 1; }
  sort "$WORK/group-late" | cmp - "$WORK/group-got2" || fail "resumed group read: $(cat "$WORK/group-got2")"
}

check "kcat -L lists broker 1 at the bootstrap address" t_metadata_broker
check "produce 100 keyed lines to one partition (-K: -p 0)" t_produce_one_partition
check "consume from beginning (-C -e) equals what was produced, in order" t_consume_exact
check "offsets are dense 0..99" t_offsets_dense
check "consume the last 5 (-o -5)" t_consume_last_5
check "consume from an absolute offset (-o 42 -c 3)" t_consume_from_offset
check "query offsets by timestamp (-Q)" t_query_offsets_by_time
check "keyed produce auto-creates a topic with num.partitions=3" t_keyed_auto_create
check "keyed records round-trip, per-partition order kept" t_keyed_round_trip
check "a 200 kB value round-trips" t_large_value
check "producing to an invalid topic name fails" t_invalid_topic_produce_fails
check "consuming an invalid topic name fails" t_invalid_topic_consume_fails
check "a kcat -G group consumes everything, then resumes from its commits" t_group_consume_resumes_from_commits

if ! kill -0 "$NODE_PID" 2>/dev/null; then
  FAILED=$((FAILED + 1)); echo "not ok $((N + 1)) - ferry node still running after the checks"
  tail -n 40 "$NODE_LOG" | sed 's/^/#   /'
fi
echo "$PASSED passed, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
