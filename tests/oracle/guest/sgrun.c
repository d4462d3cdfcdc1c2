/* sgrun: the guest side of the SCSI oracle (docs/scsi-oracle.md). Sends every CDB of a script
 * to one /dev/sg* device with the SG_IO ioctl and prints one answer line per CDB:
 *   R ID STATUS SENSE-HEX|- DATA-HEX|-    (STATUS: the SCSI status byte, hex)
 *   X ID REASON                           (no SCSI status: host/driver status or errno)
 * Script lines: ID DIR LEN CDB-HEX [DATA-OUT-HEX], DIR in|out|none.
 * Built with `gcc -static` by the oracle; runs as the only program in a busybox initramfs. */
#include <errno.h>
#include <fcntl.h>
#include <scsi/sg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_LEN (1 << 20)

static int unhex(const char *s, unsigned char *out, size_t cap) {
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return (int)(n / 2);
}

static void hex(const unsigned char *b, int n) {
    if (n <= 0) {
        fputs("-", stdout);
        return;
    }
    for (int i = 0; i < n; i++)
        printf("%02x", b[i]);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sgrun /dev/sgN SCRIPT\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_NONBLOCK);
    if (fd < 0) {
        fprintf(stderr, "sgrun: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        fprintf(stderr, "sgrun: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    static char line[4 * MAX_LEN];
    static unsigned char data[MAX_LEN];
    unsigned char cdb[16], sense[252];
    char id[128], dir[8], cdbhex[40];
    static char outhex[2 * MAX_LEN + 1];
    while (fgets(line, sizeof line, f)) {
        unsigned len;
        outhex[0] = 0;
        int k = sscanf(line, "%127s %7s %u %39s %s", id, dir, &len, cdbhex, outhex);
        if (k < 4 || id[0] == '#')
            continue;
        int cdblen = unhex(cdbhex, cdb, sizeof cdb);
        if (cdblen <= 0 || len > MAX_LEN) {
            printf("X %s bad-script-line\n", id);
            continue;
        }
        sg_io_hdr_t h;
        memset(&h, 0, sizeof h);
        memset(data, 0, len);
        memset(sense, 0, sizeof sense);
        h.interface_id = 'S';
        h.cmd_len = (unsigned char)cdblen;
        h.cmdp = cdb;
        h.mx_sb_len = sizeof sense;
        h.sbp = sense;
        h.dxfer_len = len;
        h.dxferp = len ? data : NULL;
        h.timeout = 10000;
        if (!strcmp(dir, "in"))
            h.dxfer_direction = len ? SG_DXFER_FROM_DEV : SG_DXFER_NONE;
        else if (!strcmp(dir, "out")) {
            h.dxfer_direction = SG_DXFER_TO_DEV;
            if (unhex(outhex, data, len) != (int)len) {
                printf("X %s bad-data-out\n", id);
                continue;
            }
        } else
            h.dxfer_direction = SG_DXFER_NONE;
        if (ioctl(fd, SG_IO, &h) < 0) {
            printf("X %s errno=%d\n", id, errno);
            continue;
        }
        if (h.host_status || (h.driver_status & 0x0f && !h.status)) {
            printf("X %s host=%#x driver=%#x\n", id, h.host_status, h.driver_status);
            continue;
        }
        printf("R %s %02x ", id, h.status);
        hex(sense, h.status ? h.sb_len_wr : 0);
        putchar(' ');
        int got = h.dxfer_direction == SG_DXFER_FROM_DEV && !h.status ? (int)len - h.resid : 0;
        hex(data, got);
        putchar('\n');
        fflush(stdout);
    }
    return 0;
}
