#!/bin/sh
# packaging/test-purge.sh: "install, use, purge leaves nothing behind", on this machine.
#
#   packaging/test-purge.sh --before FILE     list the files now (before dpkg -i)
#   packaging/test-purge.sh --use             what a site does with the installed package that
#                                             leaves files: the timers enabled, the collector
#                                             run (its state, its status, mfiguard.prom), a
#                                             per-job .prom, a log
#   packaging/test-purge.sh --after FILE      (after dpkg --purge) the files now must be those
#                                             listed before: a path naming mfiguard that
#                                             differs, or a dangling unit link, fails (exit
#                                             1); other differences (CI's own installs and
#                                             tests) are listed
#
# The listing covers /etc, /usr, /opt, /srv, /var/lib and /var/log, less what dpkg and apt keep
# for themselves (their databases, logs and caches), man-db's cache and libuuid's clock.
set -eu
list() {
	find /etc /usr /opt /srv /var/lib /var/log -xdev \
		\( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/log/apt -o -path /var/cache \
		-o -path /var/lib/man-db -o -path /var/lib/ucf -o -path /var/lib/libuuid -o -path /var/log/journal \) -prune -o -print 2>/dev/null |
		grep -v '^/var/log/dpkg.log\|^/var/log/alternatives.log\|^/var/lib/systemd/timers\|^/var/lib/systemd/catalog\|^/var/lib/systemd/deb-systemd-user-helper' |
		LC_ALL=C sort
}
case ${1-} in
--before)
	mkdir -p /var/lib/prometheus/node-exporter
	list >"$2"
	echo "test-purge: $(wc -l <"$2") paths before"
	;;
--use)
	# A fresh install enables nothing.
	if find /etc/systemd/system -name 'mfiguard*' 2>/dev/null | grep -q .; then
		echo "test-purge: FAIL: the package enabled a unit:" >&2
		find /etc/systemd/system -name 'mfiguard*' >&2
		exit 1
	fi
	SYSTEMD_OFFLINE=1 systemctl enable mfiguard-collect.timer mfiguard-megacli.timer mfiguard-hostd.service
	/usr/bin/mfiguard-run --collect --log /var/log/mfiguard/audit.jsonl >/dev/null 2>&1 || true
	[ -f /var/lib/mfiguard/status.json ] || { echo "test-purge: the collector wrote no status" >&2; exit 1; }
	[ -f /var/lib/prometheus/node-exporter/mfiguard.prom ] || { echo "test-purge: the collector wrote no metrics" >&2; exit 1; }
	echo 'mfiguard_job_guard_ok{job_name="x",tool="x"} 1' >/var/lib/prometheus/node-exporter/mfiguard_x.prom
	echo '{"record":"outcome"}' >>/var/log/mfiguard/audit.jsonl
	echo "test-purge: timers and hostd enabled, collector state, metrics and a log written"
	;;
--after)
	list >"$2.after"
	diff "$2" "$2.after" | sed -n 's/^[<>] //p' >"$2.diff" || true
	# Ours: a path that names the package, or a link the package's units left dangling.
	ours=$(grep -i 'mfiguard' "$2.diff" || true)
	dangling=$(find /etc/systemd -xtype l 2>/dev/null | grep -i 'mfiguard' || true)
	others=$(grep -iv 'mfiguard' "$2.diff" || true)
	if [ -n "$others" ]; then
		echo "test-purge: changed meanwhile, not by this package (other installs, the tests):"
		printf '%s\n' "$others" | head -n 20 | sed 's/^/    /'
	fi
	if [ -n "$ours$dangling" ]; then
		echo "test-purge: FAIL: install, use and purge left or removed these paths:" >&2
		printf '%s\n' "$ours" "$dangling" | sed '/^$/d; s/^/    /' >&2
		exit 1
	fi
	echo "test-purge: purge left nothing behind ($(wc -l <"$2") paths compared)"
	;;
*)
	echo "usage: $0 --before FILE | --use | --after FILE" >&2
	exit 2
	;;
esac
