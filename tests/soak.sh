#!/usr/bin/env bash
# Soak: many guarded processes for a chosen time while the log rotates and the configuration
# file is rewritten (and, under the supervisor, supervisors are killed); then what reached the
# (simulated) driver is checked against what the clients did and what the guard recorded. Not a
# timed test: run it by hand, or from .ci/run. Method and the last full runs' figures: doc/soak.md.
#
#   tests/soak.sh [--seconds N] [--via preload|supervise|ptrace] [--procs N] [--threads N]
#                 [--pace-us N] [--rotate-every S] [--kill-every S] [--profile release|dev]
#                 [--dir DIR] [--keep]
#
# - --procs long-lived clients (default 8), each `mfi_client soak` with --threads threads
#   (default 4) for the whole run, cycling a monitoring read (clean DCMD), the seed's flags on a
#   DCMD (rewritten), a packet a rule refuses (EINVAL), a writing DCMD (EPERM in readonly mode,
#   passed in enforce) and FIONREAD on a pipe, sleeping --pace-us (default 20000) after each;
# - meanwhile one-shot clients (a MegaCli run from cron: one call each, the four kinds in turn),
#   started one after another, each reading the configuration afresh;
# - the configuration file is rewritten every 2 seconds (mode enforce <-> readonly, replaced by
#   rename as configuration tools do), the audit log is rotated by rename every --rotate-every
#   seconds (default 5; what logrotate's `create` does);
# - under supervise and ptrace, every --kill-every seconds (default 10; 0: never) the supervisor
#   of a random long-lived client still guarded is killed with SIGKILL, and a replacement client
#   starts under a new supervisor for the rest of the run. The orphaned client's later MegaRAID
#   calls must fail with ENOSYS (supervise), or the client must die with its tracer (ptrace).
#
# Prints: calls made, calls guarded, records written, records lost, unguarded calls reaching
# the simulator, crashes, supervisors killed, RSS at start and end of each long-lived client
# (and of each supervisor that lived to the end). Exits 1 unless unguarded = 0, lost = 0,
# crashes = 0, no cut or interleaved record line, and RSS flat (no process grew by more than
# 1 MiB, or 10%).
#
# --via says how a client is put under the guard. `preload`: LD_PRELOAD="libmfiguard.so
# liblegacy_sim.so". `supervise` and `ptrace`: `mfiguard-run --via MECHANISM -- mfi_client ...`,
# one supervisor per client process, with the simulator preloaded into mfiguard-run (the driver
# the supervisor calls) and inert in the client (MFISIM_ONLY_IN=mfiguard-run).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=600 via=preload procs=8 threads=4 pace_us=20000 rotate_every=5 kill_every=10
profile=release dir="" keep=0
die() { echo "soak: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) secs=${2:?}; shift ;;
	--via) via=${2:?}; shift ;;
	--procs) procs=${2:?}; shift ;;
	--threads) threads=${2:?}; shift ;;
	--pace-us) pace_us=${2:?}; shift ;;
	--rotate-every) rotate_every=${2:?}; shift ;;
	--kill-every) kill_every=${2:?}; shift ;;
	--profile) profile=${2:?}; shift ;;
	--dir) dir=${2:?}; shift ;;
	--keep) keep=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done
case $via in
preload) kill_every=0 ;;
supervise | ptrace) ;;
*) die "unknown --via $via (known: preload, supervise, ptrace)" ;;
esac
[ "$secs" -ge 5 ] || die "--seconds must be at least 5"

case $profile in
dev) pdir=debug ;;
*) pdir=$profile ;;
esac
echo "soak: building ($profile)"
cargo build -q --profile "$profile" -p mfiguard-preload --lib
cargo build -q --profile "$profile" -p mfiguard --example mfi_client --example legacy_sim
[ "$via" = preload ] || cargo build -q --profile "$profile" -p mfiguard-cli
lib=$PWD/target/$pdir/libmfiguard.so
sim=$PWD/target/$pdir/examples/liblegacy_sim.so
client=$PWD/target/$pdir/examples/mfi_client
run=$PWD/target/$pdir/mfiguard-run
for f in "$lib" "$sim" "$client"; do [ -e "$f" ] || die "$f missing"; done
[ "$via" = preload ] || [ -x "$run" ] || die "$run missing"

