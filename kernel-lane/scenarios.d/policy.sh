# shellcheck shell=sh
# Policy by who and what through mfiguard-hostd (doc/configuration.md): one config file gives
# each caller of the daemon the mode its sections name, by who the caller is (the CUSE request's
# pid, its uid from /proc). Two callers of different uids (root, and uid 1000 as a monitoring
# account: mfi_client --as-uid 1000 opens the node as root, then becomes uid 1000); the policy
# written with `preview = yes`, then that one line deleted and the daemon restarted: no command
# line changes. And a log cut by killing the daemon mid-run reads true: every call the client
# got back had its outcome record written first, in call order.

# policy_daemon: an mfiguard-hostd that reads its policy from $POLICY_CONF and takes no mode
# from its environment (hostd_start sets MFIGUARD_MODE): hostd_start runs it through $HOSTD.
policy_daemon() {
    POLICY_CONF=$OUT/policy.conf
    printf '#!/bin/sh\nunset MFIGUARD_MODE\nexport MFIGUARD_CONFIG=%s\nexec %s "$@"\n' \
        "$POLICY_CONF" "$HOSTD" >"$OUT/hostd-policy"
    chmod 755 "$OUT/hostd-policy"
    HOSTD=$OUT/hostd-policy
}

# policy_call LOG NAME ARGS...: one client run (its output in $OUT/policy.NAME.*), the driver's
# entries and packets counted around it.
policy_call() {
    name=$1
    shift
    kernel_calls_reset
    timeout 30 "$CLIENT" "$@" >"$OUT/policy.$name.out" 2>&1
    echo $? >"$OUT/policy.$name.rc"
    kernel_calls >"$OUT/policy.$name.kcalls"
    kernel_packets >"$OUT/policy.$name.kpackets"
}

# policy_record LOG UID TEXT...: LOG has an outcome record of caller uid UID holding every TEXT.
policy_record() {
    log=$1 uid=$2
    shift 2
    lines=$(grep '"record":"outcome"' "$log" | grep -F "\"uid\":$uid,")
    for want; do lines=$(printf '%s\n' "$lines" | grep -F -- "$want"); done
    [ -n "$lines" ] || fail "no outcome record of uid $uid holds all of: $* ($(grep -c . "$log") records)"
}

sc_policy_hostd_per_caller() {
    hostd_only
    TAG=policy
    rm -f "$OUT"/policy.*
    policy_daemon
    clear="dcmd 0x04030000 none 0"
    printf 'mode = enforce\naudit = all\npreview = yes\n\n[user 1000]\nmode = readonly\n' >"$POLICY_CONF"
    ensure_node
    hostd_start "$OUT/policy.1.jsonl" || fail "mfiguard-hostd did not start: $(tail -n 3 "$OUT/hostd.err")"
    # shellcheck disable=SC2086 # $clear is words on purpose
    policy_call root1 $clear
    # shellcheck disable=SC2086
    policy_call nagios1 --as-uid 1000 $clear
    hostd_stop
    for who in root1 nagios1; do
        [ "$(cat "$OUT/policy.$who.rc")" = 0 ] || fail "$who: the preview refused: $(cat "$OUT/policy.$who.out")"
        kernel_saw policy "$who" 'opcode=0x4030000'
    done
    log=$OUT/policy.1.jsonl
    policy_record "$log" 0 '"mode":"audit"' '"preview_of":"enforce"' '"readonly":{"verdict":"reject"' '"guard":"hostd"'
    policy_record "$log" 1000 '"mode":"audit"' '"preview_of":"readonly"' '"readonly":{"verdict":"reject"' '"schema_version":1'

    # The roll-out: one line of the policy goes, the daemon reads it again.
    sed -i '/^preview/d' "$POLICY_CONF"
    hostd_start "$OUT/policy.2.jsonl" || fail "mfiguard-hostd did not start again: $(tail -n 3 "$OUT/hostd.err")"
    # shellcheck disable=SC2086
    policy_call root2 $clear
    # shellcheck disable=SC2086
    policy_call nagios2 --as-uid 1000 $clear
    policy_call nagiosread --as-uid 1000 ctrl-info
    hostd_stop
    log=$OUT/policy.2.jsonl
    [ "$(cat "$OUT/policy.root2.rc")" = 0 ] || fail "root: CFG_CLEAR refused in enforce: $(cat "$OUT/policy.root2.out")"
    kernel_saw policy root2 'opcode=0x4030000'
    policy_record "$log" 0 '"mode":"enforce"' '"opcode_name":"MR_DCMD_CFG_CLEAR"' '"verdict":"pass"'
    grep -q 'errno=1 (EPERM)' "$OUT/policy.nagios2.out" || fail "uid 1000: CFG_CLEAR not refused with EPERM: $(cat "$OUT/policy.nagios2.out")"
    k=$(cat "$OUT/policy.nagios2.kcalls")
    [ "$k" = '?' ] || [ "$k" = 0 ] || fail "uid 1000: CFG_CLEAR reached the driver ($k calls) in readonly"
    policy_record "$log" 1000 '"mode":"readonly"' '"rule":"readonly.dcmd"' '"errno":1,'
    [ "$(cat "$OUT/policy.nagiosread.rc")" = 0 ] || fail "uid 1000: a read refused: $(cat "$OUT/policy.nagiosread.out")"
    policy_record "$log" 1000 '"mode":"readonly"' '"opcode_name":"MR_DCMD_CTRL_GET_INFO"' '"verdict":"pass"'

    # The daemon's own environment asks for less (MFIGUARD_MODE=off, as a unit's drop-in
    # could): a request is taken only down to each caller's lowest mode, here the policy's.
    sed "s|^unset MFIGUARD_MODE|export MFIGUARD_MODE=off|" "$OUT/hostd-policy" >"$OUT/hostd-policy-off"
    chmod 755 "$OUT/hostd-policy-off"
    HOSTD=$OUT/hostd-policy-off
    hostd_start "$OUT/policy.3.jsonl" || fail "mfiguard-hostd (MFIGUARD_MODE=off) did not start: $(tail -n 3 "$OUT/hostd.err")"
    # shellcheck disable=SC2086
    policy_call nagios3 --as-uid 1000 $clear
    hostd_stop
    log=$OUT/policy.3.jsonl
    grep -q 'errno=1 (EPERM)' "$OUT/policy.nagios3.out" || fail "uid 1000: CFG_CLEAR not refused under a daemon asked for mode off: $(cat "$OUT/policy.nagios3.out")"
    k=$(cat "$OUT/policy.nagios3.kcalls")
    [ "$k" = '?' ] || [ "$k" = 0 ] || fail "uid 1000: CFG_CLEAR reached the driver ($k calls) under a daemon asked for mode off"
    policy_record "$log" 1000 '"mode":"readonly"' '"rule":"readonly.dcmd"' '"errno":1,'
    echo "preview: CFG_CLEAR of root and of uid 1000 both reached the driver, recorded as enforce's and readonly's; preview line deleted: uid 1000's refused (EPERM, driver not called, readonly.dcmd) and its read answered, root's reached the driver in enforce; the daemon asked for mode off: uid 1000's still refused in readonly; $(kernel_note)"
}

