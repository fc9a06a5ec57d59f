# shellcheck shell=sh
# A command the firmware never completes, through mfiguard-hostd (doc/hostd.md, "A stuck
# command"). The driver waits for a firmware command without a time limit and uninterruptibly
# (megasas_issue_blocked_cmd(..., 0)), and QEMU holds MR_DCMD_CTRL_EVENT_WAIT until an event it
# never raises: with the daemon's policy allowing it (MFIGUARD_ALLOW=dcmd.host-address; the
# rule refuses it by default), such a command stays in the driver for the rest of the boot,
# which is why this scenario has a boot of its own.
#
# Checked: the caller is answered ETIMEDOUT after --command-timeout (recorded hostd.timeout)
# while another caller is served meanwhile; `--status` counts the daemon's thread in the
# driver; killed with SIGKILL, the daemon stays a zombie holding its CUSE device, `--status`
# says stuck, and a caller that had the node open waits; a new daemon starts beside it under
# the next name and number, releases the old one's callers (their calls fail instead of
# waiting, hostd.stuck), serves a new caller, and `--status` says active and names the stuck one.

# stuck_status FILE: --status --json into FILE, its exit status
stuck_status() {
    "$HOSTD" --status --json >"$1" 2>&1
}

sc_hostd_stuck() { # boot stuck
    hostd_only
    f=$OUT/hostd-stuck
    TAG=hostd-stuck
    rm -f "$f".*
    ensure_node
    export MFIGUARD_ALLOW=dcmd.host-address
    HOSTD_ARGS="--command-timeout 3 --workers 1" hostd_start "$f.jsonl" ||
        fail "mfiguard-hostd did not start: $(tail -n 3 "$OUT/hostd.err")"
    first_pid=$HOSTD_PID
    kernel_calls_reset
    # MR_DCMD_CTRL_EVENT_WAIT with a 1 KiB buffer (mbox 0: from sequence 0, any class).
    timeout 60 "$CLIENT" dcmd 0x01040500 read 1024 >"$f.wait.out" 2>&1 &
    waiter=$!
    sleep 1
    # Served meanwhile, on another worker (the daemon started with one).
    timeout 20 "$CLIENT" ctrl-info >"$f.info.out" 2>&1 || fail "ctrl-info while the event wait is held: $(head -n 1 "$f.info.out")"
    # A caller that keeps the node open and calls in a loop: it will outlive the daemon.
    timeout 120 "$CLIENT" --repeat 100000 ctrl-info >"$f.loop.out" 2>&1 &
    loop=$!
    wait "$waiter"
    grep -q 'ret=-1 errno=110 ' "$f.wait.out" || fail "the event wait was not answered ETIMEDOUT: $(head -n 1 "$f.wait.out")"
    grep -F '"key":"hostd.timeout"' "$f.jsonl" | grep -qF 'answered ETIMEDOUT; the driver still holds the command' ||
        fail "no hostd.timeout record"
    stuck_status "$f.status1" || fail "--status not active while the command is held: $(cat "$f.status1")"
    grep -q '"threads_in_driver":[1-9]' "$f.status1" || fail "--status does not count the thread in the driver: $(cat "$f.status1")"
    # SIGKILL, as a restart does: the thread in the driver keeps the process and its device.
    kill -9 "$first_pid"
    i=0
    until [ "$(sed 's/.*) //' "/proc/$first_pid/stat" 2>/dev/null | cut -c1)" = Z ] || [ $i -gt 50 ]; do
        i=$((i + 1))
        usleep 100000
    done
    HOSTD_PID=
    rm -f "$OUT/hostd.pid"
    [ -e /sys/class/cuse/megaraid_sas_ioctl_node ] || fail "the killed daemon's device went away: nothing was stuck"
    stuck_status "$f.status2" && fail "--status says active with the daemon killed: $(cat "$f.status2")"
    grep -q '"state":"stuck"' "$f.status2" || fail "--status does not say stuck: $(cat "$f.status2")"
    # A caller of the dead daemon's node waits (nothing answers it): cut after 2 s.
    timeout 2 "$CLIENT" ctrl-info >"$f.dead.out" 2>&1
    case $? in
        124 | 143) ;; # cut by timeout (busybox's says 143)
        *) fail "a call on the stuck daemon's node did not wait: $(head -n 1 "$f.dead.out")" ;;
    esac
    kill -0 "$loop" 2>/dev/null || fail "the looping caller ended before a new daemon started: $(tail -n 2 "$f.loop.out" | tr '\n' ' ')"
    # Started again: beside the stuck one, under the next name and number.
    HOSTD_ARGS="--command-timeout 3" hostd_start "$f.2.jsonl" ||
        fail "mfiguard-hostd did not start beside the stuck one: $(tail -n 3 "$OUT/hostd.err")"
    grep -qF 'was killed while the driver held 1 command(s) of it; its callers were released' "$OUT/hostd.err" ||
        fail "the new daemon did not release the stuck one's callers: $(tail -n 3 "$OUT/hostd.err")"
    [ "$(cat /sys/class/cuse/megaraid_sas_ioctl_node.1/dev)" = 120:28007 ] || fail "the new daemon is not megaraid_sas_ioctl_node.1 (120:28007)"
    grep -F '"key":"hostd.stuck"' "$f.2.jsonl" | grep -qF 'megaraid_sas_ioctl_node 120:28006' || fail "no hostd.stuck record"
    stuck_status "$f.status3" || fail "--status not active with the new daemon: $(cat "$f.status3")"
    grep -q '"at_path":true,"device":"120:28007","name":"megaraid_sas_ioctl_node.1"' "$f.status3" ||
        fail "--status: $(cat "$f.status3")"
    grep -q '"state":"stuck"' "$f.status3" || fail "--status does not name the stuck daemon: $(cat "$f.status3")"
    # The released caller: its calls fail now rather than wait.
    i=0
    while kill -0 "$loop" 2>/dev/null && [ $i -lt 100 ]; do
        i=$((i + 1))
        usleep 100000
    done
    kill -0 "$loop" 2>/dev/null && fail "the stuck daemon's caller still waits 10 s after the new daemon started"
    failed=$(sed -n 's/^calls=[0-9]* failed=\([0-9]*\)$/\1/p' "$f.loop.out")
    [ "${failed:-0}" -ge 1 ] || fail "the released caller's calls did not fail: $(tail -n 2 "$f.loop.out" | tr '\n' ' ')"
    # A new caller is answered by the new daemon.
    kernel_calls_reset
    timeout 20 "$CLIENT" ctrl-info >"$f.new.out" 2>&1 || fail "ctrl-info through the new daemon: $(head -n 1 "$f.new.out")"
    [ "$(outcome_records "$f.2.jsonl")" -ge 1 ] || fail "the new daemon has no record of the call"
    k=$(kernel_calls)
    [ "$k" = '?' ] || [ "$k" = 1 ] || fail "the driver ran $k time(s) for one call through the new daemon"
    hostd_stop
    echo "event wait answered ETIMEDOUT after 3 s while ctrl-info was served; killed, the daemon stayed stuck (--status: stuck; its node's callers wait); a new daemon (megaraid_sas_ioctl_node.1, 120:28007) released them ($failed failed calls, not waits), served a new caller; $(kernel_note)"
}