[ -n "$dir" ] || dir=$PWD/target/soak/$(date -u +%Y%m%dT%H%M%SZ)
if [ -e "$dir/log" ] || [ -e "$dir/out" ]; then die "$dir holds an earlier run"; fi
mkdir -p "$dir/log" "$dir/out" "$dir/sim"
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
# The simulator's record: one file per long-lived guard process (sim/SLOT.jsonl), one for all
# the one-shots (sim/oneshot.jsonl), so that a call is attributed to the process that made it
# even when pids are reused (pid_max may be 32768: a run wraps around it).

# Client arguments...; how a client is put under the guard. It replaces the (sub)shell it runs
# in, so that `launch ... &` makes $! the guard process itself: the client under preload, its
# supervisor (mfiguard-run, whose only child is the client) otherwise.
launch() {
	case $via in
	preload) LD_PRELOAD="$lib $sim" exec "$client" --device /dev/null "$@" ;;
	*)
		LD_PRELOAD="$sim" MFISIM_ONLY_IN="${run##*/}" \
			exec "$run" --via "$via" -- "$client" --device /dev/null "$@"
		;;
	esac
}

kill_note=""
[ "$via" = preload ] || kill_note=", a supervisor killed every ${kill_every} s (0: none)"
echo "soak: $secs s, via $via, $procs processes x $threads threads (pace ${pace_us} us)$kill_note," \
	"in $dir"
start=$(date +%s)
end=$((start + secs))

# Long-lived clients, one slot each (a replacement gets a new slot). guard[i]: the process
# started ($!); client[i]: the client's pid (the supervisor's child); out/slots: one line per
# slot, "i guard client seconds started_at".
guard=() client_pid=() started=() rss_start=() killed=()
child_of() { # $1 = supervisor pid: its child (the client), once it has forked
	local c="" n=0
	while [ -z "$c" ] && [ $n -lt 200 ]; do
		c=$(pgrep -P "$1" | head -n 1 || true)
		[ -n "$c" ] || sleep 0.02
		n=$((n + 1))
	done
	echo "${c:-0}"
}
start_client() { # $1 = slot, $2 = seconds
	MFISIM_RECORD=$dir/sim/$1.jsonl launch soak "$threads" "$2" "$pace_us" \
		>"$dir/out/soak.$1" 2>"$dir/out/soak.$1.err" &
	guard[$1]=$!
	if [ "$via" = preload ]; then client_pid[$1]=$!; else client_pid[$1]=$(child_of $!); fi
	started[$1]=$(date +%s)
	echo "$1 ${guard[$1]} ${client_pid[$1]} $2 ${started[$1]}" >>"$dir/out/slots"
}
vm_rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null || true; }

for i in $(seq 1 "$procs"); do start_client "$i" "$secs"; done
slots=$procs

# One-shot clients until the end; out/oneshot.status: each one's exit status; out/oneshot.pids:
# each one's guard process (the client under preload, its supervisor otherwise).
(
	export MFISIM_RECORD=$dir/sim/oneshot.jsonl
	kinds=("ctrl-info" "ieee-dcmd" "rule sgl.bounds" "dcmd 0x04030000 none 0")
	n=0
	while [ "$(date +%s)" -lt $((end - 1)) ]; do
		set +e
		# shellcheck disable=SC2086 # the kind is several words
		launch ${kinds[$((n % 4))]} >/dev/null 2>>"$dir/out/oneshot.err" &
		echo $! >>"$dir/out/oneshot.pids"
		wait $!
		echo $? >>"$dir/out/oneshot.status"
		set -e
		n=$((n + 1))
		sleep 0.2
	done
) &
oneshot=$!