# The daemon killed while one client makes clean calls back to back (mfi_client lines, which
# says after each call how many outcome records the log held): every call that returned found
# its own outcome record written, the records alternate decision, outcome in call order, and a
# decision without an outcome is only the call in flight.
sc_policy_hostd_cut_log() {
    hostd_only
    TAG=policy-cut
    f=$OUT/policy-cut
    rm -f "$f".*
    ensure_node
    hostd_start "$f.jsonl" || fail "mfiguard-hostd did not start: $(tail -n 3 "$OUT/hostd.err")"
    i=0
    while [ $i -lt 1000 ]; do
        echo pass
        i=$((i + 1))
    done >"$f.in"
    MFI_CLIENT_OUTCOMES=$f.jsonl timeout 120 "$CLIENT" lines <"$f.in" >"$f.lines" 2>"$f.err" &
    client=$!
    sleep 2
    kill -0 "$client" 2>/dev/null || fail "the client ended before the daemon was killed: $(tail -n 2 "$f.lines" | tr '\n' ' ')"
    kill -9 "$HOSTD_PID"
    wait "$HOSTD_PID" 2>/dev/null
    HOSTD_PID=
    rm -f "$OUT/hostd.pid"
    wait "$client"
    # The killed daemon's node and its lock on the driver (kept while no daemon runs) go.
    MFIGUARD_LOG=none "$HOSTD" --restore-node >>"$OUT/hostd.err" 2>&1 || rm -f "$NODE"
    returned=$(awk '/^pass ret=0 / { n++; next } { exit } END { print n + 0 }' "$f.lines")
    [ "$returned" -ge 5 ] || fail "only $returned calls returned before the kill"
    behind=$(awk -v n="$returned" 'NR <= n { split($0, a, " outcomes="); if (a[2] + 0 < NR) { print NR " " a[2]; exit } }' "$f.lines")
    [ -z "$behind" ] || fail "call (line, outcome records when it returned) $behind: it returned before its outcome record was written"
    # The records in order: decision k, outcome k, decision k+1, ... (seq is the daemon's).
    sed -n 's/^{"record":"\([a-z]*\)","schema_version":1,"seq":\([0-9]*\),.*/\1 \2/p' "$f.jsonl" >"$f.order"
    bad=$(awk '$1 == "decision" { if (open != "") { print "decision " $2 " before the outcome of " open; exit } open = $2; next }
               $1 == "outcome" { if ($2 != open) { print "outcome " $2 " while " open " was open"; exit } open = "" }' "$f.order")
    [ -z "$bad" ] || fail "records out of call order: $bad"
    outcomes=$(grep -c '^outcome' "$f.order")
    [ "$outcomes" -ge "$returned" ] || fail "$returned calls returned, $outcomes outcome records"
    echo "killed after $returned returned calls: each found its outcome record written when it returned, $outcomes outcome records in call order, $(($(grep -c '^decision' "$f.order") - outcomes)) decision(s) without an outcome (in flight)"
}
