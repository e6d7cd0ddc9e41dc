#!/usr/bin/env bash
# Coverage-guided fuzzing of the reliability suite's targets (reliability/fuzz) with
# libFuzzer, through cargo-fuzz on the nightly toolchain.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target (all by default: see reliability/fuzz/src/lib.rs) for SECONDS
# (60 by default), starting from its checked-in seeds and regressions plus what
# earlier runs found (kept in target/fuzz/corpus/, never committed by this script).
# An input that makes a target panic, hang (10 s) or use more than 2 GiB is saved
# under target/fuzz/artifacts/TARGET/ and the script fails at the end, naming it:
# minimize it (`cargo +nightly fuzz tmin --fuzz-dir reliability/fuzz/libfuzzer TARGET
# FILE`), fix the bug, and commit the input to reliability/fuzz/regressions/TARGET/,
# where `cargo test -p cqrs-fuzz` replays it on every run.
#
# Built without a sanitizer (`-s none`): the library forbids unsafe code, and the
# build keeps debug assertions and overflow checks on. Called by scripts/soak.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
all=(envelope pgoutput binlog binlog_row kafka_record debezium graphql fcm_reply)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

cache="${CQRS_CACHE:-$HOME/.cache/cqrs-rs}"
fuzz_dir=reliability/fuzz/libfuzzer
out=target/fuzz

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh needs the nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
cargo_fuzz="$cache/cargo-fuzz/bin/cargo-fuzz"
if [ ! -x "$cargo_fuzz" ]; then
  echo "==> installing cargo-fuzz into $cache/cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2 --root "$cache/cargo-fuzz" --quiet
fi
fuzz() { PATH="$cache/cargo-fuzz/bin:$PATH" cargo +nightly fuzz "$@"; }

# The same versions as the workspace's tests (libfuzzer-sys added to them).
cp Cargo.lock "$fuzz_dir/Cargo.lock"
echo "==> building the targets (nightly, libFuzzer, no sanitizer)"
mkdir -p "$out"
if ! fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$out/build" -s none >"$out/build.log" 2>&1; then
  tail -60 "$out/build.log" >&2
  echo "the fuzz targets did not build (log: $out/build.log)" >&2
  exit 1
fi

failed=()
for target in "${targets[@]}"; do
  mkdir -p "$out/corpus/$target" "$out/artifacts/$target" reliability/fuzz/regressions/"$target"
  echo "==> $target: ${seconds} s"
  log="$out/$target.log"
  if fuzz run --fuzz-dir "$fuzz_dir" --target-dir "$out/build" -s none "$target" \
    "$out/corpus/$target" "reliability/fuzz/corpus/$target" "reliability/fuzz/regressions/$target" \
    -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$target/" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)|cov: ' "$log" | tail -4
  else
    tail -40 "$log"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}; the inputs are in $out/artifacts/ (logs: $out/TARGET.log)" >&2
  exit 1
fi
echo "==> every target ran ${seconds} s with no failure"
