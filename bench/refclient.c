/* The benchmark's C client: the protocol's own order (write the whole request, close,
 * then open the reply pipe and read it to end of file), in a loop, timed per call with
 * CLOCK_MONOTONIC.  Written for this benchmark (bench/README.md); compiled at bench time.
 *
 *   refclient N FIRST_ID HEX DIR...
 *
 * sends the request HEX (hex digits) N times to each pipes directory DIR in turn, call by
 * call (interleaved, so that a change of load hits every server alike).  When the request's
 * opcode is REMOVE (524d), a TASKID (uint64, FIRST_ID + call number) is appended to it.
 * Prints, per DIR, one line "DIR NS NS ..." (the duration of each call, nanoseconds), then
 * per DIR "reply DIR HEX" (the first reply, for checking).  Exit 1 on any failure. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

/* one call: the reply's length, or -1 */
static long call(const char *req_path, const char *rep_path, const unsigned char *req,
                 size_t len, unsigned char *buf, size_t cap) {
    int fd = open(req_path, O_WRONLY);
    if (fd < 0) return -1;
    if (write_all(fd, req, len) < 0) { close(fd); return -1; }
    close(fd);
    fd = open(rep_path, O_RDONLY);
    if (fd < 0) return -1;
    size_t got = 0;
    for (;;) {
        if (got == cap) { close(fd); return -1; }
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0) { if (errno == EINTR) continue; close(fd); return -1; }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    return (long)got;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: refclient N FIRST_ID HEX DIR...\n");
        return 2;
    }
    long n = atol(argv[1]);
    uint64_t first = strtoull(argv[2], NULL, 10);
    const char *hex = argv[3];
    size_t hlen = strlen(hex);
    if (n <= 0 || hlen % 2 || hlen < 4) { fprintf(stderr, "refclient: bad arguments\n"); return 2; }
    size_t len = hlen / 2;
    unsigned char *req = malloc(len + 8);
    for (size_t i = 0; i < len; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) { fprintf(stderr, "refclient: bad hex\n"); return 2; }
        req[i] = (unsigned char)(a * 16 + b);
    }
    int with_id = req[0] == 0x52 && req[1] == 0x4d;
    int ndirs = argc - 4;
    char (*reqp)[4096] = calloc((size_t)ndirs, 4096), (*repp)[4096] = calloc((size_t)ndirs, 4096);
    int64_t *ns = calloc((size_t)(ndirs * n), sizeof *ns);
    size_t cap = 64u << 20;
    unsigned char *buf = malloc(cap), **first_reply = calloc((size_t)ndirs, sizeof *first_reply);
    long *first_len = calloc((size_t)ndirs, sizeof *first_len);
    for (int d = 0; d < ndirs; d++) {
        snprintf(reqp[d], 4096, "%s/saturnd-request-pipe", argv[4 + d]);
        snprintf(repp[d], 4096, "%s/saturnd-reply-pipe", argv[4 + d]);
    }
    for (long i = 0; i < n; i++) {
        size_t l = len;
        if (with_id) {
            uint64_t id = first + (uint64_t)i;
            for (int k = 0; k < 8; k++) req[len + k] = (unsigned char)(id >> (56 - 8 * k));
            l += 8;
        }
        for (int d = 0; d < ndirs; d++) {
            int64_t t = now_ns();
            long got = call(reqp[d], repp[d], req, l, buf, cap);
            ns[d * n + i] = now_ns() - t;
            if (got <= 0) {
                fprintf(stderr, "refclient: call %ld to %s failed (%ld): %s\n", i, argv[4 + d],
                        got, strerror(errno));
                return 1;
            }
            if (i == 0) {
                first_reply[d] = malloc((size_t)got);
                memcpy(first_reply[d], buf, (size_t)got);
                first_len[d] = got;
            }
        }
    }
    for (int d = 0; d < ndirs; d++) {
        printf("%s", argv[4 + d]);
        for (long i = 0; i < n; i++) printf(" %lld", (long long)ns[d * n + i]);
        printf("\n");
    }
    for (int d = 0; d < ndirs; d++) {
        printf("reply %s ", argv[4 + d]);
        for (long k = 0; k < first_len[d] && k < 4096; k++) printf("%02x", first_reply[d][k]);
        printf("\n");
    }
    return 0;
}
