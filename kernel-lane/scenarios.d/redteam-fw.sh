# shellcheck shell=sh
# Frame flags the firmware acts on besides the addressing ones (doc/rules.md, "The completion
# flag"): a reading DCMD (mfi_client rule frame.dont-post-flag: CTRL_GET_INFO with flags 0x0011)
# whose MFI_FRAME_DONT_POST_IN_REPLY_QUEUE tells the firmware not to post its completion. The
# 6.1 driver passes the bit on (it rewrites only IEEE, SGL64 and SENSE64): on a real MFI
# controller the ioctl then waits for good, and on a Fusion one the frame returns to the pool
# while the ioctl waits on it. QEMU's emulated controller ignores the bit and completes the frame
# all the same, so this lane shows only what reaches the driver: without the guard the kprobe
# sees flags 0x11; with it, under every mechanism, in enforce and read-only mode, 0x10, the call
# answers as without the guard, and the record names frame.dont-post-flag as a rewrite.

# rf_cleared TAG MODE RECMODE: the driver took the frame in without the bit, the client got the
# controller's answer, and the record of mode RECMODE names the rewrite
rf_cleared() {
    expect "$1" "$2" 'ret=0 '
    reached_kernel "$1" "$2" 1
    kernel_saw "$1" "$2" 'flags=0x10 '
    lines=$(grep '"record":"outcome"' "$OUT/$1.$2.jsonl" 2>/dev/null | grep -F "\"mode\":\"$3\"" |
        grep -F '"rule":"frame.dont-post-flag"' | grep -F '"verdict":"rewrite"' |
        grep -F '"flags_sent":"0x0010"')
    [ -n "$lines" ] || fail "$1 ($2): no outcome record of mode $3 rewriting with frame.dont-post-flag"
}

sc_redteam_fw_dont_post() {
    TAG=dont-post
    mfi plain "$TAG" rule frame.dont-post-flag
    expect "$TAG" plain 'ret=0 '
    reached_kernel "$TAG" plain 1
    kernel_saw "$TAG" plain 'flags=0x11 '
    for mode in guard readonly; do mfi "$mode" "$TAG" rule frame.dont-post-flag; done
    rf_cleared "$TAG" guard enforce
    rf_cleared "$TAG" readonly readonly
    same "$TAG" plain guard
    # (not m: fv_hostd sets it)
    via="library"
    if has_sup; then
        for mode in sup supro; do mfi "$mode" "$TAG" rule frame.dont-post-flag; done
        rf_cleared "$TAG" sup enforce
        rf_cleared "$TAG" supro readonly
        via="$via, $SUP_GUARD"
    fi
    for mode in $(hostd_modes); do
        fv_hostd "$TAG" "$mode" enforce rule frame.dont-post-flag
        rf_cleared "$TAG" "$mode" enforce
        fv_hostd "$TAG-ro" "$mode" readonly rule frame.dont-post-flag
        rf_cleared "$TAG-ro" "$mode" readonly
        via="$via, mfiguard-hostd ($mode)"
    done
    echo "CTRL_GET_INFO with DONT_POST_IN_REPLY_QUEUE: the driver took flags 0x11 without the guard (QEMU's controller ignores the bit), 0x10 with it, in enforce and read-only mode, under: $via; $(kernel_note)"
}
