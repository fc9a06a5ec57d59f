#!/bin/busybox sh
# shellcheck shell=sh disable=SC1091
# /init of the kernel lane's guest (busybox ash). Loads the driver, runs the planned scenarios of
# /etc/scenarios.sh, writes one "KL-RESULT <name> PASS|FAIL|SKIP <detail>" line per scenario to the
# second serial port (/dev/ttyS1, the host's results.log), then "KL-DONE", then powers off.
# The kernel console stays on ttyS0, so its messages never interleave with the results.
/bin/busybox mkdir -p /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/opt/extra:/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/tmp TZ=UTC LC_ALL=C
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
mount -t tmpfs tmpfs /tmp
# What systemd mounts on a host: the bpf file system (mfiguard-hostd pins its lock there), the
# cgroup v2 hierarchy and securityfs (the active LSMs).
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
. /etc/lane.conf

RESULTS=/dev/ttyS1
[ -c "$RESULTS" ] || RESULTS=/dev/console
emit() { echo "$*" >"$RESULTS"; echo "$*"; }
info() { emit "KL-INFO $*"; }
# expect_panic ERE: the running (hazard_*) scenario is about to kill the kernel, which then shows
# ERE on the console; run.sh judges it from there (one call per pattern, before the fatal call).
expect_panic() { emit "KL-PANIC $entry $*"; }
# hotplug add|del: the host plugs the second disk into the controller (scsi-id 1) or unplugs it,
# on QEMU's monitor (run.sh watches for this line); returns at once.
hotplug() { emit "KL-HOTPLUG $1 $entry"; }

finish() {
    emit "KL-DONE"
    sync
    poweroff -f
    sleep 5
    echo o >/proc/sysrq-trigger # if poweroff could not
}

echo "kernel-lane guest: $(uname -r), plan: $KL_PLAN"

# The driver, in dependency order. A failure here is reported by the driver_* scenarios.
for m in $KL_MODULES; do
    if ! insmod "/modules/$m.ko" 2>/tmp/insmod.err; then
        echo "insmod $m failed: $(cat /tmp/insmod.err)" >>/tmp/driver.log
    fi
done
# SCSI scanning is asynchronous: give the emulated disk up to 30 s to appear behind the controller.
i=0
while [ $i -lt 300 ]; do
    for d in /sys/class/scsi_device/*; do [ -e "$d" ] && break 2; done
    i=$((i + 1))
    usleep 100000
done
echo "waited $((i / 10)).$((i % 10)) s for a SCSI device" >>/tmp/driver.log

# The helpers the scenarios use, and the scenarios themselves.
. /etc/scenarios.sh

OUT=/tmp/sc
mkdir -p "$OUT"
OOPS_RE='BUG:|Oops|WARNING:|general protection|Kernel panic'
oops_count() { dmesg | grep -c -E "$OOPS_RE"; }
for entry in $KL_PLAN; do
    name=${entry%@*}
    abi=
    case $entry in *@*) abi=${entry#*@} ;; esac
    select_abi "$abi"
    rm -f "$OUT/detail"
    if [ "${KL_DETAILS:-0}" = 1 ]; then
        touch "$OUT/.mark"
        sleep 1 # busybox find -newer compares whole seconds
    fi
    KL_OOPS_BEFORE=$(oops_count)
    # Each scenario runs in its own subshell: it cannot change the next one's environment.
    ( "sc_$name" ) >"$OUT/detail" 2>&1
    rc=$?
    # A daemon a failed scenario left serving would answer the next scenarios' calls: stopped,
    # and the driver's node and device given back.
    if [ -f "$OUT/hostd.pid" ]; then
        kill "$(cat "$OUT/hostd.pid")" 2>/dev/null
        usleep 500000
        rm -f "$OUT/hostd.pid"
        MFIGUARD_LOG=none "$HOSTD" --restore-node >/dev/null 2>&1 || true
    fi
    detail=$(grep -v '^  ' "$OUT/detail" | tail -n 1)
    # A kernel oops or warning during an ordinary scenario fails it, whatever the scenario saw.
    # (hazard_* scenarios expect one may happen and judge it themselves.)
    if [ "$(oops_count)" != "$KL_OOPS_BEFORE" ] && [ "${name#hazard_}" = "$name" ]; then
        dmesg | grep -A 3 -E "$OOPS_RE" | sed 's/^/  kernel: /' >>"$OUT/detail"
        rc=1 detail="the kernel oopsed or warned during this scenario: $(dmesg | grep -m1 -E "$OOPS_RE")"
    fi
    case $rc in
        0) verdict=PASS ;;
        77) verdict=SKIP ;;
        *) verdict=FAIL ;;
    esac
    emit "KL-RESULT $entry $verdict $detail"
    if [ "${KL_DETAILS:-0}" = 1 ] && [ "$verdict" != FAIL ]; then
        # Everything the scenario's runs left (a failed scenario shows it already).
        find "$OUT" -type f -newer "$OUT/.mark" ! -name detail | sort | while read -r f; do
            echo "  == ${f#"$OUT"/}"
            sed 's/^/  | /' "$f" | head -n 40
        done >>"$OUT/detail"
    fi
    if [ "$verdict" = FAIL ] || [ "${KL_DETAILS:-0}" = 1 ]; then
        sed "s/^/KL-DETAIL $entry | /" "$OUT/detail" >"$RESULTS"
    fi
done

# One audit record of each kind the scenarios' guards wrote (record, guard, key, mode, verdict),
# for the host to validate against the schema the packages ship.
cat "$OUT"/*.jsonl 2>/dev/null | awk '
    function field(name,   re) {
        re = "\"" name "\":\"[^\"]*\""
        return match($0, re) ? substr($0, RSTART, RLENGTH) : ""
    }
    /^\{"record":/ {
        kind = field("record") field("guard") field("key") field("mode") field("verdict")
        if (!(kind in seen)) { seen[kind] = 1; print "KL-RECORD " $0 }
    }' >"$RESULTS"

# Anything the kernel said about itself that a reader of a failure would want.
dmesg | grep -E "$OOPS_RE" | head -n 20 | while read -r l; do info "kernel: $l"; done
finish
