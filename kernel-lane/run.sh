#!/usr/bin/env bash
# The real-kernel lane: Debian's 6.1 kernel and its own megaraid_sas driver, booted under QEMU (TCG)
# against QEMU's emulated LSI SAS2108 (-device megasas-gen2), with libmfiguard.so and the example
# client inside the guest. Each scenario of kernel-lane/scenarios.sh runs in the guest; its verdict
# comes back on a second serial port and is reported here, one line per scenario.
#
#   kernel-lane/run.sh [--lib PATH] [--client PATH] [--lib32 PATH --client32 PATH]
#                      [--supervisor PATH [--supervisor-args ARGS] --static-client PATH
#                       [--static-client32 PATH]]
#                      [--hostd PATH] [--smartctl PATH [--smartd PATH]] [--schema-check PATH]
#                      [--only REGEX] [--boot-only] [--keep] [--details]
#
#   --supervisor PATH      mfiguard-run (or the supervisor alone): every scenario also runs the static
#                          client under it ("sup" runs), checked against the same oracles
#   --supervisor-args ARGS what goes between it and the tool, e.g. "--via supervise --"
#   --static-client PATH   a statically linked mfi_client (as storcli64 is); --static-client32 the i386
#                          one (without it the i386 runs give the supervisor the dynamic i386 client)
#
#   --hostd PATH           mfiguard-hostd, the host-wide guard (CUSE): every scenario also runs the
#                          clients unwrapped against the node it serves ("hostd" runs: the dynamic
#                          client; "hostds": the static one, with --static-client), and the hostd_*
#                          scenarios check failing closed, the node put back, concurrency and its cost
#
#   --smartctl PATH        smartmontools' smartctl (dynamically linked, e.g. /usr/sbin/smartctl), put in
#                          the guest with its libraries for the smartctl scenario (skipped without it)
#   --smartd PATH          smartd too (e.g. /usr/sbin/smartd): the smartctl scenario adds a run of
#                          smartd -q onecheck without the guard and under the read-only policy
#
#   --schema-check PATH    mfiguard-schema-check (tests/schema-check): the guest sends one audit
#                          record of each kind it wrote (record, guard, key, mode, verdict: every
#                          mechanism's, mfiguard-hostd's included), and each is validated against
#                          doc/audit-record.schema.json; one that does not match fails the lane
#
#   --only REGEX   run the scenarios whose name (e.g. sgl_off_guarded@x86_64) matches; driver_* always run
#   --boot-only    only the driver_* scenarios: the kernel, the driver and the node, no guard needed
#   --keep         keep the work directory (logs) even when everything passed
#   --details      show every scenario's evidence, not only a failed one's
#
# Exit status: 0 every scenario passed (or was skipped), 1 a scenario failed or the guest did not
# finish, 2 a usage error or something missing on the host (the message says what).
#
# Environment (each flag wins over its variable):
#   MFIGUARD_LIB / MFI_CLIENT       default target/release/libmfiguard.so, target/release/examples/mfi_client
#   MFIGUARD_LIB32 / MFI_CLIENT32   an i386 build of both; the i386 runs are skipped unless both are set
#   MFIGUARD_SUPERVISOR, MFIGUARD_SUPERVISOR_ARGS, MFI_STATIC_CLIENT, MFI_STATIC_CLIENT32,
#   MFIGUARD_HOSTD, KL_SCHEMA_CHECK: as the flags
#   KL_CACHE_DIR      extracted kernel + modules, default ${XDG_CACHE_HOME:-$HOME/.cache}/mfiguard-kernel-lane
#   KL_KERNEL_PKG     Debian package to take the kernel from, default linux-image-amd64 (the metapackage
#                     is resolved to the linux-image-6.1.0-N-amd64 it depends on)
#   KL_BOOT_TIMEOUT   seconds one boot may take, scenarios included, default 150
#   KL_LANE_TIMEOUT   seconds the whole lane may take, setup included, default 285 (boots are cut short)
#   KL_ACCEL          QEMU accelerator, default tcg (KVM has been seen to hang on these machines)
#   KL_WORK_DIR       where the initramfs, disk and logs go (default: a fresh directory under $TMPDIR)
#   KL_SMARTCTL, KL_SMARTD  as --smartctl, --smartd
#   KL_EXTRA_BINS     space-separated extra host binaries to put on the guest's PATH (with their libraries)
#   KL_SCENARIOS      scenario file, default kernel-lane/scenarios.sh followed by every
#                     kernel-lane/scenarios.d/*.sh (one file per subject, in name order)
#   KL_TARGET         SCSI target id of the emulated disk (default 0)
#   KL_APPEND         extra kernel command line arguments
#   KL_VERBOSE=1      print the guest console as it runs
set -euo pipefail

