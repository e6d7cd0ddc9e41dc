#!/usr/bin/env bash
# The long forms of the reliability suite (RELIABILITY.md), on loopback only and
# bounded: each step has a time limit, and the traffic is CQRS_RELIABILITY_SCALE
# times the test command's (64 unless set; the no-skip scenario on PostgreSQL then
# commits over 100,000 events; the steps whose calls wait on faults or on MySQL's
# one-at-a-time commits run at an eighth of it).
#
#   scripts/soak.sh            # every long form (about 30 minutes on 2 cores, plus
#                              # 12 for the first build of the fuzz targets)
#   CQRS_RELIABILITY_SCALE=10 scripts/soak.sh
#
# Prints each step's figures (histories checked, faults, appends cut off, events)
# for RELIABILITY.md, and stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

export CQRS_RELIABILITY_SCALE="${CQRS_RELIABILITY_SCALE:-64}"
# Porcupine needs about a minute for a 15,000-operation history on this machine.
export CQRS_CHECKER_TIMEOUT="${CQRS_CHECKER_TIMEOUT:-900}"
rounds="${CQRS_SOAK_CRASHES:-5}"
cache="${CQRS_CACHE:-$HOME/.cache/cqrs-rs}"

step() { printf '\n==> %s (%s)\n' "$1" "$(date +%T)"; }

step "servers"
scripts/services.sh up
eval "$(scripts/services.sh env)"

step "checker model tests"
(cd reliability/checker && GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOMODCACHE="$cache/go/mod" \
  GOCACHE="$cache/go/build" go test -count=1 ./...)

run() {
  local limit=$1 log
  shift
  log=$(mktemp)
  if ! timeout "$limit" cargo test --locked "$@" -- --nocapture >"$log" 2>&1; then
    tail -n 80 "$log" >&2
    echo "soak step failed: cargo test $* (log: $log)" >&2
    exit 1
  fi
  grep -E 'no-skip|killed;|fault rounds|acknowledged,|^soak of|^ +[0-9]+ s \||cells checked|workers killed|^test result' "$log" || true
  rm -f "$log"
}

step "linearizability histories at scale $CQRS_RELIABILITY_SCALE (PostgreSQL, MySQL)"
run 30m -p cqrs-rs-postgres --test linearizability
run 30m -p cqrs-rs-mysql --test linearizability

# Calls caught in a fault wait up to the deadline: these steps run at an eighth.
small=$(((CQRS_RELIABILITY_SCALE + 7) / 8))

step "network faults at scale $small (PostgreSQL, MySQL)"
CQRS_RELIABILITY_SCALE=$small run 30m -p cqrs-rs-postgres --test faults
CQRS_RELIABILITY_SCALE=$small run 30m -p cqrs-rs-mysql --test faults

# MySQL commits one transaction at a time (the tail lock, held open 0-25 ms here):
# it gets the eighth too; PostgreSQL takes the whole scale, past 100,000 events.
step "no skipped event under random commit order (PostgreSQL at $CQRS_RELIABILITY_SCALE, MySQL at $small)"
run 30m -p cqrs-rs-postgres --test subscription a_tailing_subscriber
CQRS_RELIABILITY_SCALE=$small run 30m -p cqrs-rs-mysql --test subscription

step "network faults on the read-model stores, the cache and leases at scale $small (Redis, MongoDB), and on Kafka"
CQRS_RELIABILITY_SCALE=$small run 30m -p cqrs-rs-redis --test faults
CQRS_RELIABILITY_SCALE=$small run 30m -p cqrs-rs-mongo --test faults
run 30m -p cqrs-rs-kafka --test faults

fuzz_seconds="${CQRS_FUZZ_SECONDS:-60}"
step "fuzzing: the replay with 100,000 mutations per target, then libFuzzer for ${fuzz_seconds} s per target"
CQRS_FUZZ_MUTATIONS=100000 run 30m -p cqrs-fuzz
timeout 60m scripts/fuzz.sh "$fuzz_seconds"

step "MADA traffic through the API for 10 minutes, every role in its own process, faults now and then"
run 20m -p mada --test server soak::

step "projection workers (mada project) SIGKILLed at 50 random points per read-model store"
run 20m -p mada --test server kills

step "servers killed under load, $rounds times each"
for i in $(seq "$rounds"); do
  run 10m -p cqrs-rs-postgres --test crash
  run 10m -p cqrs-rs-mysql --test outage
done

step "done"
