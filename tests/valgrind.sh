#!/usr/bin/env bash
# Runs the guard (libmfiguard.so) under valgrind's memcheck inside real client processes, with
# the legacy-driver simulator after it in LD_PRELOAD, as the end-to-end tests do
# (tests/common/mod.rs): MFIGUARD_DEVICE=/dev/null, an empty MFIGUARD_CONFIG, a file log and a
# simulator record in a scratch directory, `mfi_client --device /dev/null SCENARIO`.
#
#   tests/valgrind.sh            build (debug) the guard, the simulator and the client, then run
#   MFIGUARD_TEST_TARGET_DIR=target/release tests/valgrind.sh
#                                use prebuilt artifacts (DIR/libmfiguard.so,
#                                DIR/examples/{mfi_client,liblegacy_sim.so}); nothing is built
#
# Each scenario must end with the client's own exit status (0, or 1 for a refused call) and
# no memcheck error in any process (forked children included): memcheck's
# --error-exitcode=99 turns any invalid read or write, use of uninitialised memory or bad
# syscall argument into a failure. Leak checking is off: a preloaded library's once-only
# allocations (the configuration, kept for the life of the process) are not leaks.
# The lane checks itself first: a library with a known error (an uninitialised read in its
# constructor, compiled with cc) preloaded after the simulator must make a run exit 99.
# No suppressions are used; if one is ever needed for glibc or the loader, put it in
# tests/valgrind.supp and pass it with VALGRIND_SUPP=tests/valgrind.supp, with a comment on why.
# 40 runs of 1 to 6 s each: under a minute on an idle 2-core machine once built, about four
# minutes when the machine is busy with builds. A failing run
# prints its output; rerun it with VALGRIND_ORIGINS=yes for where uninitialised bytes came from.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if ! command -v valgrind >/dev/null; then
  echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
  exit 2
fi

if [[ -n ${MFIGUARD_TEST_TARGET_DIR:-} ]]; then
  dir=$MFIGUARD_TEST_TARGET_DIR
else
  cargo build -q -p mfiguard-preload --lib
  cargo build -q -p mfiguard --example mfi_client --example legacy_sim
  dir=${CARGO_TARGET_DIR:-$root/target}/debug
fi
guard=$(realpath "$dir/libmfiguard.so")
sim=$(realpath "$dir/examples/liblegacy_sim.so")
client=$(realpath "$dir/examples/mfi_client")
for f in "$guard" "$sim" "$client"; do
  [[ -e $f ]] || { echo "valgrind.sh: $f missing" >&2; exit 2; }
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mfiguard-valgrind.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
: >"$scratch/empty.conf"

vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=no
  "--track-origins=${VALGRIND_ORIGINS:-no}" --child-silent-after-fork=no --quiet)
if [[ -n ${VALGRIND_SUPP:-} ]]; then
  vg+=("--suppressions=$VALGRIND_SUPP")
fi

failed=0
runs=0
# run EXPECTED_EXIT [VAR=VALUE...] -- SCENARIO ARGS...
# (PRELOAD_EXTRA: one more library after the simulator, for the self-check)
run() {
  local expect=$1
  shift
  local -a envs=()
  while [[ $1 != -- ]]; do
    envs+=("$1")
    shift
  done
  shift
  local name="$* ${envs[*]}${PRELOAD_EXTRA:+ (self-check: + ${PRELOAD_EXTRA##*/})}"
  local d="$scratch/run$runs"
  runs=$((runs + 1))
  mkdir -p "$d"
  local status=0
  env -u LD_PRELOAD \
    MFIGUARD_CONFIG="$scratch/empty.conf" \
    MFIGUARD_DEVICE=/dev/null \
    MFIGUARD_LOG="$d/audit.jsonl" \
    MFIGUARD_MODE=enforce \
    MFISIM_RECORD="$d/sim.jsonl" \
    "${envs[@]}" \
    LD_PRELOAD="$guard $sim${PRELOAD_EXTRA:+ $PRELOAD_EXTRA}" \
    "${vg[@]}" "$client" --device /dev/null "$@" \
    >"$d/stdout" 2>"$d/stderr" </dev/null || status=$?
  if [[ $status -eq $expect ]] && { [[ $expect -eq 99 ]] || ! grep -q '^==[0-9]*== ' "$d/stderr"; }; then
    printf 'ok    %-40s exit %s\n' "$name" "$status"
  else
    failed=$((failed + 1))
    printf 'FAIL  %-40s exit %s (expected %s; 99 = memcheck errors)\n' "$name" "$status" "$expect"
    sed 's/^/      /' "$d/stdout" "$d/stderr"
  fi
}

