#!/usr/bin/env bash
# Soak: many guarded processes for a chosen time while the log rotates and the configuration
# file is rewritten; then what reached the (simulated) driver is checked against what the
# clients did and what the guard recorded. Not a timed test: run it by hand, or from .ci/run
# for 60 seconds. Method and the last full run's figures: doc/soak.md.
#
#   tests/soak.sh [--seconds N] [--via preload] [--procs N] [--threads N] [--pace-us N]
#                 [--rotate-every S] [--profile release|dev] [--dir DIR] [--keep]
#
# - --procs long-lived clients (default 8), each `mfi_client soak` with --threads threads
#   (default 4) for the whole run, cycling a monitoring read (clean DCMD), the seed's flags on a
#   DCMD (rewritten), a packet a rule refuses (EINVAL), a writing DCMD (EPERM in readonly mode,
#   passed in enforce) and FIONREAD on a pipe, sleeping --pace-us (default 20000) after each;
# - meanwhile one-shot clients (a MegaCli run from cron: one call each, the four kinds in turn),
#   started one after another, each reading the configuration afresh;
# - the configuration file is rewritten every 2 seconds (mode enforce <-> readonly, replaced by
#   rename as configuration tools do), the audit log is rotated by rename every --rotate-every
#   seconds (default 5; what logrotate's `create` does).
#
# Prints: calls made, calls guarded, records written, records lost, unguarded calls reaching
# the simulator, crashes, RSS at start and end of each long-lived client. Exits 1 unless
# unguarded = 0, lost = 0, crashes = 0, no cut or interleaved record line, and RSS flat (no
# client grew by more than 1 MiB, or 10%).
#
# --via says how a client is put under the guard. `preload`: LD_PRELOAD="libmfiguard.so
# liblegacy_sim.so". Another mechanism (the supervisor) is one more case in `launch` below;
# the simulator must stay preloaded, as it is the driver the calls reach.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=600 via=preload procs=8 threads=4 pace_us=20000 rotate_every=5 profile=release
dir="" keep=0
die() { echo "soak: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) secs=${2:?}; shift ;;
	--via) via=${2:?}; shift ;;
	--procs) procs=${2:?}; shift ;;
	--threads) threads=${2:?}; shift ;;
	--pace-us) pace_us=${2:?}; shift ;;
	--rotate-every) rotate_every=${2:?}; shift ;;
	--profile) profile=${2:?}; shift ;;
	--dir) dir=${2:?}; shift ;;
	--keep) keep=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
case $via in
preload) ;;
*) die "unknown --via $via (known: preload)" ;;
esac
[ "$secs" -ge 5 ] || die "--seconds must be at least 5"

case $profile in
dev) pdir=debug ;;
*) pdir=$profile ;;
esac
echo "soak: building ($profile)"
cargo build -q --profile "$profile" -p mfiguard-preload --lib
cargo build -q --profile "$profile" -p mfiguard --example mfi_client --example legacy_sim
lib=$PWD/target/$pdir/libmfiguard.so
sim=$PWD/target/$pdir/examples/liblegacy_sim.so
client=$PWD/target/$pdir/examples/mfi_client
for f in "$lib" "$sim" "$client"; do [ -e "$f" ] || die "$f missing"; done

[ -n "$dir" ] || dir=$PWD/target/soak/$(date -u +%Y%m%dT%H%M%SZ)
if [ -e "$dir/log" ] || [ -e "$dir/out" ]; then die "$dir holds an earlier run"; fi
mkdir -p "$dir/log" "$dir/out"
dir=$(cd "$dir" && pwd)
conf=$dir/mfiguard.conf

write_conf() { # $1 = mode; replaced whole, by rename
	printf '# soak: rewritten every 2 s\nmode = %s\naudit = all\n' "$1" >"$conf.tmp"
	mv -f "$conf.tmp" "$conf"
}
write_conf enforce

