#!/bin/sh
# packaging/build-packages.sh: build the .deb and the .rpm, check what is in them, and
# optionally install the .deb and exercise the installed files. CI calls it.
#
#   packaging/build-packages.sh [--no-build] [--install] [--remove]
#
#   (default)    cargo build --release --workspace; cargo deb --no-build; cargo generate-rpm;
#                list both packages and check the expected paths are in them
#   --no-build   reuse target/release (it must hold libmfiguard.so and mfiguard-probe)
#   --install    (root, dpkg) dpkg -i the .deb, then from the installed paths: --version,
#                the man page, `mfiguard-run --check` (must prove interception), and the
#                wrapper's end-to-end tests against /usr/bin/mfiguard-run and
#                /usr/lib/mfiguard/libmfiguard.so. The package stays installed (for the demo).
#   --remove     with --install: dpkg --purge it at the end
#
# cargo-deb and cargo-generate-rpm are installed with `cargo install --locked` when missing
# (pinned to the versions this was tested with). Outputs: target/debian/*.deb,
# target/generate-rpm/*.rpm.
set -eu
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

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
	step "cargo build --release --workspace"
	cargo build --release --workspace
fi
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target" ] || target=target
for f in "$target/release/libmfiguard.so" "$target/release/mfiguard-probe"; do
	[ -f "$f" ] || fail "$f is missing: build with cargo build --release --workspace"
done

need_cargo_tool deb cargo-deb "$CARGO_DEB_VERSION"
need_cargo_tool generate-rpm cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"

step "cargo deb"
rm -f "$target"/debian/mfiguard_*.deb
cargo deb -p mfiguard --no-build
deb=$(ls "$target"/debian/mfiguard_"$version"-*.deb)
step "cargo generate-rpm"
rm -f "$target"/generate-rpm/mfiguard-*.rpm
cargo generate-rpm -p . --target-dir "$target"
rpm_file=$(ls "$target"/generate-rpm/mfiguard-"$version"-*.rpm)

# Paths both packages must hold.
expected='/usr/bin/mfiguard-run
/usr/lib/mfiguard/libmfiguard.so
/usr/lib/mfiguard/mfiguard-probe
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
	step "installed: mfiguard-run --check"
	# Run from / with a scrubbed environment: nothing from the build tree may help.
	(
		unset MFIGUARD_LIB_DIR MFIGUARD_LIB32_DIR LD_PRELOAD
		cd / && /usr/bin/mfiguard-run --check
	) || fail "the installed guard does not prove interception"
	step "installed: the wrapper's end-to-end tests against the installed files"
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