# The lane's own check: an uninitialised read in a preloaded library must fail the run (99).
if command -v cc >/dev/null; then
  cat >"$scratch/bad.c" <<'C'
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void bad(void) {
  volatile int *p = malloc(4 * sizeof(int));
  if (p[2] == 42)
    write(2, "?", 1);
  free((void *)p);
}
C
  cc -shared -fPIC -O0 -o "$scratch/bad.so" "$scratch/bad.c"
  PRELOAD_EXTRA=$scratch/bad.so run 99 -- ctrl-info
  if [[ $failed -ne 0 ]]; then
    echo "valgrind.sh: memcheck did not report a known error: the lane checks nothing" >&2
    exit 1
  fi
else
  echo "note: no C compiler: the self-check (a known error must fail the run) is skipped"
fi

# What a monitoring tool sends, and the seed's probe (rewritten).
run 0 -- ctrl-info
run 0 -- pd-list
run 0 -- inquiry 8
run 0 -- stp-probe 10
run 0 -- ieee-dcmd
run 0 -- aen
run 0 -- unrelated
# Refused packets (the same refusal path for every rule), and two rewrites.
for rule in ioc.sge-count frame.cmd-forbidden sgl.bounds sense.bounds sge.length; do
  run 1 -- rule "$rule"
done
run 0 -- rule sgl.stale-entry
run 0 -- rule sense.length-mismatch
# Read-only policy: a refused write command; SMP, whose request buffer the guard copies in:
# discovery passes, PHY CONTROL is refused, an unmapped request is EFAULT, a request flipped
# during the call.
run 1 MFIGUARD_MODE=readonly -- rule readonly.dcmd
run 0 MFIGUARD_MODE=readonly -- smp 0x10
run 1 MFIGUARD_MODE=readonly -- smp 0x91
run 1 MFIGUARD_MODE=readonly -- smp 0x10 unmapped
run 0 MFIGUARD_MODE=readonly -- smp-race 200
# Hostile pointers: unreadable packets, a misaligned one, bad sense and iovec pointers.
for kind in unmapped null span short readonly sense-unmapped iovec-unmapped iovec-readonly \
  iovec-unmapped-rule; do
  run 1 -- fault "$kind"
done
run 0 -- fault misaligned
run 0 -- fault edge
# Threads, a packet mutated in flight, forked children, signal handlers issuing ioctls.
run 0 -- threads 4 50
run 0 -- stress 4 300
run 0 -- fork 2 3
run 0 -- signals 200 2000
# Sinks: stderr, syslog (absent or not), a full disk, a log that cannot be opened, and
# MFIGUARD_LOG_REQUIRED=1 failing closed.
run 0 MFIGUARD_LOG=stderr MFIGUARD_AUDIT=all -- ieee-dcmd
run 0 MFIGUARD_LOG=syslog MFIGUARD_AUDIT=all -- ieee-dcmd
run 0 MFIGUARD_LOG=/dev/full -- --repeat 3 ieee-dcmd
run 0 MFIGUARD_LOG=/nonexistent/dir/mfiguard.log -- ieee-dcmd
run 1 MFIGUARD_LOG=/dev/full MFIGUARD_LOG_REQUIRED=1 -- ieee-dcmd

echo
if [[ $failed -ne 0 ]]; then
  echo "valgrind.sh: $failed of $runs scenarios failed"
  exit 1
fi
echo "valgrind.sh: $runs scenarios, no memcheck error"
