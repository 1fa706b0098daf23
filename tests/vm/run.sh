#!/usr/bin/env bash
# Runs one command inside the takt test VM: Debian's PREEMPT_RT kernel under qemu (TCG),
# the host's root shared read-only over 9p, `vcan0` up, TAKT_IN_VM=1 in the environment.
#
# Usage: tests/vm/run.sh [--timeout SECS] [--cwd DIR] [--env NAME=VALUE]... -- CMD [ARGS...]
#
#   --timeout SECS    wall-clock limit for boot plus command (default 300)
#   --cwd DIR         directory to run CMD in (default: the current directory; the host's
#                     paths are the guest's paths)
#   --env NAME=VALUE  extra environment for CMD (repeatable)
#
# TAKT_VM_KEEP=1 keeps the work directory (job script, full console log, qemu's stderr)
# and prints where it is.
#
# CMD's stdout and stderr (merged: they share one virtio-serial port) are forwarded to
# this script's stdout as they arrive; the harness' own messages go to stderr, prefixed
# "takt-vm:". Exit status: CMD's own status, or
#   124  the timeout expired,
#   125  the VM could not be prepared or booted, or ended without reporting a status.
# To tell CMD's 124/125 from the harness', look for the stderr line
# "takt-vm: command exited with status N", printed only when CMD really finished.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

say() {
    printf 'takt-vm: %s\n' "$*" >&2
}

usage() {
    sed -n '5,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 125
}