trap 'echo "kernel-lane: unexpected failure at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR

LANE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LANE_DIR/.." && pwd)
T0=$(date +%s)

say() { printf '[kernel-lane %3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf 'kernel-lane: %s\n' "$*" >&2; exit 2; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

LIB=${MFIGUARD_LIB:-$REPO_DIR/target/release/libmfiguard.so}
CLIENT=${MFI_CLIENT:-$REPO_DIR/target/release/examples/mfi_client}
LIB32=${MFIGUARD_LIB32:-}
CLIENT32=${MFI_CLIENT32:-}
SUPERVISOR=${MFIGUARD_SUPERVISOR:-}
SUPERVISOR_ARGS=${MFIGUARD_SUPERVISOR_ARGS:-}
STATIC_CLIENT=${MFI_STATIC_CLIENT:-}
STATIC_CLIENT32=${MFI_STATIC_CLIENT32:-}
HOSTD=${MFIGUARD_HOSTD:-}
SMARTCTL=${KL_SMARTCTL:-}
SMARTD=${KL_SMARTD:-}
SCHEMA_CHECK=${KL_SCHEMA_CHECK:-}
ONLY=${KL_ONLY:-}
BOOT_ONLY=0
DETAILS=${KL_DETAILS:-0}
KEEP=${KL_KEEP:-0}
while [ $# -gt 0 ]; do
    case $1 in
        --lib) LIB=${2:?--lib needs a path}; shift 2 ;;
        --client) CLIENT=${2:?--client needs a path}; shift 2 ;;
        --lib32) LIB32=${2:?--lib32 needs a path}; shift 2 ;;
        --client32) CLIENT32=${2:?--client32 needs a path}; shift 2 ;;
        --supervisor) SUPERVISOR=${2:?--supervisor needs a path}; shift 2 ;;
        --supervisor-args) SUPERVISOR_ARGS=${2?--supervisor-args needs a value}; shift 2 ;;
        --static-client) STATIC_CLIENT=${2:?--static-client needs a path}; shift 2 ;;
        --static-client32) STATIC_CLIENT32=${2:?--static-client32 needs a path}; shift 2 ;;
        --hostd) HOSTD=${2:?--hostd needs a path}; shift 2 ;;
        --smartctl) SMARTCTL=${2:?--smartctl needs a path}; shift 2 ;;
        --smartd) SMARTD=${2:?--smartd needs a path}; shift 2 ;;
        --schema-check) SCHEMA_CHECK=${2:?--schema-check needs a path}; shift 2 ;;
        --only) ONLY=${2:?--only needs a regex}; shift 2 ;;
        --boot-only) BOOT_ONLY=1; shift ;;
        --keep) KEEP=1; shift ;;
        --details) DETAILS=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

