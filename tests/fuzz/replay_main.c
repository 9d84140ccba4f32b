/* replay_main.c - runs a fuzz target without libFuzzer, as a ctest: every file of the corpus
 * directory given on the command line, then a few thousand pseudo-random mutations of them
 * (byte flips, truncations, insertions, splices) from a fixed seed, so CI repeats the same
 * inputs every time. Usage: <target>-replay <corpus dir> [iterations].
 * SPDX-License-Identifier: Apache-2.0
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
    uint8_t *p;
    size_t n;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int load(const char *dir, struct input **out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    size_t n = 0, cap = 16;
    struct input *in = malloc(cap * sizeof *in);
    while (in && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 20);
        size_t len = buf ? fread(buf, 1, 1 << 20, f) : 0;
        fclose(f);
        if (!buf)
            continue;
        if (n == cap) {
            cap *= 2;
            struct input *ni = realloc(in, cap * sizeof *in);
            if (!ni) {
                free(buf);
                break;
            }
            in = ni;
        }
        in[n].p = buf;
        in[n].n = len;
        n++;
    }
    closedir(d);
    *out = in;
    *count = n;
    return in ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <corpus dir> [iterations]\n", argv[0]);
        return 2;
    }
    long iters = argc > 2 ? atol(argv[2]) : 5000;
    struct input *in;
    size_t n;
    if (load(argv[1], &in, &n) != 0 || n == 0) {
        fprintf(stderr, "%s: no corpus in %s\n", argv[0], argv[1]);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        LLVMFuzzerTestOneInput(in[i].p, in[i].n);
    uint8_t *buf = malloc(1 << 21);
    for (long it = 0; it < iters; it++) {
        const struct input *src = &in[rng() % n];
        size_t len = src->n;
        memcpy(buf, src->p, len);
        int muts = 1 + (int)(rng() % 4);
        for (int m = 0; m < muts; m++) {
            switch (rng() % 5) {
            case 0: /* flip a byte */
                if (len)
                    buf[rng() % len] ^= (uint8_t)(1 + rng() % 255);
                break;
            case 1: /* truncate */
                if (len)
                    len = rng() % len;
                break;
            case 2: /* interesting value */
                if (len) {
                    static const uint8_t vals[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
                    buf[rng() % len] = vals[rng() % sizeof vals];
                }
                break;
            case 3: /* insert bytes */
                if (len + 8 < (1 << 21)) {
                    size_t at = len ? rng() % len : 0;
                    memmove(buf + at + 4, buf + at, len - at);
                    for (int k = 0; k < 4; k++)
                        buf[at + k] = (uint8_t)rng();
                    len += 4;
                }
                break;
            case 4: { /* splice the tail of another input */
                const struct input *o = &in[rng() % n];
                if (o->n && len) {
                    size_t at = rng() % len, from = rng() % o->n;
                    size_t take = o->n - from;
                    if (at + take < (1 << 21)) {
                        memcpy(buf + at, o->p + from, take);
                        len = at + take;
                    }
                }
                break;
            }
            }
        }
        uint8_t *exact = malloc(len ? len : 1); /* exact size so ASan sees any overrun */
        memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    printf("%s: %zu corpus files, %ld mutations: ok\n", argv[0], n, iters);
    free(buf);
    for (size_t i = 0; i < n; i++)
        free(in[i].p);
    free(in);
    return 0;
}
