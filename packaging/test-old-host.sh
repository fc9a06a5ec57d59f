#!/usr/bin/env bash
# packaging/test-old-host.sh: the packages on an old userland. A Debian 11 (bullseye, glibc 2.31)
# minbase chroot (or another release: --suite) gets the built .debs (dpkg -i), then the example client runs in it through the
# installed mfiguard-run, in enforce and in readonly mode, against the legacy-driver simulator,
# with the 64-bit and with the 32-bit library. The oracle is the simulator's record of what
# reached the (simulated) driver. At the end the packages are purged, which must remove the
# logs' directory.
#
#   packaging/test-old-host.sh [--suite bullseye|bookworm] [--refresh] [--keep]
#
#   --suite    the Debian release of the chroot: bullseye (11, glibc 2.31, the default: the
#              old host) or bookworm (12, glibc 2.36: the packages on Debian 12 without
#              installing them on the build host)
#   --refresh  debootstrap the cached chroot again
#   --keep     keep the work copy of the chroot (its path is printed)
#
# Root only (debootstrap, chroot, mount). The pristine chroot is cached outside the repository,
# in $MFIGUARD_CHROOT_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/mfiguard/SUITE), made
# once with `debootstrap --variant=minbase --include=libc6-i386 SUITE` (about 250 MB, two or
# three minutes); each run works on a copy of it (seconds), so nothing leaks between runs.
#
# Inputs (built by packaging/build-packages.sh; environment variables override):
#   MFIGUARD_DEB     target/debian/mfiguard_<version>-*_amd64.deb
#   MFIGUARD_DEB32   target/debian/mfiguard-i386_<version>-*_amd64.deb
#   MFI_CLIENT64 / MFISIM64   target/portable/x86_64-unknown-linux-gnu/release/examples/{mfi_client,liblegacy_sim.so}
#   MFI_CLIENT32 / MFISIM32   target/portable/i686-unknown-linux-gnu/release/examples/{mfi_client,liblegacy_sim.so}
#   (the client and the simulator built with the same glibc floor as the packages, by
#    build-packages.sh: cargo zigbuild --release --target TRIPLE.2.17 -p mfiguard --example ...)
#   MFIGUARD_MIRROR  Debian mirror for debootstrap, default http://deb.debian.org/debian
#
# Exit status: 0 every check passed, 1 a check failed, 2 usage or a missing input.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

refresh=0 keep=0 SUITE=bullseye
while [ $# -gt 0 ]; do
	arg=$1
	shift
	case $arg in
	--suite)
		SUITE=${1:?--suite needs bullseye or bookworm}
		shift
		;;
	--refresh) refresh=1 ;;
	--keep) keep=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: $0 [--suite bullseye|bookworm] [--refresh] [--keep]" >&2
		exit 2
		;;
	esac
done