CACHE_DIR=${KL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mfiguard-kernel-lane}
KERNEL_PKG=${KL_KERNEL_PKG:-linux-image-amd64}
BOOT_TIMEOUT=${KL_BOOT_TIMEOUT:-150}
LANE_TIMEOUT=${KL_LANE_TIMEOUT:-285}
DEADLINE=$((T0 + LANE_TIMEOUT))
ACCEL=${KL_ACCEL:-tcg}
SCENARIOS=${KL_SCENARIOS:-$LANE_DIR/scenarios.sh}
TARGET=${KL_TARGET:-0}
[ -f "$SCENARIOS" ] || die "scenario file not found: $SCENARIOS"
# The default scenario set: the shared helpers and scenarios, then one file per subject.
SCENARIO_PARTS=("$SCENARIOS")
if [ -z "${KL_SCENARIOS:-}" ] && [ -d "$LANE_DIR/scenarios.d" ]; then
    for f in "$LANE_DIR"/scenarios.d/*.sh; do [ -f "$f" ] && SCENARIO_PARTS+=("$f"); done
fi

# ---------------------------------------------------------------------------------------------------
# 1. Host tools. Installed with apt-get when missing and we are root; otherwise a clear message.
# ---------------------------------------------------------------------------------------------------
APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" = 1 ] && return 0
    say "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
}

apt_install() { # PACKAGE...
    command -v apt-get >/dev/null || die "missing: $* (no apt-get on this host: install them by hand)"
    [ "$(id -u)" = 0 ] || die "missing: $* (run as root, or: sudo apt-get install $*)"
    say "installing $*"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
            die "apt-get install $* failed"
    fi
}

need_tools() {
    local missing=() tool pkg
    # tool:package
    for pair in qemu-system-x86_64:qemu-system-x86 cpio:cpio ldd:libc-bin timeout:coreutils; do
        tool=${pair%%:*} pkg=${pair#*:}
        command -v "$tool" >/dev/null || missing+=("$pkg")
    done
    # A static busybox: the guest has no libraries of its own but those we copy in.
    if ! [ -x /bin/busybox ] || ! file_is_static /bin/busybox; then missing+=(busybox-static); fi
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 still missing after installing qemu-system-x86"
    [ -x /bin/busybox ] || die "/bin/busybox still missing after installing busybox-static"
}

file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------------
# 2. The kernel: Debian's package, downloaded (not installed) and extracted once into the cache.
# ---------------------------------------------------------------------------------------------------
# Load order: megaraid_sas needs scsi_mod needs scsi_common. sd_mod (and what it needs: t10-pi, which
# needs crc-t10dif and crc64-rocksoft) gives the disk its block device, /dev/sda: smartctl -d megaraid,N
# opens it to learn the SCSI host number of the controller (SCSI_IOCTL_GET_BUS_NUMBER). fuse and cuse
# (characters devices in userspace) let mfiguard-hostd serve the node.
MODULES=(scsi_common scsi_mod megaraid_sas crct10dif_common crc-t10dif crc64 crc64-rocksoft t10-pi sd_mod fuse cuse)

resolve_kernel_pkg() { # prints the concrete linux-image-<abi>-amd64 package and its candidate version
    local pkg=$KERNEL_PKG dep ver
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then apt_update_once; fi
    apt-cache show "$pkg" >/dev/null 2>&1 || die "apt knows no package $pkg (is this Debian with its main archive?)"
    # The metapackage linux-image-amd64 depends on exactly one linux-image-<abi>-amd64.
    dep=$(apt-cache depends "$pkg" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    [ -n "$dep" ] && pkg=$dep
    ver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then die "no installable version of $pkg"; fi
    printf '%s %s\n' "$pkg" "$ver"
}

fetch_kernel() {
    local pkg ver dir tmp deb kdir m f
    if [ -f "$CACHE_DIR/current" ] && [ -f "$CACHE_DIR/$(cat "$CACHE_DIR/current")/.complete" ]; then
        KDIR=$CACHE_DIR/$(cat "$CACHE_DIR/current")
        local have=1
        for m in "${MODULES[@]}"; do [ -f "$KDIR/modules/$m.ko" ] || have=0; done
        if [ "$have" = 1 ]; then
            say "kernel from cache: $KDIR"
            return
        fi
        say "the cached kernel lacks some of ${MODULES[*]}: extracting it again"
    fi
    command -v apt-get >/dev/null || die "no kernel in $CACHE_DIR and no apt-get to download $KERNEL_PKG"
    read -r pkg ver < <(resolve_kernel_pkg) || true
    [ -n "${ver:-}" ] || exit 2 # resolve_kernel_pkg said why
    dir=${pkg}_${ver//:/%}
    KDIR=$CACHE_DIR/$dir
    mkdir -p "$CACHE_DIR"
    rm -rf "$CACHE_DIR"/.fetch.* # left by an interrupted run
    tmp=$(mktemp -d "$CACHE_DIR/.fetch.XXXXXX")
    say "downloading $pkg $ver"
    chmod 0777 "$tmp" # apt's _apt user writes the .deb
    (cd "$tmp" && apt-get download -qq "$pkg=$ver" >/dev/null 2>&1) ||
        (cd "$tmp" && apt_update_once && apt-get download -qq "$pkg=$ver" >/dev/null) ||
        die "apt-get download $pkg=$ver failed"
    deb=$(ls "$tmp"/*.deb)
    say "extracting kernel and ${MODULES[*]} from $(basename "$deb")"
    mkdir -p "$tmp/x"
    dpkg-deb -x "$deb" "$tmp/x" || die "dpkg-deb -x $deb failed"
    rm -rf "$KDIR" && mkdir -p "$KDIR/modules"
    for f in "$tmp"/x/boot/vmlinuz-*; do [ -f "$f" ] && cp "$f" "$KDIR/vmlinuz"; done
    [ -f "$KDIR/vmlinuz" ] || die "no /boot/vmlinuz-* in $deb"
    kdir=
    for f in "$tmp"/x/lib/modules/* "$tmp"/x/usr/lib/modules/*; do [ -d "$f" ] && kdir=$f && break; done
    [ -n "$kdir" ] || die "no lib/modules/<release> in $deb"
    basename "$kdir" >"$KDIR/release"
    for m in "${MODULES[@]}"; do
        f=$(find "$kdir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" | head -n1)
        [ -n "$f" ] || die "module $m not found in $deb"
        case $f in # busybox insmod takes plain ELF: decompress here, once
            *.ko) cp "$f" "$KDIR/modules/$m.ko" ;;
            *.xz) xz -dc "$f" >"$KDIR/modules/$m.ko" ;;
            *.zst) zstd -qdc "$f" >"$KDIR/modules/$m.ko" ;;
            *.gz) gzip -dc "$f" >"$KDIR/modules/$m.ko" ;;
        esac
    done
    printf '%s %s\n' "$pkg" "$ver" >"$KDIR/package"
    touch "$KDIR/.complete"
    printf '%s\n' "$dir" >"$CACHE_DIR/current"
    rm -rf "$tmp"
}

# ---------------------------------------------------------------------------------------------------
# 3. The initramfs: busybox, the modules, the host's glibc and loader, the guard and the clients.
# ---------------------------------------------------------------------------------------------------
copy_with_libs() { # SRC DEST_IN_ROOT: copy an ELF file and every shared library ldd finds for it
    local src=$1 dest=$2 lib
    mkdir -p "$ROOT$(dirname "$dest")"
    cp -L "$src" "$ROOT$dest"
    strip_debug "$ROOT$dest"
    # ldd lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    # A static program has no libraries (ldd fails on a static i386 one: not an error here).
    { ldd "$src" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
        [ -e "$ROOT$lib" ] && continue
        mkdir -p "$ROOT$(dirname "$lib")"
        cp -L "$lib" "$ROOT$lib"
    done
    if ldd "$src" 2>&1 | grep -q 'not found'; then
        die "$src needs libraries this host lacks: $(ldd "$src" 2>&1 | grep 'not found' | tr -s ' \t' ' ')"
    fi
}

# The release profile keeps debug info; the guest needs none of it and TCG loads what it is given.
strip_debug() { if command -v strip >/dev/null; then strip --strip-debug "$1" 2>/dev/null || true; fi; }

# The boots: the first runs the driver checks and every ordinary scenario; each hazard_* scenario
# (the kernel writes outside its frame, which may oops it) gets a fresh kernel of its own; the
# scenarios marked `sc_NAME() { # boot GROUP [ARGS...]` share a boot per GROUP, of the first ABI
# only, whose kernel command line gets ARGS too (e.g. an lsm= list).
plan_boots() {
    local all abi n g first=() more=() hazards=() ordinary grouped
    all=$(sed -n 's/^sc_\([A-Za-z0-9_]*\)() *{.*/\1/p' "$SCENARIOS")
    grouped=$(sed -n 's/^sc_\([A-Za-z0-9_]*\)() *{ *# boot [a-z0-9-]*.*/\1/p' "$SCENARIOS" | tr '\n' ' ')
    for n in $all; do case $n in driver_*) first+=("$n") ;; esac; done
    if [ "$BOOT_ONLY" = 0 ]; then
        for abi in $ABIS; do
            ordinary=()
            for n in $all; do
                case $n in driver_* | hazard_*) continue ;; esac
                case " $grouped " in *" $n "*) continue ;; esac
                ordinary+=("$n@$abi")
            done
            # The first ABI's scenarios share the driver checks' boot; each other ABI gets one
            # of its own (and its own timeout).
            if [ ${#more[@]} -eq 0 ] && [ "$abi" = "${ABIS%% *}" ]; then
                first+=("${ordinary[@]}")
            else
                n=$(only "${ordinary[@]}")
                [ -n "$n" ] && more+=("$n")
            fi
            for n in $all; do
                case $n in hazard_*)
                    # `sc_NAME() { # first ABI only`: the hazard is the kernel's alone, the same
                    # whichever ABI calls; one boot is enough.
                    if [ "$abi" != "${ABIS%% *}" ] && grep -q "^sc_$n() *{ *# first ABI only" "$SCENARIOS"; then
                        continue
                    fi
                    hazards+=("$n@$abi")
                    ;;
                esac
            done
        done
    fi
    BOOTS=("$(only "${first[@]}")" "${more[@]}")
    BOOT_APPEND=()
    for n in "${hazards[@]}"; do
        n=$(only "$n")
        [ -n "$n" ] && BOOTS+=("$n")
    done
    if [ "$BOOT_ONLY" = 0 ]; then
        # shellcheck disable=SC2013 # a group's name is one word
        for g in $(sed -n 's/^sc_[A-Za-z0-9_]*() *{ *# boot \([a-z0-9-]*\).*/\1/p' "$SCENARIOS" | awk '!seen[$0]++'); do
            # shellcheck disable=SC2046 # one scenario name a word
            n=$(only $(sed -n "s/^sc_\([A-Za-z0-9_]*\)() *{ *# boot $g\( .*\)\{0,1\}$/\1@${ABIS%% *}/p" "$SCENARIOS"))
            [ -n "$n" ] || continue
            BOOT_APPEND[${#BOOTS[@]}]=$(sed -n "s/^sc_[A-Za-z0-9_]*() *{ *# boot $g \(.*\)$/\1/p" "$SCENARIOS" | head -n 1)
            BOOTS+=("$n")
        done
    fi
    PLAN=()
    local words
    for n in "${BOOTS[@]}"; do read -ra words <<<"$n" && PLAN+=("${words[@]}"); done
}

only() { # NAME...: those --only selects (driver checks always: without them a failure says nothing)
    local n out=()
    for n in "$@"; do
        if [ -z "$ONLY" ] || [[ $n == driver_* ]] || [[ $n =~ $ONLY ]]; then out+=("$n"); fi
    done
    printf '%s' "${out[*]}"
}

build_initramfs() { # the part every boot shares; boot() appends the boot's own /etc/lane.conf
    local m b
    ROOT=$WORK/root
    rm -rf "$ROOT" && mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,modules,opt/mfiguard,opt/extra}
    cp /bin/busybox "$ROOT/bin/busybox"
    for m in "${MODULES[@]}"; do cp "$KDIR/modules/$m.ko" "$ROOT/modules/"; done
    cp "$LANE_DIR/guest-init.sh" "$ROOT/init" && chmod 0755 "$ROOT/init"
    cp "$SCENARIOS" "$ROOT/etc/scenarios.sh"
    if [ "$BOOT_ONLY" = 0 ]; then
        copy_with_libs "$CLIENT" /opt/mfiguard/mfi_client
        copy_with_libs "$LIB" /opt/mfiguard/libmfiguard.so
        if [ -n "$CLIENT32" ]; then
            copy_with_libs "$CLIENT32" /opt/mfiguard/i386/mfi_client
            copy_with_libs "$LIB32" /opt/mfiguard/i386/libmfiguard.so
        fi
        if [ -n "$SMARTCTL" ]; then
            [ -f "$SMARTCTL" ] || die "smartctl not found: $SMARTCTL (apt-get install smartmontools)"
            copy_with_libs "$SMARTCTL" /opt/extra/smartctl
        fi
        if [ -n "$SMARTD" ]; then
            [ -f "$SMARTD" ] || die "smartd not found: $SMARTD (apt-get install smartmontools)"
            copy_with_libs "$SMARTD" /opt/extra/smartd
        fi
        if [ -n "$HOSTD" ]; then
            [ -f "$HOSTD" ] || die "mfiguard-hostd not found: $HOSTD"
            copy_with_libs "$HOSTD" /opt/mfiguard/hostd
        fi
        if [ -n "$HOSTD" ]; then
            [ -z "$STATIC_CLIENT" ] || copy_with_libs "$STATIC_CLIENT" /opt/mfiguard/static/mfi_client
            [ -z "$STATIC_CLIENT32" ] || copy_with_libs "$STATIC_CLIENT32" /opt/mfiguard/i386/static/mfi_client
        fi
        if [ -n "$SUPERVISOR" ]; then
            [ -f "$SUPERVISOR" ] || die "supervisor not found: $SUPERVISOR"
            [ -f "$STATIC_CLIENT" ] || die "--supervisor needs --static-client (a static mfi_client)"
            copy_with_libs "$SUPERVISOR" /opt/mfiguard/supervisor
            copy_with_libs "$STATIC_CLIENT" /opt/mfiguard/static/mfi_client
            if [ -n "$STATIC_CLIENT32" ]; then
                copy_with_libs "$STATIC_CLIENT32" /opt/mfiguard/i386/static/mfi_client
            fi
        fi
    fi
    for b in ${KL_EXTRA_BINS:-}; do
        [ -f "$b" ] || die "KL_EXTRA_BINS: no file $b"
        copy_with_libs "$b" "/opt/extra/$(basename "$b")"
    done
    # Uncompressed newc archives: the kernel unpacks them without spending TCG time on gzip. The kernel
    # takes concatenated archives, so each boot's initrd is this one followed by its lane.conf.
    (cd "$ROOT" && find . -print | LC_ALL=C sort | cpio -o -H newc --quiet) >"$WORK/base.cpio"
}

boot() { # N PLAN: boot N runs the scenarios of PLAN; leaves console.N.log, results.N.log, BOOT_RC[N]
    local i=$1 plan=$2 rc=0 disk=$WORK/disk.img accel_args conf=$WORK/conf.$1 left timeout
    mkdir -p "$conf/etc"
    {
        printf 'KL_BOOT=%s\n' "$i"
        printf 'KL_PLAN="%s"\n' "$plan"
        printf 'KL_MODULES="%s"\n' "${MODULES[*]}"
        printf 'KL_TARGET=%s\n' "$TARGET"
        printf 'KL_RELEASE=%s\n' "$(cat "$KDIR/release")"
        printf 'KL_DETAILS=%s\n' "$DETAILS"
        printf 'KL_SUP_ARGS="%s"\n' "$SUPERVISOR_ARGS"
    } >"$conf/etc/lane.conf"
    (cd "$conf" && printf 'etc/lane.conf\n' | cpio -o -H newc --quiet) | cat "$WORK/base.cpio" - >"$WORK/initrd.cpio"
    rm -f "$disk" && truncate -s 64M "$disk"
    # A second disk, attached only when a scenario asks for it (hotplug: QEMU's monitor).
    rm -f "$WORK/disk2.img" && truncate -s 16M "$WORK/disk2.img"
    rm -f "$WORK/mon.$i.in" "$WORK/mon.$i.out" && mkfifo "$WORK/mon.$i.in" "$WORK/mon.$i.out"
    : >"$WORK/console.$i.log" && : >"$WORK/results.$i.log"
    case $ACCEL in
        tcg) accel_args=(-accel tcg) ;;
        *) accel_args=(-accel "$ACCEL" -cpu host) ;;
    esac
    # Each boot has its own timeout, and all of them together the lane's.
    left=$((DEADLINE - $(date +%s)))
    timeout=$BOOT_TIMEOUT
    [ "$left" -lt "$timeout" ] && timeout=$left
    if [ "$timeout" -le 0 ]; then
        say "boot $i skipped: the lane's ${LANE_TIMEOUT}s are spent"
        BOOT_RC[i]=124
        return
    fi
    say "boot $i: $plan (timeout ${timeout}s)${BOOT_APPEND[i]:+ with ${BOOT_APPEND[i]}}"
    local qemu=(qemu-system-x86_64 "${accel_args[@]}" -m 512 -smp 1 -nographic -no-reboot -nic none
        -chardev "pipe,id=mon0,path=$WORK/mon.$i" -mon "chardev=mon0,mode=readline"
        -serial "file:$WORK/console.$i.log" -serial "file:$WORK/results.$i.log"
        -kernel "$KDIR/vmlinuz" -initrd "$WORK/initrd.cpio"
        -append "console=ttyS0 panic=-1 rdinit=/init ${KL_APPEND:-} ${BOOT_APPEND[i]:-}"
        -device "megasas-gen2,id=scsi0"
        -drive "file=$disk,if=none,format=raw,id=d0"
        -device "scsi-hd,drive=d0,bus=scsi0.0"
        -drive "file=$WORK/disk2.img,if=none,format=raw,id=d1")
    if [ "${KL_VERBOSE:-0}" = 1 ]; then
        tail -n +1 -F "$WORK/console.$i.log" 2>/dev/null &
        TAIL_PID=$!
    fi
    cat "$WORK/mon.$i.out" >"$WORK/monitor.$i.log" &
    MON_PID=$!
    hotplug_watch "$i" &
    HOTPLUG_PID=$!
    timeout -k 5 "$timeout" "${qemu[@]}" </dev/null >"$WORK/qemu.$i.log" 2>&1 || rc=$?
    kill "$HOTPLUG_PID" "$MON_PID" 2>/dev/null || true
    wait "$HOTPLUG_PID" "$MON_PID" 2>/dev/null || true
    if [ -n "${TAIL_PID:-}" ]; then kill "$TAIL_PID" 2>/dev/null || true; wait "$TAIL_PID" 2>/dev/null || true; fi
    tr -d '\r' <"$WORK/results.$i.log" >"$WORK/results.$i.txt"
    BOOT_RC[i]=$rc
    BOOT_TIMEOUT_USED[i]=$timeout
}