# Only what the run sets: no site configuration, no inherited guard settings.
for v in $(env | sed -n 's/^\(MFIGUARD_[A-Z_]*\|MFISIM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export MFIGUARD_CONFIG=$conf MFIGUARD_DEVICE=/dev/null MFIGUARD_LOG=$dir/log/audit.jsonl
export MFISIM_RECORD=$dir/sim.jsonl

launch() { # client arguments...; how a client is put under the guard
	case $via in
	preload) LD_PRELOAD="$lib $sim" "$client" --device /dev/null "$@" ;;
	esac
}

echo "soak: $secs s, via $via, $procs processes x $threads threads (pace ${pace_us} us), in $dir"
start=$(date +%s)
end=$((start + secs))

pids=()
for i in $(seq 1 "$procs"); do
	launch soak "$threads" "$secs" "$pace_us" >"$dir/out/soak.$i" 2>"$dir/out/soak.$i.err" &
	pids+=($!)
done

# One-shot clients until the end; each line: the exit status.
(
	kinds=("ctrl-info" "ieee-dcmd" "rule sgl.bounds" "dcmd 0x04030000 none 0")
	n=0
	while [ "$(date +%s)" -lt $((end - 1)) ]; do
		set +e
		# shellcheck disable=SC2086 # the kind is several words
		launch ${kinds[$((n % 4))]} >/dev/null 2>>"$dir/out/oneshot.err"
		echo $? >>"$dir/out/oneshot.status"
		set -e
		n=$((n + 1))
		sleep 0.2
	done
) &
oneshot=$!

# The configuration and the log, changed under the clients' feet.
rotations=0 rewrites=0 mode=enforce next_rotate=$((start + rotate_every)) next_conf=$((start + 2))
while [ "$(date +%s)" -lt "$end" ]; do
	now=$(date +%s)
	if [ "$now" -ge "$next_conf" ]; then
		if [ "$mode" = enforce ]; then mode="readonly"; else mode="enforce"; fi
		write_conf $mode
		rewrites=$((rewrites + 1))
		next_conf=$((now + 2))
	fi
	if [ "$now" -ge "$next_rotate" ] && [ -e "$dir/log/audit.jsonl" ]; then
		rotations=$((rotations + 1))
		mv "$dir/log/audit.jsonl" "$dir/log/audit.jsonl.$rotations"
		next_rotate=$((now + rotate_every))
	fi
	sleep 0.25
done

status=0
crashed=0
for p in "${pids[@]}"; do
	set +e
	wait "$p"
	rc=$?
	set -e
	if [ "$rc" -ge 128 ]; then crashed=$((crashed + 1)); elif [ "$rc" -ne 0 ]; then status=1; fi
done
wait "$oneshot" || true

py_rc=0
python3 - "$dir" "$procs" "$rotations" "$rewrites" "$crashed" "$secs" "$via" <<'EOF' || py_rc=$?
import glob, json, os, sys

d, procs, rotations, rewrites, crashed, secs, via = sys.argv[1:8]
procs, crashed = int(procs), int(crashed)

# What the clients did.
made = megaraid = other = unrelated_failed = 0
rss = []
for i in range(1, procs + 1):
    text = open(f"{d}/out/soak.{i}").read().split()
    f = dict(w.split("=", 1) for w in text if "=" in w)
    if not f:
        print(f"soak client {i}: no summary line (died?)")
        continue
    made += int(f["calls"]); megaraid += int(f["megaraid"]); other += int(f["other"])
    unrelated_failed += int(f["unrelated_failed"])
    rss.append((int(f["rss_start_kb"]), int(f["rss_end_kb"])))
statuses = [int(s) for s in open(f"{d}/out/oneshot.status").read().split()] \
    if os.path.exists(f"{d}/out/oneshot.status") else []
