# shellcheck shell=sh
# Controller events through mfiguard-hostd (doc/hostd.md, "Controller events"): a tool that
# registers (F_SETOWN, O_ASYNC, MEGASAS_IOC_GET_AEN) through the daemon gets the driver's SIGIO
# as it would from the driver, from the daemon, recorded (hostd.event); a tool that registers
# without O_ASYNC gets the driver's own answer, EINVAL.
#
# The event: a disk hot-plugged through QEMU's monitor. QEMU 7.2's megasas-gen2 raises none (it
# keeps the event wait frame and never completes it): when the driver's SIGIO does not come,
# the scenario sends the daemon the SIGIO the driver would send it, and says so.

sc_hostd_events() {
    hostd_only
    f=$OUT/hostd-events
    TAG=hostd-events
    rm -f "$f".*
    hostd_start "$f.jsonl" || fail "mfiguard-hostd did not start: $(tail -n 3 "$OUT/hostd.err")"
    # Without O_ASYNC first: the driver's EINVAL, before the driver.
    kernel_calls_reset
    timeout 20 "$CLIENT" aen plain >"$f.plain.out" 2>&1
    grep -q 'ret=-1 errno=22 ' "$f.plain.out" || fail "GET_AEN without O_ASYNC: $(head -n 1 "$f.plain.out")"
    k=$(kernel_calls)
    [ "$k" = '?' ] || [ "$k" = 0 ] || fail "the driver ran $k time(s) for a GET_AEN it refuses itself"
    # Registered, waiting.
    kernel_calls_reset
    timeout 90 "$CLIENT" aen wait 30000 >"$f.wait.out" 2>&1 &
    w=$!
    i=0
    until grep -q '^waiting_ms=' "$f.wait.out" || [ $i -gt 100 ]; do
        i=$((i + 1))
        usleep 100000
    done
    grep -q '^ioctl=MEGASAS_IOC_GET_AEN ret=0 ' "$f.wait.out" || fail "GET_AEN through the daemon: $(head -n 2 "$f.wait.out" | tr '\n' ' ')"
    k=$(kernel_calls)
    [ "$k" = '?' ] || [ "$k" = 1 ] || fail "the registration reached the driver $k time(s)"
    hotplug add
    i=0
    until grep -q "^sigio=" "$f.wait.out" || [ $i -gt 30 ]; do
        i=$((i + 1))
        usleep 100000
    done
    how="a hot-plugged disk"
    if ! grep -q '^sigio=1' "$f.wait.out"; then
        how="QEMU raised no event for the hot-plugged disk; the driver's SIGIO to the daemon stood in"
        kill -IO "$HOSTD_PID"
    fi
    wait "$w"
    # The daemon ends when told, the tool having closed the file it was signalled for: it never
    # holds the last reference to a file of its own device (whose release would wait for it).
    kill "$HOSTD_PID"
    i=0
    while [ -d "/sys/class/cuse/megaraid_sas_ioctl_node" ] && [ $i -lt 100 ]; do
        i=$((i + 1))
        usleep 100000
    done
    [ -d "/sys/class/cuse/megaraid_sas_ioctl_node" ] && fail "the daemon did not end within 10 s of SIGTERM after an event"
    hostd_stop
    grep -q "^sigio=1 .* from_pid=[0-9]" "$f.wait.out" || fail "the waiting tool got no SIGIO: $(tr '\n' ' ' <"$f.wait.out")"
    wpid=$(sed -n 's/.*"record":"outcome".*"pid":\([0-9]*\),.*"request_code":"0x400c4d03".*"ret":0,.*/\1/p' "$f.jsonl" | head -n 1)
    [ -n "$wpid" ] || fail "no outcome record of the registration: $(grep -c . "$f.jsonl") record(s)"
    grep -F '"key":"hostd.event"' "$f.jsonl" | grep -F "\"value\":\"$wpid\"" | grep -qF ' sent to process ' ||
        fail "no hostd.event record of the signal sent: $(grep -F hostd.event "$f.jsonl")"
    echo "$how: the registered tool got SIGIO ($(sed -n 's/^sigio=1 \(after_ms=[0-9]*\).*/\1/p' "$f.wait.out")), recorded; without O_ASYNC, EINVAL before the driver; $(kernel_note)"
}