# A scenario asks the host to plug or unplug the second disk (guest-init.sh's hotplug: a
# "KL-HOTPLUG add|del" line on the results port); the host says it on QEMU's monitor.
hotplug_watch() { # BOOT
    local i=$1 done=0 n what
    while sleep 0.2; do
        n=$(grep -c '^KL-HOTPLUG ' "$WORK/results.$i.log" 2>/dev/null) || n=0
        while [ "$done" -lt "$n" ]; do
            done=$((done + 1))
            what=$(grep '^KL-HOTPLUG ' "$WORK/results.$i.log" | sed -n "${done}p" | tr -d '\r' | awk '{ print $2 }')
            case $what in
                add) echo 'device_add scsi-hd,drive=d1,bus=scsi0.0,scsi-id=1,id=hp1' ;;
                del) echo 'device_del hp1' ;;
                *) continue ;;
            esac >"$WORK/mon.$i.in"
        done
    done
}

# A scenario that kills the kernel on purpose says so first (guest-init.sh's expect_panic: one
# "KL-PANIC NAME ERE" line per pattern) and never reports. It passes when its boot's console shows
# a kernel panic and every pattern; prints the oops's first lines and the panic's then.
expected_panic() { # BOOT NAME
    local i=$1 n=$2 re console
    grep -q "^KL-PANIC $n " "$WORK/results.$i.txt" || return 1
    console=$(tr -d '\r' <"$WORK/console.$i.log")
    grep -q 'Kernel panic - not syncing' <<<"$console" || return 1
    while read -r re; do
        grep -qE -- "$re" <<<"$console" || return 1
    done < <(sed -n "s/^KL-PANIC $n //p" "$WORK/results.$i.txt")
    for re in 'BUG:|Oops' 'RIP:' 'Kernel panic - not syncing'; do grep -m1 -E "$re" <<<"$console"; done |
        sed 's/^\[[ 0-9.]*\] //' | paste -sd ';' | sed 's/;/; /g'
}

