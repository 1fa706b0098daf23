#!/bin/sh
# PID 1 of the takt test VM (busybox sh inside the initramfs built by prepare.sh).
#
# Job: turn a bare PREEMPT_RT kernel into a place where host-built programs can talk to
# `vcan0`. The host's root file system arrives read-only over 9p and becomes the root of
# the command, with fresh tmpfs for everything that must be writable. The command itself
# comes from a second 9p share (the job directory written by run.sh), so no argument ever
# travels through the kernel command line and quoting stays the host shell's business.
#
# Two channels lead back to the host (9p is read-only):
# - the serial console (ttyS0): kernel messages and this script's diagnostics, kept by
#   run.sh as a log for when something goes wrong;
# - the virtio-serial port "takt.out": the command's stdout and stderr, framed by a BEGIN
#   marker and an EXIT marker carrying the command's status. Both markers carry the job's
#   random token so a command's own output can never be mistaken for them.
# The command's output does not use the 8250 UART because a flood of output there makes
# this kernel disable the UART's interrupt ("Disabling IRQ #4") and the output stalls; a
# virtio port also has no tty layer to rewrite line endings.

PATH=/bin
export PATH

say() {
    echo "takt-vm-init: $*"
}

# Phase times on the console log show where a slow boot spends its time.
mark() {
    up=$(cat /proc/uptime 2>/dev/null || cat /newroot/proc/uptime)
    say "${up%% *} s: $*"
}

# Without the output port or the token, run.sh cannot be told anything beyond the
# diagnostics on the console: it reports a failed boot and shows the console log.
finish() {
    if [ -n "${token:-}" ] && [ -n "${port:-}" ]; then
        echo "TAKT-VM-EXIT $token $1" >&3
    fi
    # run.sh stops qemu as soon as it reads the EXIT marker; the pause is only a fallback
    # that lets output drain when nobody is watching that closely.
    sleep 2
    poweroff -f
    # poweroff -f does not return; if it ever does, a panic (panic=-1, -no-reboot)
    # still ends qemu rather than leaving it spinning until the timeout.
    exit 1
}

die() {
    say "error: $*"
    finish 125
}

# The initramfs carries no device nodes (building it needs no root), so the kernel found
# no /dev/console to hand us: open it ourselves once devtmpfs is there.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc || die "cannot mount /proc"
mount -t sysfs sysfs /sys || die "cannot mount /sys"
mark "init started"

# Load order was resolved on the host from each module's `depends=` (see prepare.sh).
while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "/lib/modules/$mod.ko" || die "cannot load module $mod"
    mark "loaded $mod"
done </modules.list

# The port's device name (vportNpM) depends on probe order; its name attribute does not.
port=
tries=0
while [ -z "$port" ] && [ $tries -lt 100 ]; do
    for p in /sys/class/virtio-ports/*; do
        if [ -f "$p/name" ] && [ "$(cat "$p/name")" = takt.out ] && [ -c "/dev/${p##*/}" ]; then
            port=/dev/${p##*/}
        fi
    done
    [ -n "$port" ] || sleep 0.05
    tries=$((tries + 1))
done
[ -n "$port" ] || die "no virtio-serial port named takt.out"
exec 3>"$port" || die "cannot open $port"
mark "modules loaded, output port $port"

r=/newroot
mkdir -p $r
ninep="trans=virtio,version=9p2000.L,msize=512000"
# cache=loose lets the guest keep what it read for the whole (short) life of the VM:
# programs start several times faster than with every lookup going back to the host, and
# the host tree is not expected to change under one command.
mount -t 9p -o "$ninep,cache=loose,ro" hostroot $r || die "cannot mount the host root over 9p (tag hostroot)"

mount -t tmpfs -o mode=0755 tmpfs $r/run || die "cannot mount tmpfs on /run"
mkdir -p $r/run/takt-job $r/run/host-tmp
mount -t 9p -o "$ninep,ro" taktjob $r/run/takt-job || die "cannot mount the job share over 9p (tag taktjob)"
token=$(cat $r/run/takt-job/token) || die "job share has no token"

# Keep the host's /tmp reachable before a tmpfs hides it: the checkout, its target
# directory or a test's temporary directory may live under /tmp. Every directory there
# stays visible (read-only, as all of the host is) at its own path; /tmp itself is a
# fresh tmpfs so the command can create files in it.
mount -o bind $r/tmp $r/run/host-tmp || die "cannot bind the host /tmp"
mount -t tmpfs -o mode=1777 tmpfs $r/tmp || die "cannot mount tmpfs on /tmp"
for d in $r/run/host-tmp/*/ $r/run/host-tmp/.[!.]*/; do
    [ -d "$d" ] || continue
    top=${d%/}
    top=${top##*/}
    mkdir -p "$r/tmp/$top"
    mount -o bind "$r/run/host-tmp/$top" "$r/tmp/$top" || die "cannot bind /tmp/$top"
done

for d in proc sys dev; do
    mount -o move /$d $r/$d || die "cannot move /$d into the new root"
done
mkdir -p $r/dev/shm $r/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm || die "cannot mount tmpfs on /dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts || die "cannot mount devpts"

ip link set lo up || die "cannot bring up lo"
ip link add dev vcan0 type vcan || die "cannot create vcan0"
ip link set up vcan0 || die "cannot bring up vcan0"

mark "root mounted, vcan0 up"
read -r uptime _ <$r/proc/uptime
echo "TAKT-VM-BEGIN $token uptime=$uptime" >&3

# job.sh (written by run.sh) sets the environment, enters the working directory and
# execs the command. stdin is /dev/null: nobody can type into this VM. (/dev has moved
# into the new root, hence $r/dev/null.)
env -i /bin/chroot $r /bin/bash --noprofile --norc /run/takt-job/job.sh <$r/dev/null >&3 2>&3 3>&-
finish $?
