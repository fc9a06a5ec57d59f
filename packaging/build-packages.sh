#!/bin/sh
# packaging/build-packages.sh: build the portable programs (glibc 2.17 floor), the .debs and the
# RPMs, check what is in them, and optionally install the .debs and exercise the installed
# files. CI calls it.
#
#   packaging/build-packages.sh [--no-build] [--deb-only] [--install] [--remove]
#
#   (default)    build with cargo zigbuild for x86_64 and i686 against glibc 2.17: libmfiguard.so,
#                the programs in PROGRAMS64 / PROGRAMS32 below, and the example client and the
#                simulator (for packaging/test-old-host.sh); then the packages:
#                  target/debian/mfiguard_V-1_amd64.deb       (cargo deb: [package.metadata.deb])
#                  target/debian/mfiguard-i386_V-1_amd64.deb  (the 32-bit library and probe;
#                                                              dpkg-deb, packaging/debian/mfiguard-i386/)
#                  target/rpm/x86_64/mfiguard-V-1.x86_64.rpm, mfiguard-i686-V-1.x86_64.rpm
#                                                             (rpmbuild, packaging/rpm/mfiguard.spec)
#                list them, check the expected paths and ELF classes, lintian the .debs, and
#                check that no ELF file in any package needs more than GLIBC_2.17
#                (packaging/check-glibc-floor.sh)
#   --no-build   reuse what target/portable/x86_64-unknown-linux-gnu/release and
#                target/portable/i686-unknown-linux-gnu/release hold
#   --deb-only   no RPM (rpmbuild not needed)
#   --install    (root, dpkg) dpkg -i both .debs, then from the installed paths: --version, the
#                man page, `mfiguard-run --check` (must prove interception with both libraries),
#                a 32-bit program through the wrapper, and the wrapper's end-to-end tests
#                against /usr/bin/mfiguard-run and /usr/lib/mfiguard. The packages stay
#                installed (for the demo).
#   --remove     with --install: dpkg --purge both at the end
#
# The portable build has its own target directory, target/portable (CARGO_TARGET_DIR for
# cargo zigbuild and cargo deb only): the tests and the kernel lane build for i686 with the
# host's gcc into target/i686-unknown-linux-gnu, which would overwrite the 2.17 build (and
# each would relink the other's on every run).
#
# What it needs, installed when missing (as root, through apt-get, pip, rustup, cargo):
#   the Rust targets x86_64- and i686-unknown-linux-gnu (rustup target add)
#   gcc-multilib (apt, with --install: the wrapper's tests link an i686 client with gcc; the
#     portable build does not need it, zig brings its own C library stubs)
#   cargo-zigbuild and ziglang (zig is the linker that targets glibc 2.17): the ones on PATH,
#     else pip-installed into a venv, $MFIGUARD_ZIG_VENV (default
#     ${XDG_CACHE_HOME:-$HOME/.cache}/mfiguard/zig-venv; needs python3-venv), kept for later
#     runs, as is zig's own cache (~/.cache/zig)
#   cargo-deb (cargo install --locked, pinned below)
#   dpkg-dev, binutils, lintian (apt), and rpm (apt: rpmbuild) and cpio unless --deb-only
set -eu
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_ZIGBUILD_VERSION=0.24.1
ZIGLANG_VERSION=0.17.1
# The oldest glibc the shipped files may need: RHEL 7's. zig links against a glibc of exactly
# this version (cargo zigbuild --target TRIPLE.2.17), for both targets.
GLIBC_FLOOR=2.17
TARGET64=x86_64-unknown-linux-gnu
TARGET32=i686-unknown-linux-gnu
ZIG_VENV=${MFIGUARD_ZIG_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mfiguard/zig-venv}

# The programs the packages ship besides libmfiguard.so, as CARGO_PACKAGE:BINARY, each built
# by cargo zigbuild for its target into target/portable/TRIPLE/release/BINARY. The 64-bit ones
# go to the mfiguard package (their asset lines in [package.metadata.deb] name
# target/release/BINARY, which cargo deb --target maps to that directory),
# the 32-bit ones to mfiguard-i386 (/usr/lib/mfiguard/i386/).
PROGRAMS64="mfiguard:mfiguard-probe mfiguard-cli:mfiguard-run mfiguard-cli:mfiguard-hostd"
PROGRAMS32="mfiguard:mfiguard-probe"