report() {
    local i n line verdict detail failed=0 passed=0 skipped=0 bad_boots=() panicked=()
    printf '\n'
    for i in "${!BOOTS[@]}"; do
        for n in ${BOOTS[i]}; do
            line=$(grep -m1 "^KL-RESULT $(printf '%s' "$n" | sed 's/[].[\*^$]/\\&/g') " "$WORK/results.$i.txt" || true)
            verdict=$(printf '%s' "$line" | awk '{ print $3 }')
            detail=$(printf '%s' "$line" | cut -d' ' -f4-)
            if [ -z "$verdict" ] && detail=$(expected_panic "$i" "$n"); then
                verdict=PASS detail="the kernel died as expected: $detail"
                panicked+=("$i")
            fi
            case $verdict in
                PASS) passed=$((passed + 1)) ;;
                SKIP) skipped=$((skipped + 1)) ;;
                FAIL) failed=$((failed + 1)) ;;
                *)
                    verdict=FAIL detail="no result: boot $i stopped or timed out before it"
                    if grep -q "^KL-PANIC $n " "$WORK/results.$i.txt"; then
                        detail="no result, and the console does not show the kernel panic it expected: $(sed -n "s/^KL-PANIC $n //p" "$WORK/results.$i.txt" | paste -sd '|')"
                    fi
                    failed=$((failed + 1))
                    ;;
            esac
            [ "$verdict" = FAIL ] && bad_boots+=("$i")
            printf '  %-4s  %-40s %s\n' "$verdict" "$n" "$detail"
        done
        grep '^KL-INFO ' "$WORK/results.$i.txt" | sed "s/^KL-INFO /  info  boot $i: /" || true
        if ! grep -q '^KL-DONE' "$WORK/results.$i.txt" && [[ " ${panicked[*]} " != *" $i "* ]]; then
            failed=$((failed + 1))
            bad_boots+=("$i")
            if [ "${BOOT_RC[i]}" = 124 ] || [ "${BOOT_RC[i]}" = 137 ]; then
                printf '  FAIL  boot %s did not finish within %ss (no KL-DONE sentinel)\n' "$i" "${BOOT_TIMEOUT_USED[i]:-0}"
            else
                printf '  FAIL  boot %s stopped without the KL-DONE sentinel (qemu exit %s)\n' "$i" "${BOOT_RC[i]}"
            fi
        fi
    done
    printf '\n'
    if [ "$DETAILS" = 1 ] || [ "$failed" -gt 0 ]; then
        for i in "${!BOOTS[@]}"; do
            if grep -q '^KL-DETAIL ' "$WORK/results.$i.txt"; then
                printf -- '--- boot %s: scenario details ---\n' "$i"
                grep '^KL-DETAIL ' "$WORK/results.$i.txt" | sed 's/^KL-DETAIL //'
            fi
        done
    fi
    for i in $(printf '%s\n' "${bad_boots[@]}" | sort -un); do
        printf '\n--- boot %s: qemu output ---\n' "$i"
        cat "$WORK/qemu.$i.log"
        printf -- '--- boot %s: guest console (%s) ---\n' "$i" "$WORK/console.$i.log"
        tr -d '\r' <"$WORK/console.$i.log"
        printf -- '--- boot %s: end of guest console ---\n\n' "$i"
        KEEP=1
    done
    if [ -n "$SCHEMA_CHECK" ]; then
        # One record of each kind the guests wrote, against the schema the packages ship.
        cat "$WORK"/results.*.txt | sed -n 's/^KL-RECORD //p' >"$WORK/records.jsonl"
        local kinds
        kinds=$(grep -c . "$WORK/records.jsonl" || true)
        if [ "$kinds" = 0 ] && [ "$BOOT_ONLY" = 0 ]; then
            failed=$((failed + 1))
            printf '  FAIL  %-40s %s\n' records "the guests sent no audit record to validate"
        elif ! "$SCHEMA_CHECK" "$LANE_DIR/../doc/audit-record.schema.json" <"$WORK/records.jsonl" >"$WORK/records.check" 2>&1; then
            failed=$((failed + 1))
            printf '  FAIL  %-40s %s\n' records "records that do not match doc/audit-record.schema.json:"
            sed 's/^/        /' "$WORK/records.check"
            grep -n . "$WORK/records.jsonl" | sed 's/^/        /' | cut -c1-400
            KEEP=1
        else
            printf '  PASS  %-40s %s\n' records "$kinds kinds of audit record (every mechanism's) valid by doc/audit-record.schema.json"
        fi
    fi
    say "$passed passed, $failed failed, $skipped skipped in ${#BOOTS[@]} boot(s) ($(cat "$KDIR/package"), accel $ACCEL)"
    [ "$failed" = 0 ]
}

