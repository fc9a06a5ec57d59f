#!/bin/sh
# packaging/test-purge.sh: "install, use, purge leaves nothing behind", on this machine.
#
#   packaging/test-purge.sh --before FILE     list the files now (before dpkg -i)
#   packaging/test-purge.sh --use             what a site does with the installed package that
#                                             leaves files: the timers enabled, the collector
#                                             run (its state, its status, mfiguard.prom), a
#                                             per-job .prom, a log
#   packaging/test-purge.sh --after FILE      (after dpkg --purge) the files now must be those
#                                             listed before: prints what differs, exit 1
#
# The listing covers /etc, /usr, /opt, /srv, /var/lib and /var/log, less what dpkg and apt keep
# for themselves (their databases, logs and caches) and man-db's cache.
set -eu
list() {
	find /etc /usr /opt /srv /var/lib /var/log -xdev \
		\( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/log/apt -o -path /var/cache \
		-o -path /var/lib/man-db -o -path /var/lib/ucf -o -path /var/log/journal \) -prune -o -print 2>/dev/null |
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
	if ! diff -u "$2" "$2.after" >"$2.diff"; then
		echo "test-purge: FAIL: install, use and purge changed these paths:" >&2
		grep '^[-+]/' "$2.diff" >&2
		exit 1
	fi
	echo "test-purge: purge left nothing behind ($(wc -l <"$2") paths compared)"
	;;
*)
	echo "usage: $0 --before FILE | --use | --after FILE" >&2
	exit 2
	;;
esac
