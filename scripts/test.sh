#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
# formatting, clippy with warnings as errors, the docs, packaging of the published
# crates, the deployment files, then the test servers
# (installed and started by scripts/services.sh when they are not up), then every
# test and doctest against them. The servers are left running; stop them with
# `scripts/services.sh down`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }

step "cargo fmt --check"
cargo fmt --all -- --check

# The test servers install and start in the background while the code compiles: on
# a fresh machine their packages, jars and builds take minutes, mostly waiting on
# the network and the disk. Their log is printed before the tests.
services_log="$(mktemp)"
step "test servers, in the background (scripts/services.sh up)"
scripts/services.sh up >"$services_log" 2>&1 &
services_pid=$!

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "cargo package (the published crates package, and check on their own)"
# `cargo package` writes each published crate's .crate: its manifest (metadata,
# versions of path dependencies) and the files that ship. Cargo's verification
# (building each package from its .crate) took 6 of a cold run's 20 minutes: each
# crate resolves its dependencies' features alone, so they compile again, codegen
# included. `cargo check` of each crate on its own catches what that guards against
# (a feature a crate uses but does not declare, which the workspace's unified
# features would hide) for the cost of metadata only.
# --allow-dirty so that the script also runs on a work tree with changes; CI's clone
# is clean anyway.
published=(cqrs-rs-derive cqrs-rs-core cqrs-rs-postgres cqrs-rs-mongo cqrs-rs-redis cqrs-rs-kafka
  cqrs-rs-mysql)
cargo package --locked --allow-dirty --quiet --no-verify "${published[@]/#/-p=}"
for crate in "${published[@]}"; do
  cargo check --locked --quiet -p "$crate"
done

step "deployment files (deploy/check: Kubernetes overlays, Dockerfile, docker-compose.yml)"
# A Go program on kustomize, the Kubernetes API types, BuildKit's Dockerfile linter
# and compose-go; its tests check the files and break them one way at a time.
# Modules and builds are cached with the test servers' (scripts/services.sh).
command -v go >/dev/null || { echo "deploy/check needs Go (1.26 or newer)" >&2; exit 1; }
cache="${CQRS_CACHE:-$HOME/.cache/cqrs-rs}"
(cd deploy/check && GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOMODCACHE="$cache/go/mod" \
  GOCACHE="$cache/go/build" go test -count=1 ./...)

step "linearizability checker (reliability/checker: Porcupine and a model of the store)"
# Its model's own tests: histories it must accept and histories it must reject. The
# adapters' tests build it again (cached) and check their recorded histories with it.
(cd reliability/checker && GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOMODCACHE="$cache/go/mod" \
  GOCACHE="$cache/go/build" go test -count=1 ./...)

step "test servers (waiting for scripts/services.sh up)"
if ! wait "$services_pid"; then
  cat "$services_log" >&2
  echo "scripts/services.sh up failed (its log is above)" >&2
  exit 1
fi
cat "$services_log"
eval "$(scripts/services.sh env)"

step "cargo test"
cargo test --workspace --locked
step "done"
