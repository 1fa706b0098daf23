#!/usr/bin/env bash
# Prepares everything run.sh needs to boot the takt test VM: a Debian PREEMPT_RT kernel
# and an initramfs holding busybox, the few modules the guest needs and init.sh.
#
# Why a VM at all: the development and CI machines' own kernel has no CAN support, while
# takt must be proven on a real PREEMPT_RT kernel with the kernel's own CAN stack.
#
# Idempotent and safe to run concurrently (one flock around the slow path). When already
# prepared it only hashes two files and checks a few commands, and touches no network.
#
# Usage: tests/vm/prepare.sh [--quiet]
# Prints where the kernel and initramfs are; writes them to $cache/prepared.env as
# shell assignments for run.sh.
# Environment: TAKT_VM_CACHE overrides the cache directory (default tests/vm/cache).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
cache=${TAKT_VM_CACHE:-$here/cache}
state=$cache/prepared.env
quiet=0
[[ ${1:-} == --quiet ]] && quiet=1

# Host packages the harness uses. qemu-system-x86 boots the VM; the others are used on
# the host (cpio, xz) or, through the shared root, inside the guest (can-utils, iproute2,
# python3). busybox-static is copied into the initramfs.
host_packages=(qemu-system-x86 can-utils busybox-static xz-utils cpio iproute2 python3)
host_commands=(qemu-system-x86_64 candump cansend ip python3 cpio xz flock timeout)

# Guest modules, loaded in this order after their dependencies. The virtio/9p set mounts
# the host root, virtio_console carries the command's output; the CAN set gives vcan0. can-bcm and can-gw are optional extras (python-can
# uses BCM for periodic sends), loaded only when the kernel has them.
guest_modules=(virtio virtio_ring virtio_pci virtio_console 9pnet 9pnet_virtio netfs fscache 9p can can-raw can-dev vcan)
optional_modules=(can-bcm can-gw)

say() {
    printf 'takt-vm: %s\n' "$*" >&2
}

die() {
    say "error: $*"
    exit 1
}

# The cache key covers everything that decides the initramfs' content, so editing
# init.sh or this script rebuilds it on the next run.
key=$(cat -- "$here/prepare.sh" "$here/init.sh" | sha256sum | cut -c1-16)

report() {
    # shellcheck source=/dev/null
    source "$state"
    if ((quiet == 0)); then
        printf 'kernel:    %s (%s)\n' "$TAKT_VM_KERNEL" "$TAKT_VM_KERNEL_RELEASE"
        printf 'boots:     %s\n' "$TAKT_VM_BOOT_KERNEL"
        printf 'initramfs: %s\n' "$TAKT_VM_INITRD"
        printf 'cache:     %s\n' "$cache"
        printf 'state:     %s\n' "$state"
    fi
}

is_prepared() {
    [[ -f $state ]] || return 1
    grep -qx "TAKT_VM_KEY=$key" "$state" || return 1
    local TAKT_VM_KERNEL TAKT_VM_BOOT_KERNEL TAKT_VM_INITRD
    # shellcheck source=/dev/null
    source "$state"
    [[ -f $TAKT_VM_KERNEL && -f $TAKT_VM_BOOT_KERNEL && -f $TAKT_VM_INITRD ]] || return 1
    local c
    for c in "${host_commands[@]}"; do
        command -v "$c" >/dev/null 2>&1 || return 1
    done
}

if is_prepared; then
    report
    exit 0
fi

mkdir -p -- "$cache"
exec 9>"$cache/.lock"
flock 9
# Another run may have finished the work while this one waited for the lock.
if is_prepared; then
    report
    exit 0
fi

apt_updated=0
apt_update_once() {
    if ((apt_updated == 0)); then
        say "apt-get update"
        apt-get -o DPkg::Lock::Timeout=300 update -q >&2
        apt_updated=1
    fi
}

