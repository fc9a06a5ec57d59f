# shellcheck shell=sh
# The per-tool guards in front of mfiguard-hostd: the library, the supervisor and its ptrace
# fallback recognise the daemon's node as the management node, apply the tool's own mode first,
# and send the call to the daemon on private copies in the process that makes it; the daemon
# guards it again with the host's mode. The stricter of the two always wins, and both record
# the call. Runs once per client ABI (the daemon is one x86_64 program for both): the 64-bit
# clients in the first boot, the 32-bit ones in the second.

# cmp_run TAG MECH TOOL_MODE ARGS...: the client under MECH (preload: the library; supervise,
# ptrace: mfiguard-run --via MECH with the static client) in TOOL_MODE, against the node the
# running daemon serves. Leaves $OUT/TAG.{out,err,rc,jsonl,kcalls,kpackets}, and in
# $OUT/TAG.hjsonl the daemon's records written meanwhile.
cmp_run() {
    tag=$1 mech=$2 tmode=$3
    shift 3
    f=$OUT/$tag
    rm -f "$f".*
    before=$(grep -c . "$CMP_HLOG" 2>/dev/null || echo 0)
    kernel_calls_reset
    case $mech in
        preload) MFIGUARD_MODE=$tmode LD_PRELOAD=$LIB MFIGUARD_LOG=$f.jsonl MFIGUARD_AUDIT=all \
            timeout 30 "$CLIENT" "$@" ;;
        *) MFIGUARD_MODE=$tmode MFIGUARD_LOG=$f.jsonl MFIGUARD_AUDIT=all \
            timeout 30 "$SUP" --via "$mech" -- "$SUP_CLIENT" "$@" ;;
    esac >"$f.out" 2>"$f.err"
    echo $? >"$f.rc"
    kernel_calls >"$f.kcalls"
    kernel_packets >"$f.kpackets"
    # The daemon writes its outcome record after it answers: give it a moment.
    usleep 200000
    tail -n +"$((before + 1))" "$CMP_HLOG" >"$f.hjsonl" 2>/dev/null
    [ -f "$f.jsonl" ] && cat "$f.jsonl" >>/tmp/audit.jsonl
    return 0
}

# cmp_expect TAG HMODE MECH TMODE WHAT: the run's result as the stricter mode says.
#   refused-by-tool:  EPERM, the driver never called, the tool's record names readonly.dcmd, the
#                     daemon never saw the call;
#   refused-by-hostd: EPERM, the driver never called, the daemon's record names readonly.dcmd,
#                     the tool's guard recorded the call it sent on (unless it is off);
#   passed:           ret=0, the driver called once, a pass record from each guard that is on.
cmp_expect() {
    t=$1 h=$2 m=$3 tm=$4 what=$5
    f=$OUT/$t
    said=$(head -n 1 "$f.out")
    k=$(cat "$f.kcalls")
    ctx="hostd $h, $m in $tm"
    hrec() { grep '"record":"outcome"' "$f.hjsonl" | grep -F '"guard":"hostd"' | grep -cF -- "$1" || true; }
    # The tool's guard's own findings: audit mode's preview ("would") names what read-only
    # would refuse, which is not a refusal.
    trec() { grep '"record":"outcome"' "$f.jsonl" 2>/dev/null | sed 's/,"would":{.*//' | grep -cF -- "$1" || true; }
    tguard=$m
    [ "$m" = supervise ] && tguard=supervisor
    case $what in
        refused-by-tool | refused-by-hostd)
            case $said in *'ret=-1 errno=1 (EPERM)'*) ;; *) fail "$ctx: $t: expected EPERM, got '$said' $(tail -n 2 "$f.err" | tr '\n' ' ')" ;; esac
            [ "$k" = '?' ] || [ "$k" = 0 ] || fail "$ctx: $t: the driver ran $k time(s)"
            ;;
        passed)
            case $said in *'ret=0 '*) ;; *) fail "$ctx: $t: expected ret=0, got '$said' $(tail -n 2 "$f.err" | tr '\n' ' ')" ;; esac
            [ "$k" = '?' ] || [ "$k" = 1 ] || fail "$ctx: $t: the driver ran $k time(s), expected 1"
            ;;
    esac
    case $what in
        refused-by-tool)
            [ "$(trec '"rule":"readonly.dcmd"')" -ge 1 ] || fail "$ctx: $t: the tool's guard recorded no readonly.dcmd refusal"
            [ "$(hrec '"record"')" = 0 ] || fail "$ctx: $t: the daemon saw a call the tool's guard refused"
            ;;
        refused-by-hostd)
            [ "$(hrec '"rule":"readonly.dcmd"')" -ge 1 ] || fail "$ctx: $t: the daemon recorded no readonly.dcmd refusal: $(head -c 300 "$f.hjsonl")"
            if [ "$tm" != off ]; then
                [ "$(trec "\"guard\":\"$tguard\"")" -ge 1 ] || fail "$ctx: $t: the tool's guard ($tguard) recorded nothing"
                [ "$(trec '"rule":"readonly.dcmd"')" = 0 ] || fail "$ctx: $t: the tool's guard refused it itself"
            fi
            ;;
        passed)
            [ "$(hrec '"verdict":"pass"')" -ge 1 ] || fail "$ctx: $t: no pass record from the daemon: $(head -c 300 "$f.hjsonl")"
            if [ "$tm" != off ]; then
                [ "$(trec "\"guard\":\"$tguard\"")" -ge 1 ] || fail "$ctx: $t: the tool's guard ($tguard) recorded nothing"
            fi
            ;;
    esac
    return 0
}

