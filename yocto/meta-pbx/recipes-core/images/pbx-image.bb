SUMMARY = "PBX box root file system: pbxd, RAUC A/B updates, read-only root"
DESCRIPTION = "The root file system written to rootfs A/B (image/genimage.cfg) and \
shipped in the pbx-bundle update. Kernel and device tree live in its /boot, so they \
are updated A/B with it. State lives on the data partition mounted at /data."
LICENSE = "MIT"

inherit core-image features_check

REQUIRED_DISTRO_FEATURES = "systemd"

IMAGE_FEATURES += "read-only-rootfs"
IMAGE_FSTYPES = "ext4"

IMAGE_INSTALL = "\
    packagegroup-core-boot \
    ${CORE_IMAGE_EXTRA_INSTALL} \
    kernel-image \
    kernel-devicetree \
    libubootenv-bin \
    pbxd \
    rauc \
    "

# Mount points and fstab lines for the partitions outside the slots:
# p1 (U-Boot environment, which fw_setenv and RAUC edit) and p4 (data, never updated;
# it grows to the device's size on first boot).
ROOTFS_POSTPROCESS_COMMAND += "pbx_fstab"
pbx_fstab() {
    install -d ${IMAGE_ROOTFS}/data ${IMAGE_ROOTFS}/uboot
    printf '%s\n' \
        "/dev/disk/by-partlabel/boot  /uboot  vfat  defaults,noatime,umask=0077  0  2" \
        "/dev/disk/by-partlabel/data  /data   ext4  defaults,noatime,x-systemd.growfs  0  2" \
        >> ${IMAGE_ROOTFS}${sysconfdir}/fstab
}
