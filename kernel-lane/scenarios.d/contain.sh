# shellcheck shell=sh
# What a tool under mfiguard-run may try against the real driver to get a MegaRAID call past
# the guard (the rest is shown on the host, tests/supervisor.rs). Run with either mechanism
# (KL_SUP_ARGS: --via supervise in the main lane, --via ptrace in the ptrace lane).

# contain_begin TAG: the scenario's supervisor check, the driver's node, and its files
# ($OUT/TAG.sup.*, as `f`) cleared; the driver's calls counted from here.
contain_begin() {
    has_sup || { echo "no supervisor in the image (run.sh --supervisor)" && exit 77; }
    ensure_node
    TAG=$1
    f=$OUT/$TAG.sup
    rm -rf "$f".*
    kernel_calls_reset
}

# A root tool bind-mounts a /proc/devices without the driver's line, then sends CFG_CLEAR under
# the read-only policy. The guard recognises the driver's node by the major /proc/devices
# listed before the tool started: EPERM, the driver never called, readonly.dcmd recorded. (A
# guard that read the file again took the node for "another file" and executed the call.)
sc_contain_proc_devices() {
    contain_begin contain-procdev
    printf 'Character devices:\n  1 mem\n  4 tty\n\nBlock devices:\n  8 sd\n' >/tmp/fake-devices
    # shellcheck disable=SC2086 # KL_SUP_ARGS is words on purpose
    MFIGUARD_MODE=readonly MFIGUARD_LOG=$f.jsonl MFIGUARD_AUDIT=all timeout 30 "$SUP" $KL_SUP_ARGS \
        /bin/sh -c "mount --bind /tmp/fake-devices /proc/devices || exit 99; grep -c megaraid /proc/devices; exec $SUP_CLIENT dcmd 0x04030000 none 0" \
        >"$f.out" 2>"$f.err"
    echo $? >"$f.rc"
    kernel_calls >"$f.kcalls"
    kernel_packets >"$f.kpackets"
    umount /proc/devices 2>/dev/null
    [ "$(rc "$TAG" sup)" != 99 ] || fail "the bind mount failed: $(cat "$f.err")"
    grep -q megaraid_sas_ioctl /proc/devices || fail "/proc/devices still hides the driver after umount"
    head -n 1 "$f.out" | grep -qx 0 || fail "the tool saw the driver in its /proc/devices: $(head -n 1 "$f.out")"
    grep -qF 'ret=-1 errno=1 (EPERM)' "$f.out" || fail "CFG_CLEAR was not refused: $(sed -n 2p "$f.out") $(tail -n 2 "$f.err" | tr '\n' ' ')"
    reached_kernel "$TAG" sup 0
    no_packets "$TAG" sup
    recorded "$TAG" sup readonly.dcmd
    echo "CFG_CLEAR after a bind mount over /proc/devices: EPERM, readonly.dcmd recorded, driver never called ($SUP_GUARD); $(kernel_note)"
}

# A descendant left running when the tool's first process ends sends CFG_CLEAR under the
# read-only policy a second later. The guard outlives mfiguard-run (the supervisor's server, the
# tracer process) and keeps it guarded: EPERM, recorded, the driver never called; mfiguard-run
# returned the first process's status at once.
sc_contain_descendant() {
    contain_begin contain-desc
    # shellcheck disable=SC2086
    MFIGUARD_MODE=readonly MFIGUARD_LOG=$f.jsonl MFIGUARD_AUDIT=all timeout 30 "$SUP" $KL_SUP_ARGS \
        /bin/sh -c "(sleep 1; $SUP_CLIENT dcmd 0x04030000 none 0 >$f.bg.out 2>&1; echo \$? >$f.bg.rc) </dev/null >/dev/null 2>&1 & exit 3" \
        >"$f.out" 2>"$f.err"
    echo $? >"$f.rc"
    [ "$(rc "$TAG" sup)" = 3 ] || fail "mfiguard-run returned $(rc "$TAG" sup), not the first process's 3"
    i=0
    while [ ! -f "$f.bg.rc" ] && [ $i -lt 200 ]; do
        i=$((i + 1))
        usleep 100000
    done
    [ -f "$f.bg.rc" ] || fail "the descendant never finished"
    usleep 300000
    kernel_calls >"$f.kcalls"
    kernel_packets >"$f.kpackets"
    reached_kernel "$TAG" sup 0
    no_packets "$TAG" sup
    grep -qF 'ret=-1 errno=1 (EPERM)' "$f.bg.out" || fail "the descendant's CFG_CLEAR: $(head -n 1 "$f.bg.out")"
    recorded "$TAG" sup readonly.dcmd
    grep -qF "\"guard\":\"$SUP_GUARD\"" "$f.jsonl" || fail "no record says guard $SUP_GUARD"
    how="refused by the guard ($SUP_GUARD) that outlived mfiguard-run (EPERM, readonly.dcmd recorded)"
    echo "a descendant's CFG_CLEAR after the first process ended: $how, driver never called; $(kernel_note)"
}