# The matrix, in the combinations that tell something: the daemon in enforce or audit and the
# tool in read-only (the tool's mode refuses first: the PATH shim's case on a host whose daemon
# only audits), the daemon in read-only and the tool in read-only (the tool refuses first),
# enforce, audit or off (the daemon refuses), each with CFG_CLEAR (a writing DCMD) and CTRL_GET_INFO (a
# read, which passes both), under the library, the supervisor and the ptrace fallback.
sc_compose_hostd_matrix() {
    has_hostd || { echo "no mfiguard-hostd in the image (run.sh --hostd) or no /dev/cuse" && exit 77; }
    has_sup || { echo "no supervisor in the image (run.sh --supervisor)" && exit 77; }
    mechs="preload supervise ptrace"
    n=0
    for hmode in enforce audit readonly; do
        CMP_HLOG=$OUT/compose-hostd-$hmode.jsonl
        ensure_node
        hostd_start "$CMP_HLOG" "$hmode" || fail "mfiguard-hostd ($hmode) did not start: $(tail -n 3 "$OUT/hostd.err")"
        case $hmode in
            enforce) tmodes="readonly enforce" ;;
            audit) tmodes="readonly" ;;
            *) tmodes="readonly enforce audit off" ;;
        esac
        for m in $mechs; do
            for tm in $tmodes; do
                TAG=cmp-$hmode-$m-$tm-clear
                cmp_run "$TAG" "$m" "$tm" dcmd 0x04030000 none 0
                case $hmode/$tm in
                    */readonly) cmp_expect "$TAG" "$hmode" "$m" "$tm" refused-by-tool ;;
                    enforce/* | audit/*) cmp_expect "$TAG" "$hmode" "$m" "$tm" passed ;;
                    *) cmp_expect "$TAG" "$hmode" "$m" "$tm" refused-by-hostd ;;
                esac
                TAG=cmp-$hmode-$m-$tm-read
                cmp_run "$TAG" "$m" "$tm" ctrl-info
                cmp_expect "$TAG" "$hmode" "$m" "$tm" passed
                n=$((n + 2))
            done
        done
        hostd_stop
    done
    echo "$n runs ($ABI clients): the stricter mode wins in each (CFG_CLEAR refused by the tool's read-only guard before the daemon in enforce, audit or read-only, by the daemon's read-only mode behind a tool in enforce, audit or off), reads pass both, records from both guards; $(kernel_note)"
}
