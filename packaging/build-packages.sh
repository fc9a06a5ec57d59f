#!/bin/sh
# packaging/build-packages.sh: build the .deb and the .rpm, check what is in them, and
# optionally install the .deb and exercise the installed files. CI calls it.
#
#   packaging/build-packages.sh [--no-build] [--install] [--remove]
#
#   (default)    cargo build --release --workspace, and the guard and probe for i686 (32-bit
#                tools: rustup target i686-unknown-linux-gnu, gcc-multilib); cargo deb
#                --no-build; cargo generate-rpm; list both packages and check the expected
#                paths are in them, each library and probe of the right ELF class
#   --no-build   reuse target/release and target/i686-unknown-linux-gnu/release (they must
#                hold libmfiguard.so and mfiguard-probe; the latter's are copied to
#                target/release/i386/)
#   --install    (root, dpkg) dpkg -i the .deb, then from the installed paths: --version,
#                the man page, `mfiguard-run --check` (must prove interception), the same for
#                the 32-bit probe (through i386/libmfiguard.so), and the wrapper's end-to-end
#                tests against /usr/bin/mfiguard-run and /usr/lib/mfiguard (both classes).
#                The package stays installed (for the demo).
#   --remove     with --install: dpkg --purge it at the end
#
# cargo-deb and cargo-generate-rpm are installed with `cargo install --locked` when missing
# (pinned to the versions this was tested with). Outputs: target/debian/*.deb,
# target/generate-rpm/*.rpm.
set -eu
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
# The 32-bit guard, for 32-bit tools (MegaCli): /usr/lib/mfiguard/i386/.
TARGET32=i686-unknown-linux-gnu

build=1 install=0 remove=0
for arg in "$@"; do
	case $arg in
	--no-build) build=0 ;;
	--install) install=1 ;;
	--remove) remove=1 ;;
	*)
		echo "usage: $0 [--no-build] [--install] [--remove]" >&2
		exit 2
		;;
	esac
done

step() { printf '\n--- %s\n' "$*"; }
fail() {
	echo "build-packages: $*" >&2
	exit 1
}

need_cargo_tool() {
	# $1: subcommand (deb), $2: crate, $3: version
	if ! cargo "$1" --version >/dev/null 2>&1; then
		step "cargo install $2 $3"
		cargo install --locked "$2" --version "$3"
	fi
}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || fail "no version in Cargo.toml"

if [ "$build" = 1 ]; then
	step "cargo build --release --workspace (the guard, its probe, mfiguard-run)"
	cargo build --release --workspace
	step "cargo build --release --target $TARGET32 (the 32-bit guard and probe)"
	cargo build --release -p mfiguard-preload --target "$TARGET32"
	cargo build --release -p mfiguard --bin mfiguard-probe --target "$TARGET32"
fi
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || target=target
# cargo-deb takes built files only under target/release/ (it maps that prefix to the real target
# directory): the i686 files are copied to target/release/i386/ (the layout mfiguard-run
# expects). Copies, not symbolic links: rpm's dependency generator skips links, and the 32-bit
# library's needs (32-bit libc, libgcc_s) must reach both packages' dependencies.
[ -f "$target/$TARGET32/release/libmfiguard.so" ] || fail "$target/$TARGET32/release/libmfiguard.so is missing: run $0 without --no-build"
mkdir -p "$target/release/i386"
for f in libmfiguard.so mfiguard-probe; do
	rm -f "$target/release/i386/$f"
	cp -p "$target/$TARGET32/release/$f" "$target/release/i386/$f"
done

# elf_class FILE: 32 or 64 (byte 5 of the ELF header), or nothing.
elf_class() {
	case $(od -An -tu1 -j4 -N1 "$1" 2>/dev/null | tr -d ' ') in
	1) echo 32 ;;
	2) echo 64 ;;
	esac
}
for f in release/libmfiguard.so:64 release/mfiguard-probe:64 \
	release/i386/libmfiguard.so:32 release/i386/mfiguard-probe:32; do
	path=$target/${f%:*}
	[ -f "$path" ] || fail "$path is missing: run $0 without --no-build"
	[ "$(elf_class "$path")" = "${f##*:}" ] || fail "$path is not a ${f##*:}-bit ELF file"
done
# The RPM's copies, without debug sections (cargo-generate-rpm does not strip; cargo-deb does,
# and puts the symbols in a -dbgsym .ddeb). Host binutils handle the i386 files too.
mkdir -p "$target/release/rpm/i386"
for f in libmfiguard.so mfiguard-probe mfiguard-run i386/libmfiguard.so i386/mfiguard-probe; do
	strip --strip-debug -o "$target/release/rpm/$f" "$target/release/$f"
