# The PBX box's RAUC configuration (slots, U-Boot, boot attempts: image/rauc/system.conf,
# linked here) and the CA that signs its update bundles. Only for DISTRO "pbx"
# (conf/distro/pbx.conf), so adding the layer changes nothing else.
FILESEXTRAPATHS:prepend:pbx := "${THISDIR}/files:${PBX_KEYS_DIR}:"

# A name of our own, so a missing CA fails the fetch instead of silently installing
# meta-rauc's example ca.cert.pem. system.conf's [keyring] path points at it.
RAUC_KEYRING_FILE:pbx = "pbx-ca.cert.pem"