timeout_s=300
cwd=$PWD
extra_env=()
while (($# > 0)); do
    case $1 in
    --timeout)
        (($# >= 2)) || usage
        timeout_s=$2
        shift 2
        ;;
    --cwd)
        (($# >= 2)) || usage
        cwd=$2
        shift 2
        ;;
    --env)
        (($# >= 2)) || usage
        [[ $2 == [A-Za-z_]*=* ]] || usage
        extra_env+=("$2")
        shift 2
        ;;
    --)
        shift
        break
        ;;
    *) usage ;;
    esac
done
(($# > 0)) || usage
if ! [[ $timeout_s =~ ^[0-9]+$ ]] || ((timeout_s == 0)); then
    usage
fi
if ! resolved=$(cd -- "$cwd" 2>/dev/null && pwd -P); then
    say "error: no such directory: $cwd"
    exit 125
fi
cwd=$resolved

if ! "$here/prepare.sh" --quiet; then
    say "error: the VM could not be prepared (see above)"
    exit 125
fi
# shellcheck source=/dev/null
source "${TAKT_VM_CACHE:-$here/cache}/prepared.env"

work=$(mktemp -d "${TMPDIR:-/tmp}/takt-vm.XXXXXXXX") || {
    say "error: cannot create a work directory"
    exit 125
}
qpid=
# shellcheck disable=SC2317 # invoked through the EXIT trap
cleanup() {
    if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
        kill "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
    fi
    if [[ -n ${TAKT_VM_KEEP:-} ]]; then
        say "work directory kept: $work"
    else
        rm -rf -- "$work"
    fi
}
trap cleanup EXIT
trap 'exit 125' INT TERM HUP

# The job directory is the guest's second 9p share (tag taktjob, mounted at
# /run/takt-job). The command travels as a bash script with every word quoted by
# printf %q, so any argument survives unchanged.
job=$work/job
mkdir -- "$job"
token=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$token" >"$job/token"
printf '%s\n' "$cwd" >"$job/cwd"
{
    printf '#!/bin/bash\n'
    printf 'export TAKT_IN_VM=1\n'
    printf 'export PATH=%q\n' "$PATH"
    printf 'export HOME=%q\n' "${HOME:-/root}"
    printf 'export LANG=%q\n' "${LANG:-C.UTF-8}"
    printf 'export TERM=dumb\n'
    for kv in ${extra_env[@]+"${extra_env[@]}"}; do
        printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
    # bash's own cd error names the directory; 125 marks it as the harness' failure.
    printf 'cd -- %q || exit 125\n' "$cwd"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} >"$job/job.sh"

# qemu's -virtfs option list uses commas as separators; a literal comma is doubled.
share() {
    printf 'local,path=%s,mount_tag=%s,security_model=none,readonly=on,multidevs=remap' "${1//,/,,}" "$2"
}

fifo=$work/output
mkfifo -- "$fifo"
start=$(date +%s.%N)
# `timeout` owns the wall-clock limit, so qemu ends even if this script is killed.
# The serial console (kernel messages, init's diagnostics) goes to a log; CMD's output
# arrives on the virtio-serial port "takt.out" (see init.sh for why not the UART).
# -nodefaults drops the NIC and VGA nobody needs; panic=-1 with -no-reboot turns a guest
# panic into a qemu exit instead of a hang. multidevs=remap keeps inode numbers from
# different host file systems (/, /proc, /sys, ...) from colliding in the guest.
timeout --kill-after=5 "$timeout_s" \
    qemu-system-x86_64 \
    -accel tcg -cpu max -smp 2 -m 1024 \
    -nodefaults -no-user-config -display none -monitor none -no-reboot \
    -chardev "file,id=console,path=${work//,/,,}/console.log" -serial chardev:console \
    -device virtio-serial-pci,id=vser0 \
    -chardev "file,id=taktout,path=${fifo//,/,,}" \
    -device virtserialport,bus=vser0.0,chardev=taktout,name=takt.out \
    -kernel "$TAKT_VM_BOOT_KERNEL" -initrd "$TAKT_VM_INITRD" \
    -append "console=ttyS0 quiet panic=-1 random.trust_cpu=on" \
    -virtfs "$(share / hostroot)" \
    -virtfs "$(share "$job" taktjob)" \
    </dev/null >"$work/qemu.stdout" 2>"$work/qemu.stderr" &
qpid=$!

# Forward what lies between the BEGIN and EXIT markers. awk stops at the EXIT marker, so
# the output is complete by then: the guest wrote the marker after everything CMD printed.
# mawk (Debian's default awk) fills whole input blocks before it acts unless told it is
# interactive, which would hold back a long-running command's output until the end.
awk=(awk)
if awk -W version 2>&1 | grep -qi mawk; then
    awk=(awk -W interactive)
fi
# shellcheck disable=SC2016 # the program is awk's, not the shell's
"${awk[@]}" -v begin="TAKT-VM-BEGIN $token" -v endm="TAKT-VM-EXIT $token " \
    -v statusfile="$work/status" -v bootfile="$work/boot" '
    !started {
        if (index($0, begin) == 1) {
            started = 1
            print substr($0, length(begin) + 2) > bootfile
            close(bootfile)
        }
        next
    }
    {
        i = index($0, endm)
        if (i > 0) {
            # CMD output without a final newline shares its last line with the marker.
            if (i > 1) printf "%s", substr($0, 1, i - 1)
            fflush()
            print substr($0, i + length(endm)) > statusfile
            close(statusfile)
            exit
        }
        print
        fflush()
    }
' <"$fifo" || true

if [[ -s $work/status ]]; then
    # Everything is in; the guest powers off by itself, but there is no need to wait.
    kill "$qpid" 2>/dev/null || true
fi
rc=0
wait "$qpid" || rc=$?
qpid=
end=$(date +%s.%N)

if [[ -s $work/boot ]]; then
    boot=$(sed -n 's/^uptime=\([0-9.]*\).*/\1/p' "$work/boot")
    say "guest booted ($TAKT_VM_KERNEL_RELEASE), command started at guest uptime ${boot:-?} s"
fi
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

status=
if [[ -f $work/status ]]; then
    status=$(tr -dc '0-9' <"$work/status")
fi
if [[ -n $status ]]; then
    say "command exited with status $status (VM wall time ${elapsed} s)"
    exit "$status"
fi

if ((rc == 124 || rc == 137)); then
    say "error: timed out after ${timeout_s} s (VM wall time ${elapsed} s)"
    code=124
else
    say "error: the VM ended without reporting the command's status (qemu status $rc, VM wall time ${elapsed} s)"
    code=125
fi
if [[ -s $work/qemu.stderr ]]; then
    say "qemu stderr:"
    sed 's/^/  /' "$work/qemu.stderr" >&2
fi
if [[ -s $work/console.log ]]; then
    say "last console lines:"
    tail -n 40 "$work/console.log" | sed 's/^/  /' >&2
fi
exit "$code"
