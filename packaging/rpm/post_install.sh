# %post for mfiguard: the directory for the guard's JSON audit logs, rotated by
# /etc/logrotate.d/mfiguard.
if [ ! -d /var/log/mfiguard ]; then
	install -d -m 0750 /var/log/mfiguard
fi
