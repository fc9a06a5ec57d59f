#!/usr/bin/env bash
# examples/integrations/ansible/test-role.sh: the mfiguard role against this machine (as root,
# connection local), with the built .deb: a first run changes things, a second changes
# nothing, the preview switched on by one variable shows in the facts, a typo in the policy
# fails the play and leaves the installed policy as it was; the facts come from
# `mfiguard-run --check --json`, the per-account entries from the policy's sections. Then it removes what the role wrote besides
# the package (the sudoers file, the fact script, its drop-in) and the timer links (the
# package's purge must remove those: packaging/test-purge.sh checks).
#
#   examples/integrations/ansible/test-role.sh DEB [DEB32]
#
# ansible-core from PyPI in a venv cached at $MFIGUARD_ANSIBLE_VENV
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/mfiguard/ansible-venv). Root only: it installs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ANSIBLE_CORE_VERSION=2.17.14
deb=${1:?usage: test-role.sh DEB [DEB32]}
deb32=${2:-}
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
[ -z "$deb32" ] || deb32=$(cd "$(dirname "$deb32")" && pwd)/$(basename "$deb32")
[ "$(id -u)" = 0 ] || { echo "test-role: needs root" >&2; exit 2; }
venv=${MFIGUARD_ANSIBLE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mfiguard/ansible-venv}
have=$("$venv/bin/ansible-playbook" --version 2>/dev/null || true)
case $have in
*"core $ANSIBLE_CORE_VERSION]"*) ;;
*)
	rm -rf "$venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q "ansible-core==$ANSIBLE_CORE_VERSION"
	;;
esac
work=$(mktemp -d "${TMPDIR:-/tmp}/mfiguard-ansible.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/play.yml" <<PLAY
- hosts: localhost
  gather_facts: true
  roles:
    - role: mfiguard
      vars:
        mfiguard_package_file: "$deb"
        mfiguard_package_32bit_file: "$deb32"
        mfiguard_mode: "{{ mode | default('readonly') }}"
        mfiguard_preview: "{{ preview | default(false) }}"
        mfiguard_log: /var/log/mfiguard/audit.jsonl
        mfiguard_sudoers:
          - user: nagios
            tool: /usr/sbin/megacli
            args: ["-LDInfo", "-Lall", "-aALL", "-NoLog"]
  post_tasks:
    - name: facts from --check --json
      ansible.builtin.assert:
        that:
          - ansible_local.mfiguard.check_version == 1
          - ansible_local.mfiguard.policy.preview == (preview | default(false) | bool)
          - ansible_local.mfiguard.policy.mode.value == ('audit' if (preview | default(false) | bool) else (mode | default('readonly')))
          - ansible_local.mfiguard.policy.sections | selectattr('section', 'equalto', 'user nagios') | map(attribute='mode') | first == 'readonly'
          - ansible_local.mfiguard.policy.invalid | length == 0
          - ansible_local.mfiguard.libraries['64'].intercepted
PLAY
export ANSIBLE_ROLES_PATH=$here/roles ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
	ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
play() { timeout 600 "$venv/bin/ansible-playbook" -i localhost, -c local "$work/play.yml" "$@"; }
recap() { sed -n 's/^localhost *: *//p' "$1"; }
fail() {
	echo "test-role: FAIL: $*" >&2
	exit 1
}

echo "--- first run: installs and configures"
play >"$work/1.out" 2>&1 || { cat "$work/1.out"; fail "the first run failed"; }
recap "$work/1.out"
recap "$work/1.out" | grep -q 'changed=[1-9]' || { cat "$work/1.out"; fail "the first run changed nothing"; }
grep -qx 'mode = readonly' /etc/mfiguard.conf || fail "/etc/mfiguard.conf does not say mode = readonly"
[ "$(stat -c %a /etc/sudoers.d/mfiguard)" = 440 ] || fail "/etc/sudoers.d/mfiguard is not 0440"
grep -q '^nagios ALL=(root) NOPASSWD: /usr/bin/mfiguard-run -- /usr/sbin/megacli -LDInfo' /etc/sudoers.d/mfiguard ||
	fail "the sudoers rule (no mode pinned: the policy gives it)"
sed -n '/^\[user nagios\]$/,/^$/p' /etc/mfiguard.conf | grep -qx 'mode = readonly' ||
	fail "/etc/mfiguard.conf has no [user nagios] section in readonly"
! grep -q '^preview' /etc/mfiguard.conf || fail "/etc/mfiguard.conf previews without being asked to"
[ -L /etc/systemd/system/timers.target.wants/mfiguard-collect.timer ] || fail "the collector's timer is not enabled"

echo "--- second run: changes nothing"
play >"$work/2.out" 2>&1 || { cat "$work/2.out"; fail "the second run failed"; }
recap "$work/2.out"
recap "$work/2.out" | grep -q 'changed=0 ' || { cat "$work/2.out"; fail "the second run changed something"; }

echo "--- the roll-out is one variable: the preview on, then off again"
play -e preview=true >"$work/p.out" 2>&1 || { cat "$work/p.out"; fail "the run with the preview failed"; }
grep -qx 'preview = yes' /etc/mfiguard.conf || fail "mfiguard_preview: true wrote no preview line"
play >"$work/p2.out" 2>&1 || { cat "$work/p2.out"; fail "the run without the preview failed"; }
! grep -q '^preview' /etc/mfiguard.conf || fail "mfiguard_preview: false left the preview line"
recap "$work/p2.out"

echo "--- a typo in the policy fails the play; the installed policy stays"
before=$(cat /etc/mfiguard.conf)
if play -e mode=readonyl >"$work/3.out" 2>&1; then
	cat "$work/3.out"
	fail "a policy with mode = readonyl was installed"
fi
grep -q 'failed to validate' "$work/3.out" || { cat "$work/3.out"; fail "the failure is not the validation's"; }
[ "$(cat /etc/mfiguard.conf)" = "$before" ] || fail "/etc/mfiguard.conf changed"
recap "$work/3.out"

echo "--- what the role wrote besides the package goes"
rm -f /etc/sudoers.d/mfiguard /etc/ansible/facts.d/mfiguard.fact /var/tmp/"$(basename "$deb")"
[ -z "$deb32" ] || rm -f /var/tmp/"$(basename "$deb32")"
rmdir /etc/ansible/facts.d /etc/ansible 2>/dev/null || true
echo "test-role: every check passed"
