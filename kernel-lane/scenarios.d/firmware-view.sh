# shellcheck shell=sh
# What the firmware reads (doc/rules.md, "What the firmware reads"): a packet that puts a physical
# address of its choosing where the frame type's firmware reads its scatter/gather list, and tells
# the driver (sgl_off) to write its own entry one slot later. The address is a canary page of the
# client's (mfi_client firmware-view KIND canary: a locked page filled with 0x5A, its physical
# address from /proc/self/pagemap, checked after the call). The controller here is an MFI-series
# SAS2108, whose 6.1 driver writes 8-byte sge32 entries (32-bit consistent DMA mask), so the
# client's entry is an sge32 too.
#
# Without the guard the controller writes into the page (the hole is real on this lane); with it,
# under every mechanism (the library, the supervisor as KL_SUP_ARGS chooses it, mfiguard-hostd with
# the dynamic and the static client), in enforce and read-only mode, the call is refused with EINVAL
# before the driver (ftrace: no driver entry; kprobe: no packet), the page is untouched, and the
# record names sgl.offset-unusual; in audit mode it goes on as without the guard, recorded as a
# refusal not enforced.

fv_canary() { sed -n 's/^canary=//p' "$OUT/$1.$2.out"; } # TAG MODE: the canary's state after that run

# fv_refused TAG MODE RECMODE: refused before the driver, the page untouched, recorded in RECMODE
fv_refused() {
    expect "$1" "$2" 'ret=-1 errno=22 (EINVAL)'
    [ "$(fv_canary "$1" "$2")" = untouched ] || fail "$1 ($2): the canary is '$(fv_canary "$1" "$2")', expected untouched"
    reached_kernel "$1" "$2" 0
    no_packets "$1" "$2"
    lines=$(grep '"record":"outcome"' "$OUT/$1.$2.jsonl" 2>/dev/null | grep -F "\"mode\":\"$3\"" |
        grep -F '"rule":"sgl.offset-unusual"' | grep -F '"verdict":"reject"' | grep -F '"enforced":true')
    [ -n "$lines" ] || fail "$1 ($2): no outcome record of mode $3 refusing with sgl.offset-unusual"
}

# fv_hostd TAG MODE RECMODE ARGS...: a run through mfiguard-hostd started in RECMODE (mfi starts it in
# enforce mode; the read-only runs need their own start)
fv_hostd() {
    t=$1 m=$2 mm=$3
    shift 3
    HOSTD_MODE=$mm
    mfi "$m" "$t" "$@"
    HOSTD_MODE=
}

sc_firmware_view() {
    n=0 written=
    # Not an LD read: Linux 6.1 completes an LD_READ/LD_WRITE frame sent through the ioctl as a
    # block-layer command (megasas_complete_cmd dereferences its NULL scmd) and oopses in the
    # interrupt, whatever the SGL (seen on this lane).
    for spec in "dcmd 0x30" "pthru 0x38"; do
        # shellcheck disable=SC2086 # two words, on purpose
        set -- $spec
        kind=$1 off=$2 TAG=fv-$1
        mfi plain "$TAG" firmware-view "$kind" canary "$KL_TARGET"
        case $(fv_canary "$TAG" plain) in
            unavailable) echo "no physical address below 4 GiB for the canary page" && exit 77 ;;
            written*) ;;
            *) fail "$TAG: without the guard the controller left the page alone ($(fv_canary "$TAG" plain)): the hole is not shown" ;;
        esac
        expect "$TAG" plain 'ret=0 '
        reached_kernel "$TAG" plain 1
        kernel_saw "$TAG" plain "sgl_off=$off "
        written="${written:+$written }$kind:$(fv_canary "$TAG" plain | sed 's/written bytes=//')B"

        mfi audit "$TAG" firmware-view "$kind" canary "$KL_TARGET"
        case $(fv_canary "$TAG" audit) in written*) ;; *) fail "$TAG (audit): audit mode changed what the controller did" ;; esac
        reached_kernel "$TAG" audit 1
        logged "$TAG" audit '"rule":"sgl.offset-unusual"' '"verdict":"reject"' '"enforced":false'

        for mode in guard readonly; do
            mfi "$mode" "$TAG" firmware-view "$kind" canary "$KL_TARGET"
        done
        fv_refused "$TAG" guard enforce
        fv_refused "$TAG" readonly readonly
        if has_sup; then
            for mode in sup supro; do mfi "$mode" "$TAG" firmware-view "$kind" canary "$KL_TARGET"; done
            fv_refused "$TAG" sup enforce
            fv_refused "$TAG" supro readonly
            grep -qF "\"guard\":\"$SUP_GUARD\"" "$OUT/$TAG.sup.jsonl" || fail "$TAG (sup): no record of guard $SUP_GUARD"
        fi
        for mode in $(hostd_modes); do
            fv_hostd "$TAG" "$mode" enforce firmware-view "$kind" canary "$KL_TARGET"
            fv_refused "$TAG" "$mode" enforce
            grep -qF '"guard":"hostd"' "$OUT/$TAG.$mode.jsonl" || fail "$TAG ($mode): no record of guard hostd"
            fv_hostd "$TAG-ro" "$mode" readonly firmware-view "$kind" canary "$KL_TARGET"
            fv_refused "$TAG-ro" "$mode" readonly
        done
        n=$((n + 1))
    done
    m="library"
    has_sup && m="$m, $SUP_GUARD"
    has_hostd && m="$m, mfiguard-hostd ($(hostd_modes))"
    echo "$n frames (CTRL_GET_INFO, INQUIRY) with a caller's sge32 where the firmware reads: without the guard the controller wrote the client's page ($written), in audit mode too (recorded, not enforced); refused with EINVAL before the driver and the page untouched in enforce and read-only under: $m; $(kernel_note)"
}
