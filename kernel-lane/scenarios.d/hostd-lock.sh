# shellcheck shell=sh
# Only mfiguard-hostd opens the driver's device (doc/hostd.md, "The lock"): a root tool that
# makes its own node of the driver's major, or opens the daemon's descriptor through /proc,
# or puts the driver's node back at the path, gets nothing through it (EPERM, no driver entry);
# the daemon still serves; stopped, it leaves the driver locked (fail closed); --restore-node
# removes the lock, recorded, and the driver answers again. Debian's 6.1 runs the BPF LSM (its
# lsm= list has bpf): hostd_lock checks the LSM programs in the ordinary boot; hostd_lock_cgroup
# boots without bpf in the list, and checks the cgroup device program.

# hostd_lock_check MECHANISM
hostd_lock_check() {
    hostd_only
    mech=$1
    f=$OUT/hostd-lock-$mech
    TAG=hostd-lock-$mech
    rm -f "$f".*
    ensure_node
    major=$(node_major)
    scratch=/tmp/scratch-lock
    rm -rf "$scratch" && mkdir -p "$scratch"
    # The watcher slowed down, so that a node put back at the path stays there to be tried.
    HOSTD_WATCH_MS=60000 hostd_start "$f.jsonl" ||
        fail "mfiguard-hostd did not start: $(tail -n 3 "$OUT/hostd.err")"
    grep -qF "locked to this daemon ($mech," "$OUT/hostd.err" || fail "not locked with $mech: $(grep -i lock "$OUT/hostd.err")"
    "$HOSTD" --status --json >"$f.status" 2>&1 || fail "--status: $(cat "$f.status")"
    for want in "\"mechanism\":\"$mech\"" '"probe":"refused"' "\"major\":$major"; do
        grep -qF "$want" "$f.status" || fail "--status --json lacks $want: $(cat "$f.status")"
    done
    # mfiguard-run --check says the same, in its text and in its JSON.
    if [ -x "$SUP" ]; then
        "$SUP" --check >"$f.check" 2>&1
        grep -qF "lock on the driver's device: " "$f.check" || fail "--check names no lock: $(grep -i lock "$f.check")"
        "$SUP" --check --json >"$f.check.json" 2>&1
        grep -qF "\"mechanism\":\"$mech\"" "$f.check.json" || fail "--check --json lacks the lock's mechanism $mech: $(head -c 400 "$f.check.json")"
    fi
    # 1. A root tool makes its own node of the driver's major and opens it.
    kernel_calls_reset
    if mknod "$scratch/node" c "$major" 0 2>"$f.mknod.err"; then
        made="its mknod allowed, its open refused"
        timeout 20 "$CLIENT" --device "$scratch/node" ctrl-info >"$f.own.out" 2>&1 && fail "a node of its own reached the driver: $(head -n 1 "$f.own.out")"
        grep -q 'Operation not permitted' "$f.own.out" || fail "its own node: $(head -n 1 "$f.own.out")"
    else
        made="its mknod refused"
        grep -q 'Operation not permitted' "$f.mknod.err" || fail "mknod: $(cat "$f.mknod.err")"
    fi
    # ... or opens the daemon's own descriptor of the driver through /proc.
    dfd=
    for l in /proc/"$HOSTD_PID"/fd/*; do
        [ "$(readlink "$l")" = /run/mfiguard/megaraid_sas_ioctl_node ] && dfd=$l && break
    done
    [ -n "$dfd" ] || fail "no descriptor of the driver's node in the daemon"
    timeout 20 "$CLIENT" --device "$dfd" ctrl-info >"$f.proc.out" 2>&1 && fail "the daemon's descriptor, reopened, reached the driver"
    grep -q 'Operation not permitted' "$f.proc.out" || fail "$dfd: $(head -n 1 "$f.proc.out")"
    # 2. The driver's node put back at the path (in one rename, as a tool would).
    if mknod "$NODE.new" c "$major" 0 2>/dev/null && mv -f "$NODE.new" "$NODE"; then
        timeout 20 "$CLIENT" ctrl-info >"$f.path.out" 2>&1 && fail "the driver's node at the path reached the driver"
        grep -q 'Operation not permitted' "$f.path.out" || fail "the driver's node at the path: $(head -n 1 "$f.path.out")"
        path="the driver's node at the path: open refused"
    else
        path="the driver's node cannot be made to put at the path"
    fi
    k=$(kernel_calls)
    [ "$k" = '?' ] || [ "$k" = 0 ] || fail "the driver's ioctl ran $k time(s) for the refused tools"
    # 3. The daemon still serves (its node put back, as its watcher would).
    mknod "$NODE.d" c 120 28006 && mv -f "$NODE.d" "$NODE"
    kernel_calls_reset
    timeout 20 "$CLIENT" ctrl-info >"$f.served.out" 2>&1 || fail "through the daemon: $(head -n 1 "$f.served.out")"
    k=$(kernel_calls)
    [ "$k" = '?' ] || [ "$k" = 1 ] || fail "the driver ran $k time(s) for one call through the daemon"
    [ "$(outcome_records "$f.jsonl")" -ge 1 ] || fail "no record of the call through the daemon"
    # The daemon holds the driver's node open: the driver cannot be unloaded under it.
    if [ "$mech" = cgroup-device ]; then
        rmmod megaraid_sas >"$f.rmmod.out" 2>&1 && fail "the driver was unloaded under the daemon"
        grep -q '^megaraid_sas ' /proc/modules || fail "the driver is gone"
    fi
    # 4. Stopped, the daemon leaves the driver locked.
    kill "$HOSTD_PID" && wait "$HOSTD_PID" 2>/dev/null
    HOSTD_PID=
    rm -f "$OUT/hostd.pid"
    kernel_calls_reset
    rm -f "$scratch/node"
    if mknod "$scratch/node" c "$major" 0 2>/dev/null; then
        timeout 20 "$CLIENT" --device "$scratch/node" ctrl-info >"$f.stopped.out" 2>&1 && fail "the driver was reached with the daemon stopped"
    fi
    "$HOSTD" --status --json >"$f.status2" 2>&1
    grep -qF '"probe":"refused"' "$f.status2" || fail "--status with the daemon stopped: $(cat "$f.status2")"
    k=$(kernel_calls)
    [ "$k" = '?' ] || [ "$k" = 0 ] || fail "the driver's ioctl ran $k time(s) with the daemon stopped"
    # 5. Removed by --restore-node, recorded: the driver answers again.
    MFIGUARD_LOG="$f.restore.jsonl" "$HOSTD" --restore-node >"$f.restore.out" 2>&1 || fail "--restore-node: $(cat "$f.restore.out")"
    grep -F '"key":"hostd.lock"' "$f.restore.jsonl" | grep -qF "($mech) was removed" || fail "no hostd.lock record of the removal: $(cat "$f.restore.jsonl")"
    [ -e /sys/fs/bpf/mfiguard ] && fail "pins left in /sys/fs/bpf/mfiguard: $(ls /sys/fs/bpf/mfiguard)"
    [ -c "$scratch/node" ] || mknod "$scratch/node" c "$major" 0 || fail "mknod after --restore-node"
    kernel_calls_reset
    timeout 20 "$CLIENT" --device "$scratch/node" ctrl-info >"$f.after.out" 2>&1 || fail "after --restore-node: $(head -n 1 "$f.after.out")"
    k=$(kernel_calls)
    [ "$k" = '?' ] || [ "$k" = 1 ] || fail "the driver ran $k time(s) after --restore-node"
    "$HOSTD" --status --json >"$f.status3" 2>&1
    grep -qF '"mechanism":null' "$f.status3" || fail "--status after the removal: $(cat "$f.status3")"
    rm -rf "$scratch"
    echo "$mech: a root tool's own node ($made), the daemon's descriptor reopened through /proc, $path: EPERM, 0 driver entries; the daemon served; stopped, the driver stayed locked; --restore-node removed it (recorded) and the driver answered; $(kernel_note)"
}

sc_hostd_lock() {
    hostd_lock_check bpf-lsm
}

# Debian's list without bpf: the cgroup v2 device program instead.
sc_hostd_lock_cgroup() { # boot lock-cgroup lsm=landlock,lockdown,yama,apparmor,tomoyo
    hostd_lock_check cgroup-device
}
