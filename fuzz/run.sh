#!/usr/bin/env bash
# Coverage-guided fuzzing, for a bounded time: the sanitizer's decision and rewrite (target
# `decide`, fuzz_targets/decide.rs) and the guarded path in both memory strategies, the
# supervisor's copy plan with the i386 layout's translation and the library's in-place path
# (target `guarded`, fuzz_targets/guarded.rs):
#
#     fuzz/run.sh [SECONDS] [extra libFuzzer options...]     (default 60 s, `decide`)
#     FUZZ_TARGET=guarded fuzz/run.sh [SECONDS] ...
#
# Works from a fresh machine with only the stable toolchain: installs cargo-fuzz (pinned) if
# missing and builds with RUSTC_BOOTSTRAP=1, which lets the stable compiler take the unstable
# flags cargo-fuzz passes (the same compiler as a nightly for this purpose). Environment:
#   FUZZ_SANITIZER=none|address   (default none: the crate is #![forbid(unsafe_code)], and
#                                  debug assertions, overflow checks included, are on)
#   FUZZ_TOOLCHAIN=nightly         (optional: use that rustup toolchain instead of the default)
#   FUZZ_JOBS=N                    (optional: N fuzzing processes, libFuzzer -fork=N)
#
# New inputs go to fuzz/corpus/TARGET-work/ (ignored by git); the committed seeds in
# fuzz/corpus/TARGET/ are read only. A crash leaves its input in fuzz/artifacts/TARGET/ and
# this script exits non-zero; reproduce with `fuzz/run.sh 0 fuzz/artifacts/TARGET/crash-...`
# or `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a TARGET <file>` in fuzz/.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
target=${FUZZ_TARGET:-decide}
shift || true
CARGO_FUZZ_VERSION=0.13.2
sanitizer=${FUZZ_SANITIZER:-none}
toolchain=()
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then toolchain=("+$FUZZ_TOOLCHAIN"); fi
export RUSTC_BOOTSTRAP=1

if ! cargo "${toolchain[@]}" fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

flags=(-s "$sanitizer" --debug-assertions)
cargo "${toolchain[@]}" fuzz build "${flags[@]}" "$target"

mkdir -p "corpus/$target-work" "artifacts/$target"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
max_len=512
[[ "$target" == guarded ]] && max_len=20000
lib_args=(-max_len="$max_len" -print_final_stats=1 -artifact_prefix="artifacts/$target/")
if [[ "$seconds" == 0 ]]; then
    # Replay the given inputs (or the corpus) once.
    lib_args+=(-runs=0)
else
    lib_args+=(-max_total_time="$seconds")
fi
if [[ -n "${FUZZ_JOBS:-}" ]]; then lib_args+=(-fork="$FUZZ_JOBS" -ignore_crashes=0); fi

corpora=("corpus/$target-work" "corpus/$target")
inputs=()
for arg in "$@"; do
    if [[ -f "$arg" ]]; then inputs+=("$arg"); else lib_args+=("$arg"); fi
done
if (( ${#inputs[@]} )); then corpora=("${inputs[@]}"); fi

status=0
cargo "${toolchain[@]}" fuzz run "${flags[@]}" "$target" "${corpora[@]}" -- "${lib_args[@]}" \
    2>&1 | tee "$log" | grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' || status=${PIPESTATUS[0]}

execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
if [[ -z "$execs" ]]; then
    # -fork mode reports totals on its own lines.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
fi
crashes=$(find "artifacts/$target" -type f -newer "$log" 2>/dev/null | wc -l)
echo "fuzz/run.sh: target $target, ${seconds}s, sanitizer $sanitizer: ${execs:-0} executions, $crashes crash(es), exit $status"
if (( status != 0 || crashes != 0 )); then
    ls -l "artifacts/$target" >&2 || true
    exit 1
fi