done

# The Debian changelog's top entry is this version.
changelog_version=$(sed -n '1s/^mfiguard (\([^)]*\)).*/\1/p' packaging/debian/changelog)
case $changelog_version in
"$version"-*) ;;
*) fail "packaging/debian/changelog starts with version '$changelog_version', Cargo.toml says $version" ;;
esac

need_cargo_tool deb cargo-deb "$CARGO_DEB_VERSION"
need_cargo_tool generate-rpm cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"

step "cargo deb"
rm -f "$target"/debian/mfiguard_*.deb "$target"/debian/mfiguard-dbgsym_*.ddeb
cargo deb -p mfiguard --no-build --dbgsym
deb=$(ls "$target"/debian/mfiguard_"$version"-*.deb)
step "cargo generate-rpm"
rm -f "$target"/generate-rpm/mfiguard-*.rpm
cargo generate-rpm -p . --target-dir "$target"
rpm_file=$(ls "$target"/generate-rpm/mfiguard-"$version"-*.rpm)

# Paths both packages must hold.
expected='/usr/bin/mfiguard-run
/usr/lib/mfiguard/libmfiguard.so
/usr/lib/mfiguard/mfiguard-probe
/usr/lib/mfiguard/i386/libmfiguard.so
/usr/lib/mfiguard/i386/mfiguard-probe
/usr/share/man/man1/mfiguard-run.1
/usr/share/doc/mfiguard/README.md
/etc/mfiguard.conf
/etc/logrotate.d/mfiguard
/usr/share/bash-completion/completions/mfiguard-run
/usr/share/doc/mfiguard/examples/cron.d/mfiguard-megacli
/usr/share/doc/mfiguard/examples/systemd/mfiguard-megacli.service
/usr/share/doc/mfiguard/examples/systemd/mfiguard-megacli.timer
/usr/share/doc/mfiguard/examples/nagios/check_mfiguard
/usr/share/doc/mfiguard/examples/prometheus/mfiguard-textfile
/usr/share/doc/mfiguard/examples/sudoers.d/mfiguard'

check_listing() {
	# $1: package file, $2: its file list (one absolute path per line); a man page may be
	# gzipped (cargo-deb does it).
	printf '%s\n' "$expected" | while IFS= read -r p; do
		printf '%s\n' "$2" | sed 's/\.gz$//' | grep -qx "$p" || fail "$1 lacks $p"
	done
}

step "contents of $deb"
dpkg-deb --info "$deb"
listing=$(dpkg-deb --contents "$deb")
printf '%s\n' "$listing"
check_listing "$deb" "$(printf '%s\n' "$listing" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||')"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
printf 'conffiles:\n%s\n' "$conffiles"
printf '%s\n' "$conffiles" | grep -qx /etc/mfiguard.conf || fail "/etc/mfiguard.conf is not a conffile"
printf '%s\n' "$listing" | grep -q 'rwxr-xr-x .* \./usr/bin/mfiguard-run$' || fail "mfiguard-run is not executable in the .deb"
if command -v lintian >/dev/null 2>&1; then
	step "lintian $deb"
	# initial-upload-closes-no-bugs is about uploads to the Debian archive, not a site package.
	lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs "$deb" ||
		fail "lintian found errors in $deb"
else
	echo "(lintian not installed: the .deb was not linted)"
fi

step "contents of $rpm_file"
if command -v rpm >/dev/null 2>&1; then
	rpm -qip "$rpm_file" 2>/dev/null
	rpm_listing=$(rpm -qlp "$rpm_file" 2>/dev/null)
	printf '%s\n' "$rpm_listing"
	check_listing "$rpm_file" "$rpm_listing"
	rpm -qcp "$rpm_file" 2>/dev/null | grep -qx /etc/mfiguard.conf || fail "/etc/mfiguard.conf is not %config in the rpm"
else
	echo "(rpm not installed: contents not listed)"
	[ -s "$rpm_file" ] || fail "$rpm_file is empty"
fi

if [ "$install" = 1 ]; then
	[ "$(id -u)" = 0 ] || fail "--install needs root"
	step "dpkg -i $deb"
	dpkg -i "$deb"
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
		cd / && MFIGUARD_DEVICE=/dev/null /usr/bin/mfiguard-run --log none -- \
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
		step "dpkg --purge mfiguard"
		dpkg --purge mfiguard
		[ ! -e /usr/bin/mfiguard-run ] || fail "purge left /usr/bin/mfiguard-run"
	fi
fi

step "packages"
ls -l "$deb" "$rpm_file"
