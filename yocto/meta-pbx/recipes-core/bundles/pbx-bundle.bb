# nooelint: oelint.var.mandatoryvar.HOMEPAGE, oelint.var.mandatoryvar.SRC_URI, oelint.file.underscores
# (a closed product: no public homepage; the bundle class takes its input from pbx-image;
# a bundle carries no version in its file name, RAUC_BUNDLE_VERSION sets it)
SUMMARY = "Signed RAUC update bundle of the PBX box"
DESCRIPTION = "A verity bundle holding pbx-image for slot class rootfs, signed with \
the key in PBX_KEYS_DIR (development) or RAUC_KEY_FILE/RAUC_CERT_FILE (release)."
LICENSE = "MIT"

inherit bundle

# Must equal compatible= in image/rauc/system.conf (scripts/test.d/image.sh checks it).
RAUC_BUNDLE_COMPATIBLE = "pbx-box-v1"
RAUC_BUNDLE_DESCRIPTION = "PBX firmware"
RAUC_BUNDLE_FORMAT = "verity"

RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "pbx-image"
RAUC_SLOT_rootfs[fstype] = "ext4"

PBX_KEYS_DIR ??= "${TOPDIR}/pbx-keys"
RAUC_KEY_FILE ?= "${PBX_KEYS_DIR}/pbx-signing.key.pem"
RAUC_CERT_FILE ?= "${PBX_KEYS_DIR}/pbx-signing.cert.pem"