build=1 install=0 remove=0 rpm=1
for arg in "$@"; do
	case $arg in
	--no-build) build=0 ;;
	--deb-only) rpm=0 ;;
	--install) install=1 ;;
	--remove) remove=1 ;;
	*)
		echo "usage: $0 [--no-build] [--deb-only] [--install] [--remove]" >&2
		exit 2
		;;
	esac
done

step() { printf '\n--- %s\n' "$*"; }
fail() {
	echo "build-packages: $*" >&2
	exit 1
}

# apt_install PACKAGE: as root, through apt-get (updating its lists once if needed).
apt_install() {
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		fail "missing: apt-get install $1 (as root)"
	fi
	step "apt-get install $1"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; } ||
		fail "apt-get install $1 failed"
}
# need_apt COMMAND PACKAGE: install PACKAGE when COMMAND is missing.
need_apt() { command -v "$1" >/dev/null 2>&1 || apt_install "$2"; }
# need_deb PACKAGE: install PACKAGE when dpkg does not have it.
need_deb() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || apt_install "$1"
}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || fail "no version in Cargo.toml"
# The Debian changelog's top entry is this version; its revision is the packages' too.
deb_version=$(sed -n '1s/^mfiguard (\([^)]*\)).*/\1/p' packaging/debian/changelog)
case $deb_version in
"$version"-*) ;;
*) fail "packaging/debian/changelog starts with version '$deb_version', Cargo.toml says $version" ;;
esac
maintainer=$(sed -n 's/^maintainer = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$maintainer" ] || fail "no maintainer in [package.metadata.deb]"
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || target=target
portable=$target/portable
out64=$portable/$TARGET64/release
out32=$portable/$TARGET32/release

need_apt readelf binutils
need_apt dpkg-shlibdeps dpkg-dev

if [ "$build" = 1 ]; then
	installed_targets=$(rustup target list --installed 2>/dev/null || true)
	for t in "$TARGET64" "$TARGET32"; do
		printf '%s\n' "$installed_targets" | grep -qx "$t" || rustup target add "$t"
	done
	# cargo-zigbuild and zig: the ones on PATH, else a venv cached outside the repository.
	# (cargo-zigbuild runs zig from PATH, or as `python3 -m ziglang`.)
	if ! cargo-zigbuild --version >/dev/null 2>&1 ||
		{ ! command -v zig >/dev/null && ! python3 -m ziglang version >/dev/null 2>&1; }; then
		if [ ! -x "$ZIG_VENV/bin/cargo-zigbuild" ] || ! "$ZIG_VENV/bin/python3" -m ziglang version >/dev/null 2>&1; then
			step "pip install cargo-zigbuild==$CARGO_ZIGBUILD_VERSION ziglang==$ZIGLANG_VERSION (venv $ZIG_VENV)"
			rm -rf "$ZIG_VENV"
			python3 -m venv "$ZIG_VENV" || fail "python3 -m venv failed (apt-get install python3-venv)"
			"$ZIG_VENV/bin/python3" -m pip install -q "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" \
				"ziglang==$ZIGLANG_VERSION" || fail "pip install cargo-zigbuild ziglang failed"
		fi
		PATH=$ZIG_VENV/bin:$PATH
		export PATH
		cargo-zigbuild --version >/dev/null 2>&1 || fail "cargo-zigbuild does not run from $ZIG_VENV"
	fi
	for t in "$TARGET64" "$TARGET32"; do
		if [ "$t" = "$TARGET64" ]; then programs=$PROGRAMS64; else programs=$PROGRAMS32; fi
		step "cargo zigbuild --release --target $t.$GLIBC_FLOOR: libmfiguard.so, $programs, the test client and simulator"
		CARGO_TARGET_DIR=$portable cargo zigbuild --release --target "$t.$GLIBC_FLOOR" -p mfiguard-preload --lib
		for p in $programs; do
			CARGO_TARGET_DIR=$portable cargo zigbuild --release --target "$t.$GLIBC_FLOOR" -p "${p%%:*}" --bin "${p#*:}"
		done
		CARGO_TARGET_DIR=$portable cargo zigbuild --release --target "$t.$GLIBC_FLOOR" \
			-p mfiguard --example mfi_client --example legacy_sim
	done
fi

# elf_class FILE: 32 or 64 (byte 5 of the ELF header), or nothing.
elf_class() {
	case $(od -An -tu1 -j4 -N1 "$1" 2>/dev/null | tr -d ' ') in
	1) echo 32 ;;
	2) echo 64 ;;
	esac
}
files64="libmfiguard.so"
for p in $PROGRAMS64; do files64="$files64 ${p#*:}"; done
files32="libmfiguard.so"
for p in $PROGRAMS32; do files32="$files32 ${p#*:}"; done
for f in $files64; do
	[ -f "$out64/$f" ] || fail "$out64/$f is missing: run $0 without --no-build"
	[ "$(elf_class "$out64/$f")" = 64 ] || fail "$out64/$f is not a 64-bit ELF file"
