#!/usr/bin/env bash
# Builds the guest's cached disk image for `make test-vm`: a Debian Bookworm root file system made from Debian
# packages (mmdebstrap), written into a raw ext4 image without a loop mount (mkfs.ext4 -d), and the kernel and initrd
# the guest boots with (qemu -kernel/-initrd: no boot loader). Runs nothing foreign: x86_64 only (arm64 is left out).
# Usage: build_image.sh ARCH OUTDIR   (OUTDIR gets base.img, vmlinuz, initrd.img, id_ed25519[.pub])
set -euo pipefail
arch=$1
out=$2
[ "$arch" = x86_64 ] || { echo "build_image.sh: only ARCH=x86_64 is built (arm64 is not done yet)" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
[ -f "$out/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sitegate-vm -f "$out/id_ed25519"
# What the README's install needs on a bare Bookworm (python3-venv; python3-dev, gcc and libc6-dev build spidev and
# evdev, which PyPI has only as sources; make, sudo), what the gate runs beside it (chrony, systemd, dbus for
# systemd-run), and how the host reaches it (openssh-server).
packages=systemd-sysv,dbus,udev,linux-image-cloud-amd64,initramfs-tools,python3,python3-venv,python3-dev,gcc,libc6-dev,make,sudo,chrony,openssh-server,procps,iproute2,sqlite3
mmdebstrap --quiet --variant=apt --include="$packages" \
  --customize-hook='echo sitegate-vm > "$1/etc/hostname"' \
  --customize-hook='echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1/etc/fstab"' \
  --customize-hook='printf "[Match]\nName=en*\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n" > "$1/etc/systemd/network/10-user.network"' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd' \
  --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer systemd-networkd-wait-online.service' \
  --customize-hook='mkdir -p -m 0700 "$1/root/.ssh"' \
  --customize-hook="cp '$out/id_ed25519.pub' \"\$1/root/.ssh/authorized_keys\"" \
  --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash tech' \
  --customize-hook='mkdir -p -m 0700 "$1/home/tech/.ssh" && cp "$1/root/.ssh/authorized_keys" "$1/home/tech/.ssh/" && chroot "$1" chown -R tech:tech /home/tech/.ssh' \
  --customize-hook='printf "[global]\nno-index = true\nfind-links = /root/wheelhouse\n" > "$1/etc/pip.conf"' \
  bookworm "$work/rootfs" http://deb.debian.org/debian
cp "$work"/rootfs/boot/vmlinuz-* "$work/vmlinuz"
cp "$work"/rootfs/boot/initrd.img-* "$work/initrd.img"
mkfs.ext4 -q -F -L sitegate-vm -d "$work/rootfs" "$work/base.img" 4G
mv "$work/vmlinuz" "$work/initrd.img" "$work/base.img" "$out/"