main() {
    need_tools
    if [ "$BOOT_ONLY" = 0 ]; then
        [ -f "$LIB" ] || die "libmfiguard.so not found at $LIB (build: cargo build --release -p mfiguard-preload; or pass --lib / MFIGUARD_LIB; --boot-only checks the kernel and driver alone)"
        [ -f "$CLIENT" ] || die "mfi_client not found at $CLIENT (build: cargo build --release --examples; or pass --client / MFI_CLIENT)"
        ABIS=x86_64
        if [ -n "$CLIENT32" ] || [ -n "$LIB32" ]; then
            [ -f "$CLIENT32" ] || die "i386 client not found: '${CLIENT32}' (MFI_CLIENT32 / --client32; both or neither of the i386 pair)"
            [ -f "$LIB32" ] || die "i386 libmfiguard.so not found: '${LIB32}' (MFIGUARD_LIB32 / --lib32)"
            ABIS="x86_64 i386"
        fi
    else
        ABIS=
    fi
    fetch_kernel
    if [ -n "${KL_WORK_DIR:-}" ]; then
        WORK=$KL_WORK_DIR && mkdir -p "$WORK"
    else
        WORK=$(mktemp -d "${TMPDIR:-/tmp}/mfiguard-kernel-lane.XXXXXX")
    fi
    trap cleanup EXIT
    cat "${SCENARIO_PARTS[@]}" >"$WORK/scenarios.sh"
    SCENARIOS=$WORK/scenarios.sh
    plan_boots
    build_initramfs
    say "initramfs: $(du -h "$WORK/base.cpio" | cut -f1); ${#PLAN[@]} scenarios in ${#BOOTS[@]} boot(s) of $(cat "$KDIR/package") under QEMU ($ACCEL)"
    for i in "${!BOOTS[@]}"; do
        boot "$i" "${BOOTS[i]}"
        # A guest that died before its first scenario (TCG has been seen to corrupt a page table
        # while the modules load) says nothing about mfiguard: it is booted once more.
        if ! grep -q '^KL-\(RESULT\|PANIC\) ' "$WORK/results.$i.log"; then
            say "boot $i ended before its first scenario: booting it again"
            cp "$WORK/console.$i.log" "$WORK/console.$i.first.log"
            boot "$i" "${BOOTS[i]}"
        fi
    done
    report
}

cleanup() {
    local rc=$?
    rm -rf "$WORK/root" "$WORK"/conf.* "$WORK"/*.cpio "$WORK/disk.img"
    if [ "$KEEP" = 1 ]; then
        say "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}

main
