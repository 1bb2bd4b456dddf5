/* Independent DTMF source: spandsp's DTMF generator writes DIGITS as raw 16-bit
 * little-endian 8 kHz mono PCM to OUT. LEVEL is the low (row) tone in dBm0, TWIST the
 * high (column) tone relative to it in dB, ON_MS/OFF_MS the tone and pause lengths.
 *     dtmf_gen DIGITS LEVEL TWIST ON_MS OFF_MS OUT
 * Built and run by firmware/pbxd/src/media/dsp/crosscheck.rs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <spandsp.h>

int main(int argc, char **argv)
{
    dtmf_tx_state_t *tx;
    int16_t buf[160];
    int n;
    int i;
    FILE *out;

    if (argc != 7) {
        fprintf(stderr, "usage: %s DIGITS LEVEL TWIST ON_MS OFF_MS OUT\n", argv[0]);
        return 2;
    }
    tx = dtmf_tx_init(NULL);
    if (tx == NULL)
        return 2;
    dtmf_tx_set_level(tx, atoi(argv[2]), atoi(argv[3]));
    dtmf_tx_set_timing(tx, atoi(argv[4]), atoi(argv[5]));
    dtmf_tx_put(tx, argv[1], -1);
    if ((out = fopen(argv[6], "wb")) == NULL) {
        perror(argv[6]);
        return 2;
    }
    /* Leading silence, then the digits until the generator runs dry. */
    for (i = 0; i < 160; i++)
        buf[i] = 0;
    fwrite(buf, sizeof(int16_t), 160, out);
    while ((n = dtmf_tx(tx, buf, 160)) > 0)
        fwrite(buf, sizeof(int16_t), (size_t) n, out);
    for (i = 0; i < 160; i++)
        buf[i] = 0;
    for (i = 0; i < 5; i++)
        fwrite(buf, sizeof(int16_t), 160, out);
    fclose(out);
    return 0;
}
