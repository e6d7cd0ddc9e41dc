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

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "cargo package (the published crates package and build on their own)"
# Cargo verifies each package against the others through a local registry, and takes
# what comes from a registry as immutable: it extracts a name and version under
# ~/.cargo/registry/src once, and reuses a compiled copy in target/ whatever changed
# since. In a working copy that packaged the same version before, the verification
# would build today's crates against yesterday's. So both go first (the names are
# this workspace's own; the cost is compiling its crates once more).
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cqrs-rs-* target/debug/.fingerprint/cqrs-rs-*
# --allow-dirty so that the script also runs on a work tree with changes; CI's clone
# is clean anyway.
cargo package --locked --allow-dirty --quiet \
  -p cqrs-rs-derive -p cqrs-rs-core -p cqrs-rs-postgres -p cqrs-rs-mongo -p cqrs-rs-redis \
  -p cqrs-rs-kafka -p cqrs-rs-mysql

step "deployment files (deploy/check: Kubernetes overlays, Dockerfile, docker-compose.yml)"
# A Go program on kustomize, the Kubernetes API types, BuildKit's Dockerfile linter
# and compose-go; its tests check the files and break them one way at a time.
# Modules and builds are cached with the test servers' (scripts/services.sh).
command -v go >/dev/null || { echo "deploy/check needs Go (1.26 or newer)" >&2; exit 1; }
cache="${CQRS_CACHE:-$HOME/.cache/cqrs-rs}"
(cd deploy/check && GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOMODCACHE="$cache/go/mod" \
  GOCACHE="$cache/go/build" go test -count=1 ./...)

step "test servers (scripts/services.sh up)"
scripts/services.sh up
eval "$(scripts/services.sh env)"

step "cargo test"
cargo test --workspace --locked
step "done"
