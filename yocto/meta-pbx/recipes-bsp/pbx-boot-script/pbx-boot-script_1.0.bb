# nooelint: oelint.var.mandatoryvar.HOMEPAGE - a closed product: no public homepage
SUMMARY = "U-Boot A/B boot script of the PBX box"
DESCRIPTION = "Compiles image/uboot/boot.cmd (slot choice from BOOT_ORDER, boot \
attempts in BOOT_A_LEFT/BOOT_B_LEFT, as RAUC's U-Boot backend expects) to boot.scr \
for the boot partition."
LICENSE = "CLOSED"

DEPENDS = "u-boot-mkimage-native"

SRC_URI = "file://boot.cmd"
S = "${UNPACKDIR}"

inherit deploy nopackages kernel-arch

PACKAGE_ARCH = "${MACHINE_ARCH}"

do_compile() {
    mkimage -A ${UBOOT_ARCH} -T script -C none -n "PBX A/B boot" -d ${UNPACKDIR}/boot.cmd ${B}/boot.scr
}

do_deploy() {
    install -D -m 0644 ${B}/boot.scr ${DEPLOYDIR}/boot.scr
}
addtask deploy after do_compile before do_build