done
for f in $files32; do
	[ -f "$out32/$f" ] || fail "$out32/$f is missing: run $0 without --no-build"
	[ "$(elf_class "$out32/$f")" = 32 ] || fail "$out32/$f is not a 32-bit ELF file"
done
step "the built files' glibc floor"
# shellcheck disable=SC2086 # word lists
(cd "$out64" && sh "$OLDPWD/packaging/check-glibc-floor.sh" --floor "$GLIBC_FLOOR" $files64) ||
	fail "a 64-bit file needs more than GLIBC_$GLIBC_FLOOR"
# shellcheck disable=SC2086
(cd "$out32" && sh "$OLDPWD/packaging/check-glibc-floor.sh" --floor "$GLIBC_FLOOR" $files32) ||
	fail "a 32-bit file needs more than GLIBC_$GLIBC_FLOOR"

# ---- mfiguard (cargo deb) --------------------------------------------------------------------
if ! cargo deb --version >/dev/null 2>&1; then
	step "cargo install cargo-deb $CARGO_DEB_VERSION"
	cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
mkdir -p "$target/debian"
rm -f "$target"/debian/mfiguard_*.deb "$target"/debian/mfiguard-dbgsym_*.ddeb "$target"/debian/mfiguard-i386_*.deb
step "cargo deb --target $TARGET64"
# --target and CARGO_TARGET_DIR: the assets' target/release/ is
# target/portable/x86_64-unknown-linux-gnu/release/ (the portable build); the architecture amd64.
CARGO_TARGET_DIR=$portable cargo deb -p mfiguard --no-build --target "$TARGET64" --dbgsym --output "$target/debian/"
deb=$(ls "$target"/debian/mfiguard_"$deb_version"_amd64.deb)

# ---- mfiguard-i386 (dpkg-deb): the 32-bit library and probe, their own package --------------
# Built here, not as a cargo-deb variant: an amd64 package of i386 files whose dependencies
# (libc6-i386) dpkg-shlibdeps cannot compute, without the main package's
# maintainer scripts (its postrm purges the logs).
step "dpkg-deb: mfiguard-i386"
stage=$target/debian/mfiguard-i386.stage
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/lib/mfiguard/i386" "$stage/usr/share/doc/mfiguard-i386"
for f in $files32; do
	mode=755
	case $f in *.so) mode=644 ;; esac
	# As dh_strip does: no debug sections, no .comment/.note, no symbols a loader does not need.
	strip --remove-section=.comment --remove-section=.note --strip-unneeded \
		-o "$stage/usr/lib/mfiguard/i386/$f" "$out32/$f"
	chmod "$mode" "$stage/usr/lib/mfiguard/i386/$f"
