#!/bin/sh
# packaging/check-glibc-floor.sh: fail when a shipped ELF file needs a glibc newer than the floor.
#
#   packaging/check-glibc-floor.sh [--floor 2.17] PATH...
#
# PATH is an ELF file, a directory (every ELF file under it), or a package: a .deb (unpacked
# with dpkg-deb -x) or an .rpm (unpacked with rpm2cpio | cpio). Files that are not ELF are
# skipped; a PATH holding no ELF file at all is an error (a wrong path must not pass).
# For each ELF file the highest GLIBC_x.y version among its dynamic symbols' version
# references (readelf --dyn-syms -W: "memcpy@GLIBC_2.14 (3)", undefined, i.e. needed) is
# printed; an ELF file above the floor fails the run.
#
# The floor is 2.17 (RHEL 7, the oldest host the guard is for), or MFIGUARD_GLIBC_FLOOR.
# Exit status: 0 every file is at or below the floor, 1 one is above it, 2 usage or a missing tool.
set -eu

floor=${MFIGUARD_GLIBC_FLOOR:-2.17}
case ${1-} in
--floor)
	floor=${2:?--floor needs a version}
	shift 2
	;;
-h | --help)
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac
[ $# -gt 0 ] || {
	echo "usage: $0 [--floor 2.17] PATH..." >&2
	exit 2
}
command -v readelf >/dev/null || {
	echo "check-glibc-floor: readelf not found (apt-get install binutils)" >&2
	exit 2
}

work=$(mktemp -d "${TMPDIR:-/tmp}/glibc-floor.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# is_elf FILE: the first four bytes are \177ELF.
is_elf() { [ "$(od -An -c -N4 "$1" 2>/dev/null | tr -d ' ')" = '177ELF' ]; }

# newest FILE: the highest GLIBC_ version FILE needs, or nothing. Version references of needed
# (undefined, UND) symbols only: a library's own definitions carry no GLIBC_ version.
newest() {
	readelf --dyn-syms -W "$1" 2>/dev/null |
		awk '$7 == "UND" { print $8 }' |
		sed -n 's/.*@GLIBC_\([0-9][0-9.]*\).*/\1/p' |
		sort -u -t. -k1,1n -k2,2n -k3,3n | tail -n 1
}

# above VERSION: VERSION is higher than the floor.
above() {
	[ "$1" != "$floor" ] &&
		[ "$(printf '%s\n%s\n' "$1" "$floor" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)" = "$1" ]
}

bad=0
n=0
for path in "$@"; do
	case $path in
	*.deb)
		[ -f "$path" ] || { echo "check-glibc-floor: $path: no such file" >&2; exit 2; }
		dir=$work/$n
		mkdir -p "$dir"
		dpkg-deb -x "$path" "$dir"
		;;
	*.rpm)
		[ -f "$path" ] || { echo "check-glibc-floor: $path: no such file" >&2; exit 2; }
		dir=$work/$n
		mkdir -p "$dir"
		if ! command -v rpm2cpio >/dev/null || ! command -v cpio >/dev/null; then
			echo "check-glibc-floor: rpm2cpio and cpio are needed for $path (apt-get install rpm cpio)" >&2
			exit 2
		fi
		case $path in /*) abs=$path ;; *) abs=$PWD/$path ;; esac
		(cd "$dir" && rpm2cpio "$abs" | cpio -idm --quiet) ||
			{ echo "check-glibc-floor: cannot unpack $path" >&2; exit 2; }
		;;
	*)
		[ -e "$path" ] || { echo "check-glibc-floor: $path: no such file" >&2; exit 2; }
		dir=$path
		;;
	esac
	n=$((n + 1))
	found=0
	# find, not a glob: a directory tree; -type f skips the links cargo leaves.
	for f in $(find "$dir" -type f | sort); do
		is_elf "$f" || continue
		found=1
		v=$(newest "$f")
		shown=$f
		[ "$dir" = "$path" ] || shown="$path:${f#"$dir"}"
		if [ -z "$v" ]; then
			printf 'ok     %-8s %s\n' "-" "$shown"
		elif above "$v"; then
			printf 'ABOVE  %-8s %s (needs GLIBC_%s)\n' "$v" "$shown" "$v"
			readelf --dyn-syms -W "$f" | awk '$7 == "UND" { print $8 }' |
				grep "@GLIBC_$v\\b" | sed 's/^/         needs /' | head -n 5
			bad=1
		else
			printf 'ok     %-8s %s\n' "$v" "$shown"
		fi
	done
	[ "$found" = 1 ] || { echo "check-glibc-floor: $path holds no ELF file" >&2; exit 2; }
done
if [ "$bad" = 1 ]; then
	echo "check-glibc-floor: FAILED: a file needs a glibc newer than $floor (the oldest supported host cannot load it)" >&2
	exit 1
fi
echo "check-glibc-floor: every ELF file needs at most GLIBC_$floor"