oneshots = len(statuses)
oneshot_crashed = sum(1 for s in statuses if s >= 128)
oneshot_bad = sum(1 for s in statuses if s not in (0, 1) and s < 128)
made += oneshots
megaraid += oneshots
panics = 0
for e in glob.glob(f"{d}/out/*.err"):
    panics += open(e, errors="replace").read().count("panicked")

# What the guard recorded (every rotated piece and the live file).
written = decisions = outcomes = kernel_outcomes = reported_lost = errors = corrupt = 0
leaky_sent = 0
for path in sorted(glob.glob(f"{d}/log/audit.jsonl*")):
    with open(path, errors="replace") as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except ValueError:
                corrupt += 1
                continue
            kind = r.get("record")
            if kind == "error":
                errors += 1
                continue
            written += 1
            reported_lost += r.get("records_lost", 0)
            if kind == "decision":
                decisions += 1
            elif kind == "outcome":
                outcomes += 1
                if r.get("latency_us") is not None:
                    kernel_outcomes += 1
            fs = r.get("flags_sent")
            if fs is not None and int(fs, 16) & 0x26:
                leaky_sent += 1

# What reached the simulated driver.
sim_calls = dangerous = 0
with open(f"{d}/sim.jsonl", errors="replace") as fh:
    for line in fh:
        try:
            s = json.loads(line)
        except ValueError:
            corrupt += 1
            continue
        sim_calls += 1
        flags = s.get("flags")
        flags = int(flags, 16) if isinstance(flags, str) else (flags if flags is not None else -1)
        if (flags < 0 or flags & 0x26 or s.get("out_of_frame_writes") or s.get("wild_dma")
                or s.get("sgl_overrun")):
            dangerous += 1

# Each call that reached the driver has two records, each refused one one.
expected = 2 * sim_calls + (megaraid - sim_calls)
lost = max(0, expected - written)
unaccounted = max(0, sim_calls - kernel_outcomes)
unguarded = dangerous + unaccounted
crashes = crashed + oneshot_crashed + panics
start_total = sum(a for a, _ in rss)
end_total = sum(b for _, b in rss)
grew = [b - a for a, b in rss if b - a > max(1024, a // 10)]

print(f"soak: {secs} s via {via}: {procs} long-lived clients, {oneshots} one-shot clients, "
      f"{rotations} log rotations, {rewrites} configuration rewrites")
print(f"calls made:                 {made} ({megaraid} MegaRAID, {made - megaraid} unrelated)")
print(f"calls guarded:              {outcomes} (outcome records); {sim_calls} reached the "
      f"simulator, {megaraid - sim_calls} refused before it")
print(f"records written:            {written} ({decisions} decision, {outcomes} outcome; "
      f"{errors} configuration errors; {corrupt} cut or interleaved lines)")
print(f"records lost:               {lost} (expected {expected}; records_lost reported: "
      f"{reported_lost})")
print(f"unguarded calls at the sim: {unguarded} ({dangerous} with a dangerous frame, "
      f"{unaccounted} without a guard record)")
print(f"crashes:                    {crashes} (killed: {crashed} long-lived, {oneshot_crashed} "
      f"one-shot; panics: {panics}); other failures: {other} unexpected results, "
      f"{unrelated_failed} unrelated calls failed, {oneshot_bad} one-shot usage errors")
print(f"RSS start -> end (KiB):     {start_total} -> {end_total} in all; per process: "
      + ", ".join(f"{a}->{b}" for a, b in rss))
ok = (unguarded == 0 and lost == 0 and crashes == 0 and corrupt == 0 and not grew
      and other == 0 and unrelated_failed == 0 and oneshot_bad == 0 and leaky_sent == 0
      and megaraid == outcomes and len(rss) == procs)
print("soak: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
EOF
status=$((status | py_rc))
if [ "$keep" -eq 0 ] && [ $status -eq 0 ]; then rm -rf "$dir/log" "$dir/sim.jsonl"; fi
exit $status
