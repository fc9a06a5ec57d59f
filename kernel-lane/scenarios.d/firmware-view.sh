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
    # Not an LD read: the guard refuses it whatever its SGL (firmware_view_ld_read), since Linux 6.1
    # dies completing it (hazard_ld_read_unguarded).
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

# A raw LD read (mfi_client ld-read TARGET: one well-formed block read, SGL at 0x28). Every driver
# completes an LD_READ/LD_WRITE frame from the ioctl through the block layer's SCSI command, which
# such a frame has not: megasas_complete_cmd dereferences a NULL scmd in the interrupt and the
# kernel dies, whatever the SGL (hazard_ld_read_unguarded, in a boot of its own). Here, under
# every mechanism, in enforce and read-only mode, the call is refused with EINVAL before the
# driver (ftrace: no driver entry; kprobe: no packet) and the record names frame.cmd-forbidden; in
# read-only mode with that rule allowed (the library), readonly.cmd still refuses it, with EPERM.
# Never run in audit mode here: audit mode sends the frame on, and this boot would die.

# ld_refused TAG MODE RECMODE RESULT RULE: refused before the driver with RESULT, recorded in
# RECMODE as a refusal of the LD read naming RULE
ld_refused() {
    expect "$1" "$2" "$4"
    reached_kernel "$1" "$2" 0
    no_packets "$1" "$2"
    lines=$(grep '"record":"outcome"' "$OUT/$1.$2.jsonl" 2>/dev/null | grep -F "\"mode\":\"$3\"" |
        grep -F '"cmd":"LD_READ"' | grep -F "\"rule\":\"$5\"" | grep -F '"verdict":"reject"' |
        grep -F '"enforced":true')
    [ -n "$lines" ] || fail "$1 ($2): no outcome record of mode $3 refusing the LD read with $5"
}

sc_firmware_view_ld_read() {
    TAG=ld-read
    einval='ret=-1 errno=22 (EINVAL)'
    for mode in guard readonly; do mfi "$mode" "$TAG" ld-read "$KL_TARGET"; done
    ld_refused "$TAG" guard enforce "$einval" frame.cmd-forbidden
    ld_refused "$TAG" readonly readonly "$einval" frame.cmd-forbidden
    logged "$TAG" readonly '"rule":"readonly.cmd"'
    if has_sup; then
        for mode in sup supro; do mfi "$mode" "$TAG" ld-read "$KL_TARGET"; done
        ld_refused "$TAG" sup enforce "$einval" frame.cmd-forbidden
        ld_refused "$TAG" supro readonly "$einval" frame.cmd-forbidden
        grep -qF "\"guard\":\"$SUP_GUARD\"" "$OUT/$TAG.sup.jsonl" || fail "$TAG (sup): no record of guard $SUP_GUARD"
    fi
    for mode in $(hostd_modes); do
        fv_hostd "$TAG" "$mode" enforce ld-read "$KL_TARGET"
        ld_refused "$TAG" "$mode" enforce "$einval" frame.cmd-forbidden
        grep -qF '"guard":"hostd"' "$OUT/$TAG.$mode.jsonl" || fail "$TAG ($mode): no record of guard hostd"
        fv_hostd "$TAG-ro" "$mode" readonly ld-read "$KL_TARGET"
        ld_refused "$TAG-ro" "$mode" readonly "$einval" frame.cmd-forbidden
    done
    # The second line: frame.cmd-forbidden allowed, read-only mode still refuses.
    (
        export MFIGUARD_ALLOW=frame.cmd-forbidden
        mfi readonly "$TAG-allowed" ld-read "$KL_TARGET"
    )
    TAG=$TAG-allowed
    ld_refused "$TAG" readonly readonly 'ret=-1 errno=1 (EPERM)' readonly.cmd
    m="library"
    has_sup && m="$m, $SUP_GUARD"
    has_hostd && m="$m, mfiguard-hostd ($(hostd_modes))"
    echo "LD read of target $KL_TARGET: refused with EINVAL (frame.cmd-forbidden) before the driver in enforce and read-only under: $m; read-only with the rule allowed: EPERM (readonly.cmd); $(kernel_note)"
}

# Without the guard, the same LD read kills the kernel in the interrupt that completes it. The
# guest cannot report that: the scenario says what the console must show (expect_panic), and
# run.sh judges the boot from it. ftrace_dump_on_oops puts the trace in the console, so the panic
# is shown to follow the driver's ioctl entry and the packet the kprobe read (sgl_off 0x28). The
# completion path is the same for both client ABIs: one boot, the first ABI's.
sc_hazard_ld_read_unguarded() { # first ABI only
    TAG=ld-read
    [ "$TRACING" = 1 ] && echo 1 >/proc/sys/kernel/ftrace_dump_on_oops
    expect_panic 'Kernel panic - not syncing: Fatal exception in interrupt'
    expect_panic 'RIP: [0-9a-f]*:megasas_complete_cmd'
    if [ "$PROBING" = 1 ]; then
        expect_panic 'megasas_mgmt_(compat_)?ioctl <-'
        expect_panic 'megasas_mgmt_fw_ioctl.* sgl_off=0x28 '
    fi
    mfi plain "$TAG" ld-read "$KL_TARGET"
    fail "without the guard the kernel survived an LD read through the ioctl: $(first "$TAG" plain), $(kcalls "$TAG" plain) driver call(s)"
}