# kernel.yama.ptrace_scope=3 forbids process_vm_readv and pidfd_getfd to everyone, for the rest
# of the boot (hence here, after hostd_stuck in its boot): a call through the daemon fails with
# EFAULT and an event registration with EOPNOTSUPP, neither reaching the driver (closed, not open).
sc_hostd_ptrace_scope() { # boot stuck
    hostd_only
    [ -w /proc/sys/kernel/yama/ptrace_scope ] || { echo "no Yama here" && exit 77; }
    f=$OUT/hostd-yama
    TAG=hostd-yama
    rm -f "$f".*
    ensure_node
    hostd_start "$f.jsonl" || fail "mfiguard-hostd did not start: $(tail -n 3 "$OUT/hostd.err")"
    echo 3 >/proc/sys/kernel/yama/ptrace_scope
    kernel_calls_reset
    timeout 20 "$CLIENT" ctrl-info >"$f.info.out" 2>&1
    timeout 20 "$CLIENT" aen >"$f.aen.out" 2>&1
    k=$(kernel_calls)
    hostd_stop
    grep -q 'ret=-1 errno=14 ' "$f.info.out" || fail "a call with ptrace_scope=3: $(head -n 1 "$f.info.out")"
    grep -q 'ret=-1 errno=95 ' "$f.aen.out" || fail "an event registration with ptrace_scope=3: $(head -n 1 "$f.aen.out")"
    [ "$k" = '?' ] || [ "$k" = 0 ] || fail "the driver's ioctl ran $k time(s)"
    echo "ptrace_scope=3: a call through the daemon failed with EFAULT, an event registration with EOPNOTSUPP, the driver not called; $(kernel_note)"
}
