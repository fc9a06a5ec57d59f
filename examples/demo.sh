#!/usr/bin/env bash
# The mfiguard demo: the MegaCli 8.01.06 STP bug, without and with the guard, on any Linux
# machine (no controller needed: a simulator of the pre-3.3 megaraid_sas driver and its firmware
# stands in for the kernel). Run from anywhere in the source tree:
#
#   examples/demo.sh               the guard from this build tree (target/release/libmfiguard.so)
#   examples/demo.sh --installed   the installed package: the guarded runs go through
#                                  mfiguard-run (from PATH) and /usr/lib/mfiguard/libmfiguard.so
set -euo pipefail
cd "$(dirname "$0")/.."
installed=0
case "${1:-}" in
  --installed) installed=1 ;;
  "") ;;
  *) echo "usage: examples/demo.sh [--installed]" >&2; exit 2 ;;
esac

bold=$'\e[1m'; dim=$'\e[2m'; red=$'\e[31m'; green=$'\e[32m'; off=$'\e[0m'
if [ ! -t 1 ] || [ -n "${NO_COLOR:-}" ]; then bold='' dim='' red='' green='' off=''; fi
say() { printf '%s\n' "$*"; }
para() { printf '%s\n' "$*" | fold -s -w "${COLUMNS:-100}"; echo; }
hr() { printf '%s\n' "${dim}--------------------------------------------------------------------------------${off}"; }

command -v cargo >/dev/null || { echo "demo: cargo is needed to build the guard (https://rustup.rs)" >&2; exit 1; }

# shown WORD...: prints the command as a shell would read it (each word quoted only when it
# needs it), so that a reader can paste and replay it from the top of the source tree.
quote() {
  case $1 in
    *[!A-Za-z0-9_./=:,@%+-]*)
      if [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then printf "%s='%s'" "${1%%=*}" "${1#*=}"
      else printf "'%s'" "$1"; fi ;;
    *) printf '%s' "$1" ;;
  esac
}
shown() { local w line='$'; for w; do line+=" $(quote "$w")"; done; say "$line"; }
# run VAR=VALUE... CMD ARG...: runs exactly what `shown` printed, with nothing else inherited
# from the demo's own environment that the guard or the simulator reads.
run() { env "$@"; }

build=(cargo build --release -p mfiguard-preload -p mfiguard --lib --examples)
say "${bold}Building the guard, the simulator and the example client${off} ${dim}(about a minute the first time)${off}"
shown "${build[@]}"
"${build[@]}"
echo
target=${CARGO_TARGET_DIR:-target}/release
guard=$target/libmfiguard.so
sim=$target/examples/liblegacy_sim.so
client=$target/examples/mfi_client
# The loader only warns about a missing preload and runs the program unguarded: check first.
for f in "$sim" "$client" "$guard"; do
  [ "$f" = "$guard" ] && [ "$installed" = 1 ] && continue
  [ -e "$f" ] || { echo "demo: $f was not built" >&2; exit 1; }
done
if [ "$installed" = 1 ]; then
  command -v mfiguard-run >/dev/null ||
    { echo "demo: --installed needs the package: mfiguard-run is not in PATH" >&2; exit 1; }
  mfiguard-run --check >/dev/null 2>&1 ||
    { echo "demo: mfiguard-run --check fails: run it to see why" >&2; exit 1; }