done
doc=$stage/usr/share/doc/mfiguard-i386
gzip -9n <packaging/debian/changelog >"$doc/changelog.Debian.gz"
{
	printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n'
	printf 'Upstream-Name: mfiguard\n\n'
	printf 'Files: *\nCopyright: 2026 mfiguard developers\nLicense: MIT or Apache-2.0\n\n'
	printf 'License: MIT\n'
	sed 's/^$/./; s/^/ /' LICENSE-MIT
	printf '\nLicense: Apache-2.0\n'
	printf ' On Debian systems, the full text of the Apache License, Version 2.0\n'
	printf ' is in /usr/share/common-licenses/Apache-2.0.\n'
} >"$doc/copyright"
chmod 644 "$doc"/*
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$deb_version/g" -e "s/@MAINTAINER@/$maintainer/" \
	-e "s/@INSTALLED_SIZE@/$installed_size/" packaging/debian/mfiguard-i386/control.in >"$stage/DEBIAN/control"
(cd "$stage" && find usr -type f | sort | xargs md5sum >DEBIAN/md5sums)
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
find "$stage" -type d -exec chmod 755 {} +
deb32=$target/debian/mfiguard-i386_${deb_version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb32" >/dev/null
rm -rf "$stage"

# ---- checks of the .debs ---------------------------------------------------------------------
# Paths the main packages must hold (the 32-bit ones are in mfiguard-i386 / mfiguard-i686).
expected='/usr/bin/mfiguard-run
/usr/sbin/mfiguard-hostd
/usr/share/man/man8/mfiguard-hostd.8
/usr/lib/systemd/system/mfiguard-hostd.service
/usr/lib/mfiguard/libmfiguard.so
/usr/lib/mfiguard/mfiguard-probe
/usr/share/man/man1/mfiguard-run.1
/usr/share/man/man5/mfiguard.conf.5
/usr/share/man/man8/libmfiguard.8
/usr/share/doc/mfiguard/README.md
/usr/share/doc/mfiguard/doc/rules.md
/usr/share/doc/mfiguard/doc/monitoring.md
/usr/share/mfiguard/audit-record.schema.json
/usr/lib/systemd/system/mfiguard-collect.service
/usr/lib/systemd/system/mfiguard-collect.timer
/usr/libexec/mfiguard/find-raid-tool
/usr/libexec/mfiguard/mfiguard-snapshot
/etc/mfiguard.conf
/etc/logrotate.d/mfiguard
/usr/share/bash-completion/completions/mfiguard-run
/usr/share/doc/mfiguard/examples/cron.d/mfiguard-megacli
/usr/share/doc/mfiguard/examples/systemd/mfiguard-megacli.service
/usr/share/doc/mfiguard/examples/systemd/mfiguard-megacli.timer
/usr/share/doc/mfiguard/examples/nagios/check_mfiguard
/usr/share/doc/mfiguard/examples/prometheus/mfiguard-textfile
/usr/share/doc/mfiguard/examples/prometheus/mfiguard-alerts.yml
/usr/share/doc/mfiguard/examples/ansible/roles/mfiguard/tasks/main.yml
/usr/share/doc/mfiguard/examples/sudoers.d/mfiguard'
expected32='/usr/lib/mfiguard/i386/libmfiguard.so
/usr/lib/mfiguard/i386/mfiguard-probe'

check_listing() {
	# $1: package file, $2: its file list (one absolute path per line), $3: the expected paths;
	# a man page may be gzipped (cargo-deb does it).
	printf '%s\n' "$3" | while IFS= read -r p; do
		printf '%s\n' "$2" | sed 's/\.gz$//' | grep -qx "$p" || fail "$1 lacks $p"
	done
}
deb_paths() { dpkg-deb --contents "$1" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||'; }

for d in "$deb" "$deb32"; do
	step "contents of $d"
	dpkg-deb --info "$d"
	dpkg-deb --contents "$d"
done
check_listing "$deb" "$(deb_paths "$deb")" "$expected"
check_listing "$deb32" "$(deb_paths "$deb32")" "$expected32"
for p in /usr/share/doc/mfiguard/LICENSE-MIT /usr/share/doc/mfiguard/LICENSE-APACHE; do
	deb_paths "$deb" | grep -qx "$p" || fail "$deb lacks $p"
done
if deb_paths "$deb" | grep -q '/i386/'; then fail "$deb holds 32-bit files: they belong to mfiguard-i386"; fi
depends=$(dpkg-deb --field "$deb" Depends)
echo "mfiguard Depends: $depends"
case $depends in *i386* | *lib32*) fail "$deb depends on the 32-bit runtime ($depends)" ;; esac
dpkg-deb --field "$deb32" Depends | grep -q 'libc6-i386' || fail "$deb32 does not depend on libc6-i386"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
printf 'conffiles:\n%s\n' "$conffiles"
printf '%s\n' "$conffiles" | grep -qx /etc/mfiguard.conf || fail "/etc/mfiguard.conf is not a conffile"
dpkg-deb --info "$deb" postrm >/dev/null 2>&1 || fail "$deb has no postrm (the logs on purge)"
dpkg-deb --contents "$deb" | grep -q 'rwxr-xr-x .* \./usr/bin/mfiguard-run$' || fail "mfiguard-run is not executable in the .deb"
need_apt lintian lintian
for d in "$deb" "$deb32"; do
	step "lintian $d"
	# initial-upload-closes-no-bugs is about uploads to the Debian archive, not a site package.
	lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "$d" ||
		fail "lintian found errors or warnings in $d"
done

# ---- the RPMs (rpmbuild, from the .debs' files) ----------------------------------------------
rpms=
if [ "$rpm" = 1 ]; then
	need_apt rpmbuild rpm
	need_apt cpio cpio # check-glibc-floor.sh unpacks the RPMs
	step "rpmbuild packaging/rpm/mfiguard.spec"
	top=$target/rpm
	rm -rf "$top"
	mkdir -p "$top/SOURCES/mfiguard" "$top/SOURCES/mfiguard-i386" "$top/BUILD" "$top/RPMS"
	dpkg-deb -x "$deb" "$top/SOURCES/mfiguard"
	dpkg-deb -x "$deb32" "$top/SOURCES/mfiguard-i386"
	cp -p LICENSE-MIT LICENSE-APACHE "$top/SOURCES/"
	# RPM's version has no '-': the Debian revision is its Release (1).
	rpmbuild -bb --quiet --target x86_64 --define "_topdir $(cd "$top" && pwd)" \
		--define "mfiguard_version $version" --define "_rpmdir $(cd "$top" && pwd)" \
		packaging/rpm/mfiguard.spec >"$top/rpmbuild.log" 2>&1 || {
		cat "$top/rpmbuild.log" >&2
		fail "rpmbuild failed"
	}
	rpm_file=$(ls "$top"/x86_64/mfiguard-"$version"-1.x86_64.rpm)
	rpm32_file=$(ls "$top"/x86_64/mfiguard-i686-"$version"-1.x86_64.rpm)
	rpms="$rpm_file $rpm32_file"
	for r in $rpms; do
		step "contents of $r"
		rpm -qip "$r"
		rpm -qlvp "$r"
		printf 'requires:\n%s\n' "$(rpm -qpR "$r" | sed 's/^/  /')"
	done
	check_listing "$rpm_file" "$(rpm -qlp "$rpm_file")" "$expected"
	check_listing "$rpm32_file" "$(rpm -qlp "$rpm32_file")" "$expected32"
	rpm -qcp "$rpm_file" | grep -qx /etc/mfiguard.conf || fail "/etc/mfiguard.conf is not %config in the rpm"
	rpm -qlp "$rpm_file" | grep -qx /var/log/mfiguard || fail "the rpm does not own /var/log/mfiguard"
	rpm -qLp "$rpm_file" 2>/dev/null | grep -q LICENSE-APACHE || rpm -qdp "$rpm_file" | grep -q LICENSE-APACHE ||
		fail "the rpm does not ship LICENSE-APACHE"
	if rpm -qlp "$rpm_file" | grep -q '/i386/'; then fail "$rpm_file holds 32-bit files"; fi
	# What EL7's rpm 4.11 cannot read: a zstd payload, rich dependencies.
	[ "$(rpm -qp --qf '%{PAYLOADCOMPRESSOR}' "$rpm_file")" = gzip ] || fail "$rpm_file's payload is not gzip (EL7)"
	# shellcheck disable=SC2086 # a list
	if rpm -qpR $rpms | grep -q 'PayloadIsZstd\|RichDependencies\|^('; then fail "an rpm needs rpm >= 4.13 features (EL7 has 4.11)"; fi
	rpm -qpR "$rpm32_file" | grep -q '^libc.so.6(GLIBC_' || fail "$rpm32_file does not require the 32-bit glibc"
	if rpm -qpR "$rpm_file" | grep -q '^libc.so.6(GLIBC_[0-9.]*)$'; then fail "$rpm_file requires the 32-bit glibc"; fi
	step "rpmlint (packaging/rpm/rpmlint.toml: EL's conventions, and the decisions)"
	need_apt rpmlint rpmlint
	# shellcheck disable=SC2086 # a list
	rpmlint -c packaging/rpm/rpmlint.toml $rpms >"$top/rpmlint.log" 2>&1 || true
	cat "$top/rpmlint.log"
	grep -q ' 0 errors, 0 warnings' "$top/rpmlint.log" || fail "rpmlint found errors or warnings"
	step "rpm: the units' scriptlets, EL's plugin directory"
	scripts=$(rpm -qp --scripts "$rpm_file")
	for want in 'systemctl --no-reload preset mfiguard-hostd.service' 'systemctl --no-reload disable --now mfiguard-hostd.service' \
		'systemctl daemon-reload' 'rm -rf /var/lib/mfiguard'; do
		printf '%s\n' "$scripts" | grep -q -- "$want" || fail "the rpm's scriptlets lack '$want'"
	done
	rpm -qlp "$rpm_file" | grep -qx /usr/lib64/nagios/plugins/check_mfiguard || fail "the rpm's plugin is not in /usr/lib64/nagios/plugins"
	step "rpm: install into an empty root, erase: the logs stay"
	# rpm --root with --nodeps and --noscripts (this is not an EL system: no glibc package to
	# satisfy, no /bin/sh in the root for the scriptlets): the payload unpacks with the modes
	# it declares, and erasing keeps the records.
	rroot=$(mktemp -d "${TMPDIR:-/tmp}/mfiguard-rpmroot.XXXXXX")
	rpm --root "$rroot" --initdb
	# shellcheck disable=SC2086 # a list
	rpm --root "$rroot" -i --nodeps --noscripts $rpms 2>&1 | grep -v 'should not be used directly\|know what you are doing' || true
	[ "$(stat -c '%a %U' "$rroot/var/log/mfiguard" 2>/dev/null)" = "750 root" ] ||
		fail "the rpm's /var/log/mfiguard is not 0750 root"
	for f in /usr/lib/mfiguard/i386/libmfiguard.so /usr/share/licenses/mfiguard/LICENSE-MIT; do
		[ -f "$rroot$f" ] || fail "the rpms did not install $f"
	done
	echo '{"a record":1}' >"$rroot/var/log/mfiguard/audit.jsonl"
	rpm --root "$rroot" -e --nodeps --noscripts mfiguard-i686 mfiguard 2>&1 | grep -v 'should not be used directly\|know what you are doing' || true
	[ -f "$rroot/var/log/mfiguard/audit.jsonl" ] || fail "rpm -e deleted the logs"
	[ ! -e "$rroot/usr/lib/mfiguard/libmfiguard.so" ] || fail "rpm -e left the library"
	rm -rf "$rroot"
	echo "installed, erased: /var/log/mfiguard/audit.jsonl kept"
fi

step "every ELF file in the packages: at most GLIBC_$GLIBC_FLOOR"
# shellcheck disable=SC2086 # a list
sh packaging/check-glibc-floor.sh --floor "$GLIBC_FLOOR" "$deb" "$deb32" $rpms ||
	fail "a packaged file needs more than GLIBC_$GLIBC_FLOOR"

if [ "$install" = 1 ]; then
	[ "$(id -u)" = 0 ] || fail "--install needs root"
	# The wrapper's tests below link an i686 client with the host's gcc.
	need_deb gcc-multilib
	step "dpkg -i $deb $deb32"
	dpkg -i "$deb" "$deb32"
	dpkg -s mfiguard | sed -n '1,12p'
	step "installed: mfiguard-run --version, man page, conffile"
	[ "$(/usr/bin/mfiguard-run --version)" = "mfiguard-run $version" ] || fail "installed --version"
	man -w mfiguard-run
	[ -f /etc/mfiguard.conf ] || fail "/etc/mfiguard.conf missing"
	[ -d /var/log/mfiguard ] || fail "/var/log/mfiguard missing (postinst)"
	for f in /usr/lib/mfiguard/libmfiguard.so:64 /usr/lib/mfiguard/mfiguard-probe:64 \
		/usr/lib/mfiguard/i386/libmfiguard.so:32 /usr/lib/mfiguard/i386/mfiguard-probe:32; do
		[ "$(elf_class "${f%:*}")" = "${f##*:}" ] || fail "installed ${f%:*} is not ${f##*:}-bit"
	done
	step "installed: mfiguard-run --check (both libraries)"
	# Run from / with a scrubbed environment: nothing from the build tree may help.
	check_out=$(
		unset MFIGUARD_LIB_DIR MFIGUARD_LIB32_DIR LD_PRELOAD
		cd / && /usr/bin/mfiguard-run --check
	) || {
		printf '%s\n' "$check_out"
		fail "the installed guard does not prove interception"
	}
	printf '%s\n' "$check_out"
	for c in 64 32; do
		printf '%s\n' "$check_out" | grep -A1 "^library ($c-bit): /usr/lib/mfiguard/" |
			grep -q 'intercepted: yes' || fail "--check did not prove the $c-bit library"
	done
	step "installed: a 32-bit program through mfiguard-run gets i386/libmfiguard.so"
	(
		unset MFIGUARD_LIB_DIR MFIGUARD_LIB32_DIR LD_PRELOAD
		cd / && /usr/bin/mfiguard-run --check /usr/lib/mfiguard/i386/mfiguard-probe
	) | grep -A1 '^library (32-bit): /usr/lib/mfiguard/i386/libmfiguard.so$' |
		grep -q 'intercepted: yes' || fail "--check TOOL32 does not use the 32-bit library"
	out32=$(
		unset MFIGUARD_LIB_DIR MFIGUARD_LIB32_DIR LD_PRELOAD
		cd / && MFIGUARD_DEVICE=/dev/null /usr/bin/mfiguard-run --via preload --log none -- \
			/usr/lib/mfiguard/i386/mfiguard-probe 2>&1
	) || true
	printf '%s\n' "$out32"
	[ "$out32" = "intercepted: yes (EINVAL from mfiguard)" ] ||
		fail "a 32-bit program is not guarded through the installed wrapper"
	step "installed: the wrapper's end-to-end tests against the installed files"
	# With the installed 64-bit guard; the test with both libraries runs an i686 client
	# through the installed /usr/lib/mfiguard/i386/libmfiguard.so.
	MFIGUARD_TEST_WRAPPER=/usr/bin/mfiguard-run MFIGUARD_TEST_LIB=/usr/lib/mfiguard/libmfiguard.so \
		cargo test --release -p mfiguard --test wrapper
	if [ "$remove" = 1 ]; then
		step "dpkg --purge mfiguard-i386 mfiguard"
		dpkg --purge mfiguard-i386 mfiguard
		[ ! -e /usr/bin/mfiguard-run ] || fail "purge left /usr/bin/mfiguard-run"
		[ ! -e /var/log/mfiguard ] || fail "purge left /var/log/mfiguard"
	fi
fi

step "packages"
# shellcheck disable=SC2086
ls -l "$deb" "$deb32" $rpms