T0=$(date +%s)
say() { printf '[old-host %3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() {
	echo "test-old-host: $*" >&2
	exit 2
}
failures=0
fail() {
	echo "test-old-host: FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { say "ok: $*"; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount)"

target=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
	sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || target=$REPO/target
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
one() { # one GLOB: the single file GLOB names, or die
	local m
	# shellcheck disable=SC2206 # the glob is the point
	m=($1)
	if [ ${#m[@]} != 1 ] || [ ! -f "${m[0]}" ]; then
		die "expected one file for $1, found: ${m[*]} (run packaging/build-packages.sh)"
	fi
	printf '%s\n' "${m[0]}"
}
DEB=${MFIGUARD_DEB:-$(one "$target/debian/mfiguard_$version-*_amd64.deb")}
DEB32=${MFIGUARD_DEB32:-$(one "$target/debian/mfiguard-i386_$version-*_amd64.deb")}
CLIENT64=${MFI_CLIENT64:-$target/portable/x86_64-unknown-linux-gnu/release/examples/mfi_client}
SIM64=${MFISIM64:-$target/portable/x86_64-unknown-linux-gnu/release/examples/liblegacy_sim.so}
CLIENT32=${MFI_CLIENT32:-$target/portable/i686-unknown-linux-gnu/release/examples/mfi_client}
SIM32=${MFISIM32:-$target/portable/i686-unknown-linux-gnu/release/examples/liblegacy_sim.so}
for f in "$DEB" "$DEB32" "$CLIENT64" "$SIM64" "$CLIENT32" "$SIM32"; do
	[ -f "$f" ] || die "$f is missing (run packaging/build-packages.sh)"
done
MIRROR=${MFIGUARD_MIRROR:-http://deb.debian.org/debian}
case $SUITE in
bullseye) RELEASE="Debian 11" GLIBC="glibc 2.31" ;;
bookworm) RELEASE="Debian 12" GLIBC="glibc 2.36" ;;
*) die "--suite: '$SUITE' is not bullseye or bookworm" ;;
esac
CACHE=${MFIGUARD_CHROOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mfiguard/$SUITE}

# ---- the pristine chroot, cached ----------------------------------------------------------------
if ! command -v debootstrap >/dev/null; then
	say "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } ||
		die "cannot install debootstrap"
fi
if [ "$refresh" = 1 ] || [ ! -f "$CACHE/.complete" ]; then
	say "debootstrap $SUITE into $CACHE (cached for later runs)"
	rm -rf --one-file-system "$CACHE" "$CACHE.tmp"
	mkdir -p "$(dirname "$CACHE")"
	# libc6-i386: the 32-bit C library that mfiguard-i386 depends on.
	debootstrap --variant=minbase --include=libc6-i386 "$SUITE" "$CACHE.tmp" "$MIRROR" \
		>"$CACHE.log" 2>&1 || {
		tail -n 20 "$CACHE.log" >&2
		die "debootstrap failed (log: $CACHE.log)"
	}
	# apt's package lists are not needed: the chroot installs only our .debs.
	rm -rf "$CACHE.tmp"/var/cache/apt/archives/*.deb
	touch "$CACHE.tmp/.complete"
	mv "$CACHE.tmp" "$CACHE"
else
	say "chroot from cache: $CACHE"
fi

# ---- a work copy, with /proc and /dev/null; always unmounted ------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/mfiguard-oldhost.XXXXXX")
root=$work/root
mounts=()
cleanup() {
	local m i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		m=${mounts[i]}
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	# Never delete through a mount still in place.
	for m in "${mounts[@]}"; do
		if mountpoint -q "$m" 2>/dev/null; then
			echo "test-old-host: $m is still mounted: $work left in place" >&2
			return
		fi
	done
	if [ "$keep" = 1 ]; then
		echo "test-old-host: work copy kept: $root" >&2
	else
		rm -rf --one-file-system "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp -a "$CACHE" "$root"
mount -t proc proc "$root/proc"
mounts+=("$root/proc")
# debootstrap makes the device nodes when it can; a container may not let it: bind the host's.
if [ ! -c "$root/dev/null" ]; then
	rm -f "$root/dev/null"
	touch "$root/dev/null"
	mount --bind /dev/null "$root/dev/null"
	mounts+=("$root/dev/null")
fi
[ -c "$root/dev/null" ] || die "no /dev/null in the chroot"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C "$@"; }

glibc=$(in_root getconf GNU_LIBC_VERSION)
say "chroot: $(cat "$root/etc/debian_version"), $glibc"
[ "$glibc" = "$GLIBC" ] || fail "the chroot's C library is '$glibc', not $SUITE's $GLIBC"

# ---- install ------------------------------------------------------------------------------------
cp "$DEB" "$DEB32" "$root/tmp/"
say "dpkg -i $(basename "$DEB") $(basename "$DEB32")"
if in_root dpkg -i "/tmp/$(basename "$DEB")" "/tmp/$(basename "$DEB32")" >"$work/dpkg.out" 2>&1; then
	pass "both packages installed on $RELEASE"
else
	cat "$work/dpkg.out" >&2
	fail "dpkg -i failed in the $SUITE chroot"
	exit 1
fi
perm=$(stat -c '%a %U:%G' "$root/var/log/mfiguard" 2>/dev/null || echo missing)
if [ "$perm" = "750 root:adm" ]; then
	pass "/var/log/mfiguard is 750 root:adm"
else
	fail "/var/log/mfiguard is '$perm', expected 750 root:adm"
fi

# The host-wide guard runs on this glibc: its version, and its status (off: no daemon, and this
# kernel may lack CUSE), exit 1 with the reason on stdout.
hostd_version=$(in_root /usr/sbin/mfiguard-hostd --version 2>&1)
if [ "$hostd_version" = "mfiguard-hostd $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ]; then
	pass "mfiguard-hostd runs on $RELEASE: $hostd_version"
else
	fail "mfiguard-hostd --version in the chroot: $hostd_version"
fi
if out=$(in_root /usr/sbin/mfiguard-hostd --status 2>&1); then
	fail "mfiguard-hostd --status says active in the chroot: $out"
else
	case $out in
	"host-wide guard: off: "*) pass "mfiguard-hostd --status: $(printf '%s' "$out" | cut -c1-60)..." ;;
	*) fail "mfiguard-hostd --status in the chroot: $out" ;;
	esac
fi

# ---- the clients and simulators, 64- and 32-bit -------------------------------------------------
mkdir -p "$root/opt/t/64" "$root/opt/t/32"
cp "$CLIENT64" "$SIM64" "$root/opt/t/64/"
cp "$CLIENT32" "$SIM32" "$root/opt/t/32/"

# guard_check: the installed wrapper proves both libraries intercept (the probes run under them).
if out=$(in_root mfiguard-run --check 2>&1); then
	for c in 64 32; do
		if printf '%s\n' "$out" | grep -A1 "^library ($c-bit): /usr/lib/mfiguard/" | grep -q 'intercepted: yes'; then
			pass "mfiguard-run --check: the $c-bit library intercepts"
		else
			fail "mfiguard-run --check did not prove the $c-bit library"
		fi
	done
else
	printf '%s\n' "$out" >&2
	fail "mfiguard-run --check failed in the chroot"
fi

# run NAME CLASS MODE|none SCENARIO...: the client in the chroot, under the simulator, through
# mfiguard-run in MODE (none: without the guard), with the library (--via preload, the simulator
# preloaded after it into the tool) or, for MODE sup-enforce and sup-readonly, the supervisor
# (--via supervise, the 64-bit simulator preloaded into mfiguard-run alone: MFISIM_ONLY_IN).
# Leaves $work/NAME.{out,err,rec,audit}.
run() {
	local name=$1 c=$2 mode=$3 rc=0 via=preload sim
	shift 3
	rm -f "$root/tmp/rec.jsonl" "$root/tmp/audit.jsonl"
	sim=/opt/t/$c/liblegacy_sim.so
	case $mode in sup-*) mode=${mode#sup-} via=supervise sim=/opt/t/64/liblegacy_sim.so ;; esac
	local base=(MFIGUARD_DEVICE=/dev/null MFIGUARD_CONFIG=/dev/null MFISIM_RECORD=/tmp/rec.jsonl
		"LD_PRELOAD=$sim" MFISIM_ONLY_IN=mfiguard-run)
	[ "$via" = preload ] && base=("${base[@]:0:4}")
	if [ "$mode" = none ]; then
		in_root "${base[@]}" "/opt/t/$c/mfi_client" --device /dev/null "$@" \
			>"$work/$name.out" 2>"$work/$name.err" || rc=$?
	else
		in_root "${base[@]}" mfiguard-run --via "$via" --mode "$mode" --log /tmp/audit.jsonl -- \
			"/opt/t/$c/mfi_client" --device /dev/null "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
	fi
	echo "$rc" >"$work/$name.rc"
	if [ -f "$root/tmp/rec.jsonl" ]; then cp "$root/tmp/rec.jsonl" "$work/$name.rec"; else : >"$work/$name.rec"; fi
	if [ -f "$root/tmp/audit.jsonl" ]; then cp "$root/tmp/audit.jsonl" "$work/$name.audit"; else : >"$work/$name.audit"; fi
	# The loader must not have skipped a library ("cannot be preloaded", "version `GLIBC_2.34'
	# not found"). One line is expected for a 32-bit tool: the wrapper is a 64-bit program and
	# starts with the caller's LD_PRELOAD, which names the 32-bit simulator; the 64-bit loader
	# skips it there ("wrong ELF class: ELFCLASS32"), and the wrapper passes it on to the tool.
	# Under the supervisor a 32-bit tool inherits the 64-bit simulator (inert in it): the same
	# line the other way round.
	if grep -v "object '/opt/t/\(32/liblegacy_sim.so' from LD_PRELOAD cannot be preloaded (wrong ELF class: ELFCLASS32\|64/liblegacy_sim.so' from LD_PRELOAD cannot be preloaded (wrong ELF class: ELFCLASS64\)): ignored.\$" \
		"$work/$name.err" | grep -q 'ld.so\|cannot be preloaded\|wrong ELF class\|GLIBC_'; then
		fail "$name: the loader complained: $(head -n 3 "$work/$name.err")"
	fi
}
calls() { wc -l <"$work/$1.rec" | tr -d ' '; }
show() { sed 's/^/    /' "$work/$1.out" "$work/$1.err" "$work/$1.rec" "$work/$1.audit" | head -n 30 >&2; }
# expect NAME CALLS [GREP-IN-RECORD] [GREP-IN-AUDIT]: what reached the driver, and the guard's word.
expect() {
	local name=$1 n=$2 rec=${3-} audit=${4-} ok=1
	[ "$(calls "$name")" = "$n" ] || ok=0
	if [ -n "$rec" ] && ! grep -q -- "$rec" "$work/$name.rec"; then ok=0; fi
	if [ -n "$audit" ] && ! grep -q -- "$audit" "$work/$name.audit"; then ok=0; fi
	if [ "$ok" = 1 ]; then
		pass "$name: $n call(s) reached the driver${rec:+ ($rec)}${audit:+; audit: $audit}"
	else
		fail "$name: expected $n call(s)${rec:+ with $rec}${audit:+ and audit $audit}, the simulator saw $(calls "$name")"
		show "$name"
	fi
}

CFG_CLEAR=0x04030000 # a writing DCMD: the read-only policy refuses it
for c in 64 32; do
	say "--- $c-bit client, $c-bit library"
	# Without the guard, the simulator receives MegaCli's flags as they are: the baseline the
	# guarded runs differ from (and the proof that the simulator runs in the chroot).
	run "stp-none-$c" "$c" none stp-probe 4
	expect "stp-none-$c" 1 '"flags_name":"[^"]*IEEE'
	# enforce: the addressing flags are cleared before the call reaches the driver ...
	run "stp-enforce-$c" "$c" enforce stp-probe 4
	expect "stp-enforce-$c" 1 '"flags_name":"DIR_READ"' '"rule":"frame.addressing-flags"'
	# ... an out-of-frame sgl_off never reaches it ...
	run "sgl-enforce-$c" "$c" enforce sgl-off 0x40000
	expect "sgl-enforce-$c" 0 '' '"rule":"sgl.bounds"'
	[ "$(cat "$work/sgl-enforce-$c.rc")" != 0 ] || fail "sgl-enforce-$c: the refused call returned 0"
	# ... and a writing DCMD passes in enforce ...
	run "clear-enforce-$c" "$c" enforce dcmd "$CFG_CLEAR" none 0
	expect "clear-enforce-$c" 1 "\"opcode\":\"$CFG_CLEAR\""
	# readonly: the same DCMD is refused with EPERM, a read passes.
	run "clear-readonly-$c" "$c" readonly dcmd "$CFG_CLEAR" none 0
	expect "clear-readonly-$c" 0 '' '"rule":"readonly.dcmd"'
	grep -q 'ret=-1 errno=1 (EPERM)' "$work/clear-readonly-$c.out" ||
		fail "clear-readonly-$c: the client did not get EPERM: $(head -n 1 "$work/clear-readonly-$c.out")"
	run "info-readonly-$c" "$c" readonly ctrl-info
	expect "info-readonly-$c" 1 '"opcode":"0x01010000"'
	[ "$(cat "$work/info-readonly-$c.rc")" = 0 ] || fail "info-readonly-$c: exit $(cat "$work/info-readonly-$c.rc")"
	# The supervisor (the portable mfiguard-run on this kernel) guards the same client from
	# outside it: the same packets reach the driver, the same ones do not.
	run "stp-sup-$c" "$c" sup-enforce stp-probe 4
	expect "stp-sup-$c" 1 '"flags_name":"DIR_READ"' '"guard":"supervisor"'
	run "sgl-sup-$c" "$c" sup-enforce sgl-off 0x40000
	expect "sgl-sup-$c" 0 '' '"rule":"sgl.bounds"'
	run "clear-sup-readonly-$c" "$c" sup-readonly dcmd "$CFG_CLEAR" none 0
	expect "clear-sup-readonly-$c" 0 '' '"rule":"readonly.dcmd"'
	grep -q 'ret=-1 errno=1 (EPERM)' "$work/clear-sup-readonly-$c.out" ||
		fail "clear-sup-readonly-$c: the client did not get EPERM: $(head -n 1 "$work/clear-sup-readonly-$c.out")"
done

# ---- the control: a library built on this host is what the old userland cannot load ------------
# (only when the tree has one and it needs more than the chroot's glibc: then the chroot shows
# the failure the portable build exists for, and these checks could have failed).
host_lib=$target/release/libmfiguard.so
if [ -f "$host_lib" ] && ! sh packaging/check-glibc-floor.sh --floor "${GLIBC#glibc }" "$host_lib" >/dev/null 2>&1; then
	cp "$host_lib" "$root/opt/t/64/libmfiguard-host.so"
	rm -f "$root/tmp/rec.jsonl"
	in_root MFIGUARD_DEVICE=/dev/null MFIGUARD_CONFIG=/dev/null MFISIM_RECORD=/tmp/rec.jsonl \
		LD_PRELOAD="/opt/t/64/libmfiguard-host.so /opt/t/64/liblegacy_sim.so" \
		/opt/t/64/mfi_client --device /dev/null stp-probe 4 >"$work/control.out" 2>"$work/control.err" || true
	# ld.so stops the tool ("version `GLIBC_2.34' not found (required by ...)", exit 127) or,
	# in other cases, skips the library ("cannot be preloaded"): either way no guarded call.
	if grep -q "GLIBC_[0-9.]*' not found (required by /opt/t/64/libmfiguard-host.so)\|libmfiguard-host.so.*cannot be preloaded" \
		"$work/control.err" && ! grep -qs '"flags_name":"DIR_READ"' "$root/tmp/rec.jsonl"; then
		pass "control: the library built on this host is refused by $SUITE's loader: $(grep -m1 -o "version \`GLIBC_[0-9.]*' not found\|cannot be preloaded" "$work/control.err")"
	else
		fail "control: $host_lib was expected to fail to load in the chroot"
		sed 's/^/    /' "$work/control.err" >&2
	fi
fi

# ---- purge: the logs' directory goes with the package (Debian policy for logs on purge) ---------
say "dpkg --purge mfiguard-i386 mfiguard"
echo '{"a log line":1}' >"$root/var/log/mfiguard/audit.jsonl"
if in_root dpkg --purge mfiguard-i386 mfiguard >"$work/purge.out" 2>&1; then
	if [ ! -e "$root/var/log/mfiguard" ]; then
		pass "purge removed /var/log/mfiguard and the records in it"
	else
		fail "purge left /var/log/mfiguard"
	fi
	left=$(ls -d "$root"/usr/lib/mfiguard "$root"/usr/bin/mfiguard-run "$root"/etc/mfiguard.conf 2>/dev/null || true)
	if [ -z "$left" ]; then pass "purge removed the package's files"; else fail "purge left files: $left"; fi
else
	cat "$work/purge.out" >&2
	fail "dpkg --purge failed"
fi

if [ "$failures" -gt 0 ]; then
	echo "test-old-host: $failures check(s) failed" >&2
	exit 1
fi
say "$RELEASE ($GLIBC): every check passed"
