#!/usr/bin/env bash
# The arm64 guest's cached image for `make test-vm ARCH=arm64`, built without running anything foreign on this machine
# (no binfmt handler, no qemu-user): mmdebstrap only unpacks the packages (--variant=extract, no maintainer script runs),
# the host writes plain files into the tree and packs a small initramfs, and the guest configures itself at its first
# boot under qemu-system-aarch64 (tests/vm/arm64_first_boot.sh: dpkg installs what was unpacked, then the settings
# build_image.sh's chroot hooks make for x86_64), then powers off: base.img is the configured disk.
#
# The initramfs is packed here, by copying files only (the arm64 busybox-static binary from the unpacked tree, the
# virtio and ext4 modules, an /init that loads them and switches to /dev/vda): the kernel's virtio_blk and ext4 are
# modules and the first boot needs them before anything in the guest has been configured, so the guest could not make
# one for itself before it has booted once anyway; the same initramfs then serves every boot, and the guest's
# update-initramfs is skipped at the first boot (minutes of emulated CPU).
# Usage: build_image_arm64.sh arm64 OUTDIR   (OUTDIR gets base.img, vmlinuz, initrd.img, id_ed25519[.pub])
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$1" = arm64 ] || { echo "build_image_arm64.sh builds ARCH=arm64 only" >&2; exit 2; }
out=$2
mkdir -p "$out"
work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
[ -f "$out/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sitegate-vm -f "$out/id_ed25519"
root=$work/rootfs
# build_image.sh's list with the arm64 kernel, and Debian's Essential set (the extract variant adds none by itself).
essential=base-files,base-passwd,bash,bsdutils,coreutils,dash,debianutils,diffutils,dpkg,findutils,grep,gzip,hostname
essential=$essential,init-system-helpers,libc-bin,login,ncurses-base,ncurses-bin,perl-base,sed,sysvinit-utils,tar
essential=$essential,util-linux,mawk,busybox-static
packages=systemd-sysv,dbus,udev,linux-image-arm64,initramfs-tools,python3,python3-venv,python3-dev,gcc,libc6-dev,make
packages=$packages,sudo,chrony,openssh-server,procps,iproute2,sqlite3
mmdebstrap --quiet --arch=arm64 --variant=extract --include="$essential,$packages" --skip=cleanup/apt/cache \
  --setup-hook=/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh \
  bookworm "$root" http://deb.debian.org/debian

# The packages for the first boot's dpkg, Essential ones listed apart (dpkg-deb on the host only reads the archives).
mkdir -p "$root/var/cache/first-boot"
mv "$root"/var/cache/apt/archives/*.deb "$root/var/cache/first-boot/"
for deb in "$root"/var/cache/first-boot/*.deb; do
  [ "$(dpkg-deb -f "$deb" Essential)" = yes ] && echo "${deb#"$root"}"
done > "$root/var/cache/first-boot/essential.list"
touch "$root/var/lib/dpkg/available"
[ -e "$root/bin/sh" ] || ln -s dash "$root/bin/sh"
install -m 0755 "$here/arm64_first_boot.sh" "$root/sbin/first-boot"

# What build_image.sh's hooks write as plain files (its chroot commands run in arm64_first_boot.sh).
echo sitegate-vm > "$root/etc/hostname"
echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$root/etc/fstab"
mkdir -p "$root/etc/systemd/network"
printf "[Match]\nName=en*\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n" > "$root/etc/systemd/network/10-user.network"
mkdir -p -m 0700 "$root/root/.ssh"
cp "$out/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
printf "[global]\nno-index = true\nfind-links = /root/wheelhouse\n" > "$root/etc/pip.conf"

# The initramfs: busybox, the modules the root needs (in dependency order), an /init.
kernel=$(basename "$root"/lib/modules/*)
initramfs=$work/initramfs
mkdir -p "$initramfs"/{bin,dev,proc,sys,newroot,modules}
cp "$root/bin/busybox" "$initramfs/bin/busybox"
modules="virtio_mmio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk crc16 mbcache crc32c_generic jbd2 ext4"
for module in $modules; do
  find "$root/lib/modules/$kernel/kernel" -name "$module.ko" -exec cp {} "$initramfs/modules/" \;
  echo "$module" >> "$initramfs/modules/order"
done
cat > "$initramfs/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules/order); do insmod /modules/$module.ko; done
init=/sbin/init
for word in $(cat /proc/cmdline); do case $word in init=*) init=${word#init=};; esac; done
for try in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.2; done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; exec sh; }
mount --move /dev /newroot/dev && umount /proc /sys
exec switch_root /newroot "$init"
INIT
chmod 0755 "$initramfs/init"
(cd "$initramfs" && find . | cpio --quiet -o -H newc --owner 0:0 | gzip -1) > "$work/initrd.img"
cp "$root/boot/vmlinuz-$kernel" "$work/vmlinuz"
mkfs.ext4 -q -F -L sitegate-vm -d "$root" "$work/base.img" 4G

# The first boot: the guest configures itself and powers off (qemu exits); its console is kept beside the image.
started=$SECONDS
timeout 3600 qemu-system-aarch64 -M virt -cpu cortex-a72 -accel tcg -m 1024 -smp 2 -display none -monitor none \
  -no-reboot -serial "file:$out/first-boot.log" -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
  -append "console=ttyAMA0 root=/dev/vda rw panic=1 init=/sbin/first-boot" \
  -drive "file=$work/base.img,format=raw,if=virtio,cache=unsafe" -nic none
grep -q "first boot: configured" "$out/first-boot.log" || { echo "the arm64 first boot failed: see $out/first-boot.log" >&2; exit 1; }
echo "arm64 first boot (configuration) took $((SECONDS - started)) s"
mv "$work/vmlinuz" "$work/initrd.img" "$work/base.img" "$out/"