fi
# What the demo writes stays after it, so that the commands it shows can be replayed:
# target/demo/ holds the audit log (the guard wants an absolute path) and the simulator's
# records of what reached the "driver".
case ${CARGO_TARGET_DIR:-target} in
  /*) work=$CARGO_TARGET_DIR/demo ;;
  *) work=$PWD/${CARGO_TARGET_DIR:-target}/demo ;;
esac
rm -rf "$work"
mkdir -p "$work"
log=$work/audit.jsonl

# The simulator answers MegaRAID ioctls on /dev/null descriptors (the client opens /dev/null
# with --device), and MFIGUARD_DEVICE=/dev/null tells the guard to treat /dev/null as the
# management node. MFIGUARD_CONFIG=/dev/null keeps a site's /etc/mfiguard.conf out of the demo.
# Every command below names these; nothing else from the caller's environment reaches them.
unset LD_PRELOAD MFIGUARD_MODE MFIGUARD_LOG MFIGUARD_ALLOW MFIGUARD_AUDIT MFIGUARD_DEVICE \
  MFIGUARD_CONFIG MFIGUARD_LOG_SYNC MFIGUARD_LOG_REQUIRED MFIGUARD_DEBUG \
  MFISIM_VERBOSE MFISIM_RECORD MFISIM_DEVICE MFISIM_CRASH MFISIM_DELAY_US
node=(MFIGUARD_DEVICE=/dev/null MFIGUARD_CONFIG=/dev/null)
# guarded SIM_ENV... -- CMD...: the words of CMD run with the guard in front of the simulator,
# as a user would run it (the build tree's library by LD_PRELOAD, or the installed wrapper with
# --via preload: the simulator is preloaded into the tool, so the library must be in front of it
# there; under the supervisor the simulator would answer the tool's calls before any system call).
guarded() {
  local simenv=()
  while [ "$1" != -- ]; do simenv+=("$1"); shift; done; shift
  if [ "$installed" = 1 ]; then
    words=("${simenv[@]}" "${node[@]}" "LD_PRELOAD=$sim" mfiguard-run --via preload --log "$log" -- "$@")
  else
    words=("${simenv[@]}" "${node[@]}" "MFIGUARD_LOG=$log" "LD_PRELOAD=$guard $sim" "$@")
  fi
}

echo
say "${bold}One hour, one crash: MegaCli 8.01.06 and the STP frame${off}"
echo
para "A monitoring cron job runs MegaCli every hour. Behind the RAID controller sits a SATA SSD, so MegaCli sends it an STP (SATA tunnelling) frame with ATA IDENTIFY DEVICE. MegaCli 8.01.06 sets MFI_FRAME_IEEE in that frame's flags. The driver of the day (before Linux 3.3) never looked at the flags: it wrote 32-bit scatter/gather entries, {u32 addr, u32 len}. The firmware believed the flag and read 16-byte \"skinny\" entries, {u64 addr, u32 len, u32 flag}. The first entry is the 20-byte response FIS, so the length 20 became the high half of the address."
para "Here is that frame going through a simulated pre-3.3 driver and its firmware:"
hr
words=(MFISIM_VERBOSE=2 "MFISIM_RECORD=$work/without.jsonl" "LD_PRELOAD=$sim" "$client" --device /dev/null stp-probe 4)
shown "${words[@]}"
run "${words[@]}" >"$work/without.out" 2>"$work/without.err" || true
sed -n '2,$p' "$work/without.err" | sed 's/^  //'
hr
echo
para "The firmware just DMA'd 20 bytes into physical address 0x1491dfc000, a page the driver never gave it. On a real host that is kernel memory corruption, once per monitoring run."
para "Now the same command with the guard in front, as a cron job would run it (LD_PRELOAD=libmfiguard.so, or the mfiguard-run wrapper):"
hr
guarded MFISIM_VERBOSE=2 "MFISIM_RECORD=$work/with.jsonl" -- "$client" --device /dev/null stp-probe 4
shown "${words[@]}"
run "${words[@]}" >"$work/with.out" 2>"$work/with.err" || true
sed -n '2,$p' "$work/with.err" | sed 's/^  //'
hr
echo

field() { # field FILE KEY: the first value of a JSON string/number field, without a JSON parser
  sed -n "s/.*\"$2\":\\(\"[^\"]*\"\\|[0-9-]*\\).*/\\1/p" "$1" | head -n 1 | tr -d '"'
}
first_addr() { sed -n 's/.*"firmware_addrs":\["\([^"]*\)".*/\1/p' "$1" | head -n 1; }
without_addr=$(first_addr "$work/without.jsonl")
with_addr=$(first_addr "$work/with.jsonl")
without_flags=$(field "$work/without.jsonl" flags_name)
with_flags=$(field "$work/with.jsonl" flags_name)
say "${bold}Side by side${off}"
printf '  %-32s %-26s %s\n' "" "without the guard" "with the guard"
printf '  %-32s %-26s %s\n' "flags that reached the driver" "$without_flags" "$with_flags"
printf '  %-32s %s%-26s%s %s%s%s\n' "first address the firmware used" "$red" "$without_addr" "$off" "$green" "$with_addr" "$off"
printf '  %-32s %-26s %s\n' "what MegaCli printed" "$(head -n 1 "$work/without.out" | cut -d' ' -f2-3)" "$(head -n 1 "$work/with.out" | cut -d' ' -f2-3)"
echo
para "The guard decoded the megasas_iocpacket, found rule frame.addressing-flags, and cleared IEEE|SGL64 in a private copy of the packet; the kernel got that copy, never the caller's. It wrote its decision to the audit log before the call reached the driver (so a host that dies inside the driver still leaves evidence) and the outcome after:"
hr
if command -v python3 >/dev/null; then
  python3 -c '
import json, sys
keys = {"decision": ("record", "seq", "exe", "cmd", "target_id", "flags", "flags_sent", "sgl_off",
                     "sge_count", "verdict", "enforced", "findings"),
        "outcome": ("record", "seq", "ret", "errno", "cmd_status", "cmd_status_name", "latency_us")}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("seq") == 1:
        shown = keys.get(r.get("record"), ())
        print("  " + ", ".join(f"{k}={json.dumps(r[k])}" for k in shown if r.get(k) is not None))
' "$log" | fold -s -w "${COLUMNS:-100}"
else
  grep '"seq":1,' "$log"
fi
hr
echo
para "Some holes are still open in today's kernels. Linux 6.1 never checks sgl_off, the offset at which the driver writes its scatter/gather list into a 256-byte frame. A packet with sgl_off = 0x40000 makes the driver write 256 KiB past its frame, and the ioctl returns 0. The guard refuses it before the kernel sees it:"
hr
guarded "MFISIM_RECORD=$work/sgl.jsonl" -- "$client" --device /dev/null sgl-off 0x40000
shown "${words[@]}"
run "${words[@]}" 2>/dev/null | head -n 1 || true
tail -n 1 "$log" | grep -o '"rule":"sgl.bounds","action":"reject","downgraded":false,"detail":"[^"]*"' \
  | sed 's/"rule":"\([^"]*\)","action":"\([^"]*\)".*"detail":"\([^"]*\)"/  audit: \1 (\2): \3/'
reached=0
[ -f "$work/sgl.jsonl" ] && reached=$(wc -l <"$work/sgl.jsonl")
say "  calls that reached the (simulated) driver: ${reached// /}"
hr
echo
para "The commands above replay as shown from the top of the source tree; the audit log and the simulator's records are in $work/. Next: README.md (install, read-only mode for monitoring, --check), doc/rules.md (every rule), mfiguard-run --help."