install_host_packages() {
    local missing=() p
    for p in "${host_packages[@]}"; do
        if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    if ((EUID != 0)); then
        die "missing packages: ${missing[*]}; install them as root (apt-get install ${missing[*]}) or run this as root"
    fi
    apt_update_once
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        --no-install-recommends "${missing[@]}" >&2
}

# Resolves the meta package to the versioned kernel package it currently points at.
resolve_kernel_package() {
    apt-cache depends linux-image-rt-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-rt-amd64$/ { print $2; exit }'
}

# Downloads and unpacks the RT kernel once; later runs reuse whatever is unpacked, so the
# harness keeps working offline and does not change kernel under the tests' feet. Delete
# the cache directory to move to Debian's newest RT kernel.
fetch_kernel() {
    local existing
    existing=$(find "$cache/kernel" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-*-rt-amd64' 2>/dev/null | sort -V | tail -n1 || true)
    if [[ -n $existing ]]; then
        printf '%s\n' "$existing"
        return 0
    fi
    local pkg
    pkg=$(resolve_kernel_package)
    if [[ -z $pkg ]]; then
        apt_update_once
        pkg=$(resolve_kernel_package)
    fi
    [[ -n $pkg ]] || die "apt cannot resolve linux-image-rt-amd64 to a versioned kernel package"
    say "downloading $pkg (about 70 MB)"
    local tmp=$cache/kernel/.$pkg.tmp
    rm -rf -- "$tmp"
    mkdir -p -- "$tmp/deb"
    # The sandbox user cannot write into a directory owned by another user; downloading
    # as the caller is fine for a file that is only unpacked, never installed.
    (cd -- "$tmp/deb" && apt-get -q -o APT::Sandbox::User="$(id -un)" download "$pkg" >&2)
    local deb
    deb=$(find "$tmp/deb" -name '*.deb' | head -n1)
    [[ -n $deb ]] || die "apt-get download $pkg produced no .deb"
    dpkg-deb -x "$deb" "$tmp/root"
    rm -rf -- "$tmp/deb"
    mv -- "$tmp" "$cache/kernel/$pkg"
    printf '%s\n' "$cache/kernel/$pkg"
}

# Unpacks the kernel proper (an ELF vmlinux) from the bzImage $1 into $2. qemu boots such
# an ELF directly through its PVH entry point, which skips the decompressor: under TCG
# that takes about 4 s of every boot. Fails if no known compressed payload yields an ELF.
extract_vmlinux() {
    local image=$1 out=$2 magic cmd off
    for pair in $'\xfd7zXZ:xz -dcq --single-stream' $'\x28\xb5\x2f\xfd:zstd -qdc' $'\x1f\x8b\x08:gzip -dcq'; do
        magic=${pair%%:*}
        cmd=${pair#*:}
        command -v "${cmd%% *}" >/dev/null || continue
        for off in $(LC_ALL=C grep -abo "$magic" "$image" | cut -d: -f1 | head -n5); do
            # Trailing bytes after the payload make the decompressor complain; the ELF
            # check below is what decides.
            # shellcheck disable=SC2086 # $cmd is a command and its options
            tail -c +$((off + 1)) "$image" | $cmd >"$out.tmp" 2>/dev/null || true
            if [[ $(head -c4 "$out.tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
                mv -f -- "$out.tmp" "$out"
                return 0
            fi
        done
    done
    rm -f -- "$out.tmp"
    return 1
}

# Copies module $1 (and, first, everything it depends on) into the staging directory,
# appending it to the load list. Built-in modules need nothing.
declare -A visited=()
add_module() {
    local name=$1 optional=${2:-0}
    local norm=${name//-/_}
    [[ -n ${visited[$norm]:-} ]] && return 0
    visited[$norm]=1
    # modules.builtin spells names with either - or _, as the source files do.
    if grep -Eq "/(${name}|${norm}|${norm//_/-})\.ko$" "$moddir/modules.builtin"; then
        return 0
    fi
    local file
    file=$(find "$moddir/kernel" -type f \( -name "$norm.ko*" -o -name "${norm//_/-}.ko*" \) |
        grep -E "/(${norm}|${norm//_/-})\.ko(\.xz|\.zst|\.gz)?$" | head -n1 || true)
    if [[ -z $file ]]; then
        ((optional)) && return 0
        die "module $name is neither built into $release nor shipped with it"
    fi
    local base=${file##*/}
    base=${base%.xz}
    base=${base%.zst}
    base=${base%.gz}
    base=${base%.ko}
    local out=$stage/lib/modules/$base.ko
    case $file in
    *.xz) xz -dc -- "$file" >"$out" ;;
    *.zst) zstd -qdc -- "$file" >"$out" ;;
    *.gz) gzip -dc -- "$file" >"$out" ;;
    *) cp -- "$file" "$out" ;;
    esac
    local deps dep
    deps=$(tr '\0' '\n' <"$out" | grep -a '^depends=' | head -n1 | cut -d= -f2 || true)
    for dep in ${deps//,/ }; do
        add_module "$dep"
    done
    printf '%s\n' "$base" >>"$stage/modules.list"
}

install_host_packages

kroot=$(fetch_kernel)/root
moddir=$(find "$kroot/lib/modules" "$kroot/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n1 || true)
[[ -n $moddir ]] || die "no modules directory in $kroot"
release=${moddir##*/}
kernel=$kroot/boot/vmlinuz-$release
[[ -f $kernel ]] || die "no kernel image at $kernel"
grep -qx 'CONFIG_PREEMPT_RT=y' "$kroot/boot/config-$release" || die "$release is not a PREEMPT_RT kernel"
boot_kernel=$kernel
if grep -qx 'CONFIG_PVH=y' "$kroot/boot/config-$release"; then
    vmlinux=$kroot/boot/vmlinux-$release
    if [[ -f $vmlinux ]] || extract_vmlinux "$kernel" "$vmlinux"; then
        boot_kernel=$vmlinux
    else
        say "warning: cannot unpack vmlinux from $kernel; booting the bzImage (about 4 s slower)"
    fi
fi
if find "$moddir/kernel" -name '*.ko.zst' -print -quit | grep -q . && ! command -v zstd >/dev/null; then
    host_packages+=(zstd)
    install_host_packages
fi

busybox=/bin/busybox
# The initramfs has no libraries, so only a static busybox will run there.
if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked; install busybox-static"
fi

say "building the initramfs for $release"
stage=$cache/.initramfs.tmp
rm -rf -- "$stage"
mkdir -p -- "$stage"/{bin,lib/modules,proc,sys,dev,newroot}
: >"$stage/modules.list"
for m in "${guest_modules[@]}"; do
    add_module "$m"
done
for m in "${optional_modules[@]}"; do
    add_module "$m" 1
done
cp -- "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$stage/bin/$applet"
done
install -m 0755 -- "$here/init.sh" "$stage/init"

initrd=$cache/initramfs-$release-$key.cpio
# The kernel unpacks an uncompressed archive fastest; it is only a few MB.
(cd -- "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$initrd.tmp"
mv -f -- "$initrd.tmp" "$initrd"
rm -rf -- "$stage"
# Older initramfs images (from an earlier init.sh) are useless now.
find "$cache" -maxdepth 1 -name 'initramfs-*.cpio' ! -path "$initrd" -delete

{
    printf 'TAKT_VM_KEY=%s\n' "$key"
    printf 'TAKT_VM_KERNEL_RELEASE=%q\n' "$release"
    printf 'TAKT_VM_KERNEL=%q\n' "$kernel"
    printf 'TAKT_VM_BOOT_KERNEL=%q\n' "$boot_kernel"
    printf 'TAKT_VM_INITRD=%q\n' "$initrd"
} >"$state.tmp"
mv -f -- "$state.tmp" "$state"
say "prepared $release"
report