# The configuration and the log changed under the clients' feet; supervisors killed.
rotations=0 rewrites=0 kills=0 mode=enforce next_rotate=$((start + rotate_every))
next_conf=$((start + 2)) next_kill=$((start + kill_every)) end_sampled=0
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
	if [ "$via" != preload ]; then
		# Each supervisor's RSS 2 s after it started, and 2 s before the end (its client runs
		# until the end, so it is still serving then).
		for i in $(seq 1 "$slots"); do
			if [ -z "${rss_start[$i]:-}" ] && [ -z "${killed[$i]:-}" ] &&
				[ "$now" -ge $((started[i] + 2)) ]; then
				rss_start[i]=$(vm_rss "${guard[$i]}")
			fi
		done
		if [ $end_sampled -eq 0 ] && [ "$now" -ge $((end - 2)) ]; then
			end_sampled=1
			for i in $(seq 1 "$slots"); do
				[ -z "${killed[$i]:-}" ] || continue
				echo "$i ${rss_start[$i]:-0} $(vm_rss "${guard[$i]}")" >>"$dir/out/supervisor.rss"
			done
		fi
	fi
	# A random guarded long-lived client loses its supervisor; a replacement takes its place
	# for the rest of the run (never in the last 10 s: the replacement must live long enough to
	# be measured). out/kills: "slot supervisor client time status".
	if [ "$kill_every" -gt 0 ] && [ "$now" -ge "$next_kill" ] && [ "$now" -le $((end - 10)) ]; then
		alive=()
		for i in $(seq 1 "$slots"); do [ -n "${killed[$i]:-}" ] || alive+=("$i"); done
		i=${alive[$((RANDOM % ${#alive[@]}))]}
		kill -KILL "${guard[$i]}"
		set +e
		wait "${guard[$i]}" 2>/dev/null
		rc=$?
		set -e
		killed[i]=$now
		kills=$((kills + 1))
		echo "$i ${guard[$i]} ${client_pid[$i]} $now $rc" >>"$dir/out/kills"
		slots=$((slots + 1))
		start_client "$slots" $((end - now))
		next_kill=$((now + kill_every))
	fi
	sleep 0.25
done

status=0
crashed=0
for i in $(seq 1 "$slots"); do
	[ -z "${killed[$i]:-}" ] || continue
	set +e
	wait "${guard[$i]}"
	rc=$?
	set -e
	if [ "$rc" -ge 128 ]; then crashed=$((crashed + 1)); elif [ "$rc" -ne 0 ]; then status=1; fi
done
wait "$oneshot" || true
# A client whose supervisor was killed is nobody's child here: under supervise it runs to its
# end (wait for it, so that its summary is written); under ptrace it died with its tracer (its
# pid may have been reused since: only our client's command line counts).
if [ -e "$dir/out/kills" ]; then
	while read -r _ _ c _ _; do
		n=0
		while [ "$c" -gt 0 ] && grep -qa soak "/proc/$c/cmdline" 2>/dev/null && [ $n -lt 600 ]; do
			sleep 0.1
			n=$((n + 1))
		done
	done <"$dir/out/kills"
fi

py_rc=0
python3 - "$dir" "$crashed" "$rotations" "$rewrites" "$secs" "$via" "$threads" "$pace_us" \
	<<'EOF' || py_rc=$?
import glob, json, os, sys
from collections import defaultdict

d, crashed, rotations, rewrites, secs, via, threads, pace = sys.argv[1:9]
crashed = int(crashed)
supervised = via != "preload"


def lines(name):
    p = f"{d}/out/{name}"
    return [l.split() for l in open(p) if l.strip()] if os.path.exists(p) else []


# The long-lived clients ("slot guard client seconds started_at"), the supervisors killed
# ("slot supervisor client time status"), the one-shots' guard processes and exit statuses.
slots = {int(l[0]): {"guard": int(l[1]), "client": int(l[2]), "secs": l[3]}
         for l in lines("slots")}
kills = {int(l[0]): int(l[4]) for l in lines("kills")}
statuses = [int(l[0]) for l in lines("oneshot.status")]

# What the clients did (their own summaries).
made = megaraid = enosys = other = unrelated_failed = 0
rss = []
summary = {}
for i in sorted(slots):
    text = open(f"{d}/out/soak.{i}").read().split()
    f = dict(w.split("=", 1) for w in text if "=" in w)
    if not f:
        continue
    f = {k: int(v) for k, v in f.items()}
    summary[i] = f
    made += f["calls"]; megaraid += f["megaraid"]; enosys += f["enosys"]; other += f["other"]
    unrelated_failed += f["unrelated_failed"]
    rss.append((f"client {i}", f["rss_start_kb"], f["rss_end_kb"]))
oneshots = len(statuses)
oneshot_crashed = sum(1 for s in statuses if s >= 128)
oneshot_bad = sum(1 for s in statuses if s not in (0, 1) and s < 128)
made += oneshots
megaraid += oneshots
panics = 0
for e in glob.glob(f"{d}/out/*.err"):
    panics += open(e, errors="replace").read().count("panicked")
for l in lines("supervisor.rss"):
    rss.append((f"supervisor {l[0]}", int(l[1]) if len(l) > 1 else 0,
                int(l[2]) if len(l) > 2 else 0))

# What the guard recorded (every rotated piece and the live file), by process: a long-lived
# client's records carry its pid and its argv ("soak THREADS SECONDS PACE"), which tell it
# from every other process even if a pid is reused; `seq` counts a guarding process's calls
# from 1 (the supervisor's, or the client's own under preload), shared by a call's two records.
slot_of = {(s["client"], f"soak {threads} {s['secs']} {pace}"): i for i, s in slots.items()}
per = defaultdict(lambda: {"dec": [], "out": [], "kern": set()})
written = decisions = outcomes = kernel_outcomes = reported_lost = errors = corrupt = 0
leaky_sent = stray_records = 0
os_written = os_outcomes = 0
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
            argv = r.get("argv") or []
            i = slot_of.get((r.get("pid"), " ".join(argv[3:])))
            if kind == "decision":
                decisions += 1
            elif kind == "outcome":
                outcomes += 1
                if r.get("latency_us") is not None:
                    kernel_outcomes += 1
            if i is not None:
                if kind == "decision":
                    per[i]["dec"].append(r.get("seq"))
                elif kind == "outcome":
                    per[i]["out"].append(r.get("seq"))
                    if r.get("latency_us") is not None:
                        per[i]["kern"].add(r.get("seq"))
            elif argv[3:4] == ["soak"]:
                stray_records += 1  # a long-lived client's record under no known slot
            else:
                os_written += 1
                os_outcomes += kind == "outcome"
            fs = r.get("flags_sent")
            if fs is not None and int(fs, 16) & 0x26:
                leaky_sent += 1

# What reached the simulated driver, by the process it ran in (the supervisor, or the client
# under preload): sim/SLOT.jsonl holds the calls of one long-lived guard process, whose pid it
# must carry; sim/oneshot.jsonl those of the one-shots. A record from any other process (a
# client whose simulator was not inert, say) is a call that went around the guard.
sim_calls = dangerous = stray_sim = 0
sim_by = defaultdict(int)  # slot (or "oneshot") -> calls
oneshot_guards = {int(l[0]) for l in lines("oneshot.pids")}
for path in sorted(glob.glob(f"{d}/sim/*.jsonl")):
    name = os.path.basename(path)[:-len(".jsonl")]
    slot = int(name) if name.isdigit() and int(name) in slots else None
    with open(path, errors="replace") as fh:
        for line in fh:
            try:
                s = json.loads(line)
            except ValueError:
                corrupt += 1
                continue
            sim_calls += 1
            if slot is not None and s.get("pid") == slots[slot]["guard"]:
                sim_by[slot] += 1
            elif name == "oneshot" and s.get("pid") in oneshot_guards:
                sim_by["oneshot"] += 1
            else:
                stray_sim += 1
        flags = s.get("flags")
        flags = int(flags, 16) if isinstance(flags, str) else (flags if flags is not None else -1)
        if (flags < 0 or flags & 0x26 or s.get("out_of_frame_writes") or s.get("wild_dma")
                or s.get("sgl_overrun")):
            dangerous += 1

# Each long-lived client's records, checked against its own counts and by seq. A supervisor
# serves one call at a time and answers a call before it writes the call's outcome record, so
# a kill leaves at most one call in flight, the supervisor's last: the highest seq of its
# client's records, or the call after it. That call may have
#   - a decision without an outcome, the client getting ENOSYS (killed before the answer),
#   - a decision without an outcome, the client getting its answer (killed between the answer
#     and the outcome record), or, for a call refused before the driver, no record at all,
#   - an outcome the client never got (killed after the record, before the answer).
# Which one is told by the client's own count of answered calls (all but its ENOSYS) against
# its outcome records; that call is set apart as "in flight at a kill" (at most one per kill,
# only for a supervisor this run killed) and every other record is counted as before. A
# decision without an outcome anywhere but at a killed supervisor's last seq, a gap in the
# seqs, or a count that differs by more than that one call is lost.
lost = seq_gaps = orphans = lonely = dups = surplus = 0
inflight = defaultdict(int)
excused_sim = kill_bad = enosys_unkilled = 0
died_with_tracer = survived_tracer = orphan_died = 0
ptrace_killed_calls = 0
for i, s in slots.items():
    rec = per[i]
    dec, out, kern = set(rec["dec"]), set(rec["out"]), rec["kern"]
    dups += len(rec["dec"]) - len(dec) + len(rec["out"]) - len(out)
    seqs = dec | out
    top = max(seqs) if seqs else 0
    gaps_i = sum(1 for q in range(1, top + 1) if q not in seqs)
    seq_gaps += gaps_i
    lonely += len(kern - dec)
    orph = dec - out
    f = summary.get(i)
    killed = i in kills
    sim_i = sim_by.get(i, 0)
    written_i = len(rec["dec"]) + len(rec["out"])
    if killed:
        kill_bad += kills[i] != 137  # the supervisor did not die of our SIGKILL
    if f is None:
        if killed and via == "ptrace":
            # The client's counts died with it: only the records' seqs can be checked.
            died_with_tracer += 1
            ptrace_killed_calls += len(out) + len(orph)
            if orph == {top}:
                inflight["decision, client killed"] += 1
                orph = set()
                excused_sim += sim_i - len(kern) == 1
        elif killed:
            orphan_died += 1  # under supervise the client outlives its supervisor
        orphans += len(orph)
        continue
    if killed and via == "ptrace":
        survived_tracer += 1
    if killed and via == "supervise" and f["enosys"] == 0:
        kill_bad += 1  # no call failed closed after the kill
    if not killed:
        enosys_unkilled += f["enosys"]
    answered = f["megaraid"] - f["enosys"]
    ir = undelivered = 0  # the in-flight call reached the simulator; its outcome is on record
    if killed and orph == {top} and len(out) == answered:
        inflight["decision, client got ENOSYS"] += 1
        orph, ir, written_i = set(), int(sim_i - len(kern) == 1), written_i - 1
    elif killed and orph == {top} and len(out) == answered - 1:
        inflight["decision, client got its answer, outcome not written"] += 1
        orph, ir, written_i, answered = set(), int(sim_i - len(kern) == 1), written_i - 1, answered - 1
    elif killed and not orph and not gaps_i and len(out) == answered - 1:
        inflight["refused, client got its answer, outcome not written"] += 1
        answered -= 1
    elif killed and not orph and len(out) == answered + 1 and top in out:
        inflight["outcome, client got ENOSYS"] += 1
        ir, undelivered = int(top in kern), 1
        written_i -= 1 + ir
    orphans += len(orph)
    excused_sim += ir
    # The original count, on the client's answered calls, the in-flight call set apart.
    reached = sim_i - ir
    expected_i = 2 * reached + (answered - reached)
    lost += max(0, expected_i - written_i)
    surplus += max(0, len(out) - undelivered - answered)

# One-shot clients: one call each, nothing killed.
os_sim = sim_by.get("oneshot", 0)
os_expected = 2 * os_sim + (oneshots - os_sim)
lost += max(0, os_expected - os_written)
surplus += max(0, os_outcomes - oneshots)

n_inflight = sum(inflight.values())
expected = written + lost  # for the figure: what the count expected, in-flight calls included
unaccounted = max(0, sim_calls - kernel_outcomes - excused_sim)
unguarded = dangerous + unaccounted + stray_sim
missing = sum(1 for i in slots if i not in summary and i not in kills)
crashes = crashed + oneshot_crashed + panics + orphan_died + missing
answered = megaraid - enosys
# Every call a client counted as answered has its outcome record (the original check, with
# ENOSYS calls, the in-flight calls and the clients that died with their tracer set apart).
outcomes_unsummed = sum(len(per[i]["out"]) for i in slots if i not in summary)
answered_recorded = outcomes - outcomes_unsummed - inflight["outcome, client got ENOSYS"] \
    + inflight["decision, client got its answer, outcome not written"] \
    + inflight["refused, client got its answer, outcome not written"]
grew = [n for n, a, b in rss if b - a > max(1024, a // 10) or a == 0 or b == 0]

print(f"soak: {secs} s via {via}: {len(slots)} long-lived clients ({len(kills)} replacements), "
      f"{oneshots} one-shot clients, {rotations} log rotations, {rewrites} configuration rewrites")
print(f"calls made:                 {made} ({megaraid} MegaRAID, {made - megaraid} unrelated)"
      + (f"; plus {ptrace_killed_calls} MegaRAID calls on record from {died_with_tracer} "
         f"clients that died with their tracer" if died_with_tracer else ""))
print(f"calls guarded:              {outcomes} (outcome records); {sim_calls} reached the "
      f"simulator, {outcomes - kernel_outcomes} refused before it")
print(f"records written:            {written} ({decisions} decision, {outcomes} outcome; "
      f"{errors} configuration errors; {corrupt} cut or interleaved lines)")
print(f"records lost:               {lost} (expected {expected}; records_lost reported: "
      f"{reported_lost}); by seq: {seq_gaps} gaps, {orphans} decisions without outcome, "
      f"{lonely} kernel outcomes without decision, {dups} duplicates, {stray_records} stray, "
      f"{surplus} outcomes beyond the calls")
if supervised:
    print(f"supervisors killed:         {len(kills)} ({kill_bad} not as expected); calls in "
          f"flight at a kill: {n_inflight}"
          + "".join(f", {n} {k}" for k, n in sorted(inflight.items()) if n)
          + f" ({excused_sim} of them reached the simulator); "
          + (f"{died_with_tracer} clients died with their tracer, {survived_tracer} survived it"
             if via == "ptrace" else
             f"{enosys} calls failed with ENOSYS after a kill ({enosys_unkilled} without one)"))
print(f"unguarded calls at the sim: {unguarded} ({dangerous} with a dangerous frame, "
      f"{unaccounted} without a guard record, {stray_sim} in a process we did not guard)")
print(f"crashes:                    {crashes} (killed: {crashed} long-lived, {oneshot_crashed} "
      f"one-shot; panics: {panics}; ended without a summary: {orphan_died + missing}); other "
      f"failures: {other} unexpected results, {unrelated_failed} unrelated calls failed, "
      f"{oneshot_bad} one-shot usage errors")
clients = [(a, b) for n, a, b in rss if n.startswith("client")]
sups = [(a, b) for n, a, b in rss if n.startswith("supervisor")]
for what, xs in (("clients", clients), ("supervisors", sups)):
    if xs:
        print(f"RSS start -> end (KiB):     {what}: {sum(a for a, _ in xs)} -> "
              f"{sum(b for _, b in xs)} in all; per process: "
              + ", ".join(f"{a}->{b}" for a, b in xs))
ok = (unguarded == 0 and lost == 0 and crashes == 0 and corrupt == 0 and not grew
      and other == 0 and unrelated_failed == 0 and oneshot_bad == 0 and leaky_sent == 0
      and seq_gaps == 0 and orphans == 0 and lonely == 0 and dups == 0 and stray_records == 0
      and surplus == 0 and kill_bad == 0 and enosys_unkilled == 0 and survived_tracer == 0
      and answered == answered_recorded and n_inflight <= len(kills)
      and all(s["client"] > 0 for s in slots.values())
      and (not supervised or len(sups) == len(slots) - len(kills)))
print("soak: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
EOF
status=$((status | py_rc))
if [ "$keep" -eq 0 ] && [ $status -eq 0 ]; then rm -rf "$dir/log" "$dir/sim"; fi
exit $status