# A root tool registers a CUSE device of its own under the daemon's name (here: a second
# mfiguard-hostd it starts, on a node in a scratch directory) and calls through it. A CUSE
# server can make the kernel read and write its caller's memory (an unrestricted ioctl's
# retry), so the guard must never send it anything: only the daemon's devices that existed
# before the tool started count. ENOTTY, guard.unrecognised-file, the driver never called.
# own_cuse TAG NODE HOSTD_ARGS WHAT: the tool starts a CUSE server of its own (mfiguard-hostd, its
# records apart) at NODE and sends ctrl-info through it; the guard must refuse it as an
# unrecognised file (ENOTTY) and the server must get nothing: a guard that executed the call would
# let the tool's server read and write the guard's memory (an unrestricted ioctl's retry).
own_cuse() {
    has_hostd || { echo "no mfiguard-hostd in the image (run.sh --hostd) or no /dev/cuse" && exit 77; }
    contain_begin "$1"
    rm -rf /tmp/own
    own=$2
    # shellcheck disable=SC2086
    MFIGUARD_LOG=$f.jsonl MFIGUARD_AUDIT=all timeout 60 "$SUP" $KL_SUP_ARGS /bin/sh -c "
        mkdir -p /tmp/own/priv
        MFIGUARD_LOG=$f.own.jsonl $HOSTD --node $own --private-dir /tmp/own/priv --watch-ms 50 --no-lock $3 >/dev/null 2>$f.own.err &
        i=0
        while [ ! -c $own ] && [ \$i -lt 200 ]; do usleep 50000; i=\$((i + 1)); done
        [ -c $own ] || { echo 'no CUSE device of the tool'; kill \$!; exit 98; }
        stat -c '%t:%T' $own >$f.own.dev
        $SUP_CLIENT --device $own ctrl-info
        r=\$?
        kill \$!
        exit \$r" >"$f.out" 2>"$f.err"
    echo $? >"$f.rc"
    kernel_calls >"$f.kcalls"
    kernel_packets >"$f.kpackets"
    [ "$(rc "$TAG" sup)" != 98 ] || fail "the tool's own daemon did not start: $(tail -n 3 "$f.own.err" | tr '\n' ' ')"
    if [ -n "${5:-}" ]; then
        [ "$(cat "$f.own.dev")" = "$5" ] || fail "the tool's CUSE device is $(cat "$f.own.dev") (hex), not $5: $(tail -n 3 "$f.own.err" | tr '\n' ' ')"
    fi
    grep -qF 'errno=25' "$f.out" || fail "a call through the tool's own CUSE device was not refused: $(head -n 2 "$f.out" | tr '\n' ' ')"
    recorded "$TAG" sup guard.unrecognised-file
    reached_kernel "$TAG" sup 0
    ! grep -qE '"record":"(decision|outcome)"' "$f.own.jsonl" || fail "the tool's CUSE server got a call: $(head -c 300 "$f.own.jsonl")"
    # Its start without the lock is recorded as such.
    grep -F '"key":"hostd.lock"' "$f.own.jsonl" | grep -qF '"value":"--no-lock"' || fail "mfiguard-hostd --no-lock wrote no hostd.lock record: $(head -c 300 "$f.own.jsonl")"
    rm -rf /tmp/own
    echo "a call through $4: ENOTTY, guard.unrecognised-file recorded, nothing sent to it ($SUP_GUARD); $(kernel_note)"
}

sc_contain_own_cuse() {
    own_cuse contain-cuse /tmp/own/megaraid_sas_ioctl_node.own "" "a CUSE device the tool registered under the daemon's name"
}

# The driver's major past its 256 minors is free for a CUSE server to register: not the driver.
sc_contain_own_cuse_major() {
    m=$(node_major)
    own_cuse contain-cuse-major /tmp/own/raid "--device-number $m:256" "a CUSE device the tool registered on the driver's major (minor 256)" "$(printf '%x:100' "$m")"
}
