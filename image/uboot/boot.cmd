# U-Boot boot script of the PBX box: A/B slot selection with boot-attempt counting, the
# counterpart of RAUC's `bootloader=uboot` (image/rauc/system.conf). Compile with
#   mkimage -A arm64 -T script -C none -d boot.cmd boot.scr
# and put boot.scr on the boot partition (p1). The environment (BOOT_ORDER, BOOT_A_LEFT,
# BOOT_B_LEFT) is saved where fw_setenv finds it (/etc/fw_env.config on the rootfs).
#
# RAUC sets BOOT_ORDER to "B A" and BOOT_B_LEFT to 3 after installing into B; each boot
# of a slot costs one attempt; `rauc status mark-good` (run when systemd reaches
# boot-complete.target, after pbxd's health gate) sets the attempts back to 3. A slot
# that used up its attempts without being marked good is skipped: the box falls back.
# The kernel and device tree come from the selected slot's /boot, so they update A/B too.

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
test -n "${mmcdev}" || setenv mmcdev 0

setenv pbx_part
setenv pbx_slot
for slot in ${BOOT_ORDER}; do
  if test -n "${pbx_part}"; then
    # a slot is already chosen
  elif test "${slot}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
    setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
    setenv pbx_part 2
    setenv pbx_slot A
  elif test "${slot}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
    setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
    setenv pbx_part 3
    setenv pbx_slot B
  fi
done

if test -z "${pbx_part}"; then
  # Both slots used up their attempts: give both another round rather than brick the
  # box, and say so on the console.
  echo "PBX: no bootable slot left, resetting boot attempts"
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
  saveenv
  reset
fi

# Save the decremented counter before anything can hang.
saveenv
echo "PBX: booting slot ${pbx_slot} (mmc ${mmcdev}:${pbx_part}), A left ${BOOT_A_LEFT}, B left ${BOOT_B_LEFT}"
part uuid mmc ${mmcdev}:${pbx_part} pbx_root_uuid
setenv bootargs "${bootargs} root=PARTUUID=${pbx_root_uuid} rootwait ro rauc.slot=${pbx_slot}"
load mmc ${mmcdev}:${pbx_part} ${kernel_addr_r} /boot/Image
load mmc ${mmcdev}:${pbx_part} ${fdt_addr_r} /boot/${fdtfile}
booti ${kernel_addr_r} - ${fdt_addr_r}
