#!/bin/sh
# The arm64 guest's first boot (init=/sbin/first-boot, run by tests/vm/build_image_arm64.sh): dpkg installs the
# packages mmdebstrap only unpacked (in debootstrap's order: the password files, then the Essential set, then the
# rest), then the settings build_image.sh's chroot hooks make for x86_64, then the power goes off. Runs in the guest.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
set -ex
debs=/var/cache/first-boot
install_debs() { dpkg --force-depends --force-confold --skip-same-version --unpack "$@"; dpkg --configure --pending --force-configure-any --force-depends; }
install_debs "$debs"/base-passwd_*.deb
install_debs "$debs"/base-files_*.deb
install_debs "$debs"/dpkg_*.deb
# The initramfs is the host's (build_image_arm64.sh): the guest's own would cost minutes of emulated CPU for nothing.
dpkg-divert --local --rename --add /usr/sbin/update-initramfs
ln -s /bin/true /usr/sbin/update-initramfs
install_debs $(cat "$debs/essential.list")
install_debs $(ls "$debs"/*.deb | grep -vxF -f "$debs/essential.list")
dpkg --configure -a
rm /usr/sbin/update-initramfs
dpkg-divert --local --rename --remove /usr/sbin/update-initramfs
rm -rf "$debs"
systemctl enable systemd-networkd
systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer systemd-networkd-wait-online.service
useradd --create-home --shell /bin/bash tech
mkdir -p -m 0700 /home/tech/.ssh
cp /root/.ssh/authorized_keys /home/tech/.ssh/
chown -R tech:tech /home/tech/.ssh
rm /sbin/first-boot
sync
echo "first boot: configured"
echo o > /proc/sysrq-trigger
