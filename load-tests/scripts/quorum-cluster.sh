#!/usr/bin/env bash
# Starts a local cluster for the metadata-quorum benchmarks: 3 controllers and 3 brokers, all
# `ferry node` processes on loopback, data under a fresh directory. Prints the bootstrap list,
# then waits; Ctrl-C (or SIGTERM) stops every node it started.
#
#   load-tests/scripts/quorum-cluster.sh FERRY_BIN [BASE_PORT] [DATA_DIR]
#
# Controllers listen on BASE_PORT+1..3, brokers' Kafka listeners on BASE_PORT+11..13
# (BASE_PORT defaults to 29100). Brokers get racks zone-a, zone-b, zone-c. The nodes talk over
# mutual TLS: a CA in DATA/ca and each node's certificate in DATA/tls-NAME (`ferry cert`).
set -euo pipefail

FERRY_BIN=${1:?usage: quorum-cluster.sh FERRY_BIN [BASE_PORT] [DATA_DIR]}
BASE=${2:-29100}
DATA=${3:-$(mktemp -d /tmp/ferry-quorum-cluster-XXXXXX)}
CLUSTER_ID=ferry-load-quorum
mkdir -p "$DATA"
QUORUM="1@127.0.0.1:$((BASE + 1)),2@127.0.0.1:$((BASE + 2)),3@127.0.0.1:$((BASE + 3))"
CONTROLLERS=()
BROKERS=()

# Brokers first (their controlled shutdown needs the controllers), then the controllers.
cleanup() {
  for pid in "${BROKERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BROKERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${CONTROLLERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

[[ -f "$DATA/ca/ca-key.pem" ]] || "$FERRY_BIN" cert ca --dir "$DATA/ca" >/dev/null

# start NAME ID ROLE ARGS...: issues node ID's certificate for ROLE, then runs
# `ferry node ARGS` with stdout in DATA/NAME.out, stderr in DATA/NAME.log.
start() {
  local name=$1 id=$2 role=$3
  shift 3
  "$FERRY_BIN" cert issue --ca-dir "$DATA/ca" --out "$DATA/tls-$name" \
    --node "$id" --cluster-id "$CLUSTER_ID" --roles "$role" >/dev/null
  "$FERRY_BIN" node --node-id "$id" --roles "$role" --cluster-id "$CLUSTER_ID" \
    --tls-ca "$DATA/tls-$name/ca.pem" --tls-cert "$DATA/tls-$name/cert.pem" \
    --tls-key "$DATA/tls-$name/key.pem" "$@" >"$DATA/$name.out" 2>"$DATA/$name.log" &
  if [[ $name == broker-* ]]; then BROKERS+=($!); else CONTROLLERS+=($!); fi
}

# ready NAME: waits up to 30 s for the node's ready line.
ready() {
  for _ in $(seq 300); do
    if grep -q '^ferry node ready:' "$DATA/$1.out" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start; see $DATA/$1.log" >&2
  exit 1
}

for id in 1 2 3; do
  start "controller-$id" "$id" controller \
    --controller-quorum "$QUORUM" --controller-listen "127.0.0.1:$((BASE + id))" \
    --data-dir "$DATA/controller-$id"
done
for id in 1 2 3; do ready "controller-$id"; done

racks=(zone-a zone-b zone-c)
for i in 0 1 2; do
  id=$((101 + i))
  start "broker-$id" "$id" broker \
    --controller-quorum "$QUORUM" --listen "127.0.0.1:$((BASE + 11 + i))" \
    --admin-listen 127.0.0.1:0 --rack "${racks[$i]}" --data-dir "$DATA/broker-$id"
done
for id in 101 102 103; do ready "broker-$id"; done

echo "bootstrap=127.0.0.1:$((BASE + 11)),127.0.0.1:$((BASE + 12)),127.0.0.1:$((BASE + 13)) data=$DATA"
wait
