/* Independent check of our ETSI caller ID: spandsp's ADSI receiver (ETSI CLIP, V.23 FSK)
 * decodes raw 16-bit little-endian 8 kHz mono PCM from the file argv[1] and prints each
 * received message as
 *     message TYPE_HEX
 *     field TYPE_HEX VALUE        (one line per parameter, VALUE as received)
 * then "messages N". Built and run by firmware/pbxd/src/media/dsp/crosscheck.rs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <spandsp.h>

static adsi_rx_state_t *rx;
static int messages;

static void put_msg(void *user_data, const uint8_t *msg, int len)
{
    uint8_t field_type;
    const uint8_t *body;
    int field_len;
    int pos;

    (void) user_data;
    if (len <= 0)
        return; /* a status report, not a message */
    messages++;
    printf("message %02x\n", msg[0]);
    pos = adsi_next_field(rx, msg, len, 0, &field_type, &body, &field_len);
    while (pos > 0) {
        pos = adsi_next_field(rx, msg, len, pos, &field_type, &body, &field_len);
        if (pos <= 0 || body == NULL)
            break;
        printf("field %02x ", field_type);
        fwrite(body, 1, field_len, stdout);
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    FILE *f;
    int16_t buf[160];
    size_t n;
    int i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.raw\n", argv[0]);
        return 2;
    }
    if ((f = fopen(argv[1], "rb")) == NULL) {
        perror(argv[1]);
        return 2;
    }
    rx = adsi_rx_init(NULL, ADSI_STANDARD_CLIP, put_msg, NULL);
    if (rx == NULL)
        return 2;
    while ((n = fread(buf, sizeof(int16_t), 160, f)) > 0)
        adsi_rx(rx, buf, (int) n);
    for (i = 0; i < 160; i++)
        buf[i] = 0;
    for (i = 0; i < 20; i++)
        adsi_rx(rx, buf, 160);
    fclose(f);
    printf("messages %d\n", messages);
    return 0;
}
