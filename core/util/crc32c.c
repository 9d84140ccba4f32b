/* crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as Kafka record batches
 * and the WAL use it. Two implementations behind one entry point: the SSE4.2 crc32
 * instruction (8 bytes per step) when the CPU has it, otherwise software slice-by-8 with
 * tables built once at first use. The instruction has a latency of 3 cycles and a throughput
 * of 1, so long inputs run three independent streams over three consecutive CRC32C_LANE-byte
 * blocks and join them: for the raw register, crc(x, A|B) = shift(crc(x, A), |B|) ^ crc(0, B),
 * where shift(v, n) feeds n zero bytes (linear in v: four 256-entry tables per distance).
 * Measured about 2x faster (7 -> 12-16 GB/s here) on the produce path, where every batch is
 * checked. Where the CPU has AVX-512 and VPCLMULQDQ, inputs of 256 bytes or more are folded
 * with carry-less multiplies instead, 256 bytes per step (see crc32c_vpclmul).
 * The choice is made once (pthread_once) and never changes.
 * Owns: the 8 x 256 lookup table, the two 4 x 256 shift tables and the folding constants
 * (process-wide, read-only after init).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u

#define CRC32C_LANE 4096u /* bytes per stream in the 3-way path */

static uint32_t crc32c_table[8][256];
static uint32_t crc32c_shift1[4][256], crc32c_shift2[4][256]; /* by CRC32C_LANE, 2x that */
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static uint32_t (*crc32c_impl)(uint32_t crc, const unsigned char *p, size_t len);
static int crc32c_path = STRATUS_CRC32C_SW;
static uint32_t crc32c_xnmodp(uint64_t n);

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        w ^= crc;
        crc = crc32c_table[7][w & 0xff] ^ crc32c_table[6][(w >> 8) & 0xff] ^
              crc32c_table[5][(w >> 16) & 0xff] ^ crc32c_table[4][(w >> 24) & 0xff] ^
              crc32c_table[3][(w >> 32) & 0xff] ^ crc32c_table[2][(w >> 40) & 0xff] ^
              crc32c_table[1][(w >> 48) & 0xff] ^ crc32c_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

static uint32_t crc32c_shift(uint32_t t[4][256], uint32_t v)
{
    return t[0][v & 0xff] ^ t[1][(v >> 8) & 0xff] ^ t[2][(v >> 16) & 0xff] ^ t[3][v >> 24];
}

/* t[k][b] = the raw register (b << 8k) after n zero bytes. */
static void crc32c_shift_table(uint32_t t[4][256], size_t n)
{
    static const unsigned char zeros[256];
    uint32_t basis[32];
    for (int i = 0; i < 32; i++) {
        uint32_t v = 1u << i;
        for (size_t k = 0; k < n; k += sizeof zeros)
            v = crc32c_sw(v, zeros, n - k < sizeof zeros ? n - k : sizeof zeros);
        basis[i] = v;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int i = 0; i < 8; i++)
                if (b & (1u << i))
                    v ^= basis[8 * k + i];
            t[k][b] = v;
        }
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p,
                                                             size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        crc = _mm_crc32_u8(crc, *p++);
        len--;
    }
    uint64_t c = crc;
    while (len >= 3 * CRC32C_LANE) {
        uint64_t c1 = 0, c2 = 0;
        const unsigned char *q = p;
        for (size_t i = 0; i < CRC32C_LANE; i += 8, q += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, q, 8);
            memcpy(&w1, q + CRC32C_LANE, 8);
            memcpy(&w2, q + 2 * CRC32C_LANE, 8);
            c = _mm_crc32_u64(c, w0);
            c1 = _mm_crc32_u64(c1, w1);
            c2 = _mm_crc32_u64(c2, w2);
        }
        c = crc32c_shift(crc32c_shift2, (uint32_t)c) ^ crc32c_shift(crc32c_shift1, (uint32_t)c1) ^
            (uint32_t)c2;
        p += 3 * CRC32C_LANE;
        len -= 3 * CRC32C_LANE;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len--)
        crc = _mm_crc32_u8(crc, *p++);
    return crc;
}

/* Folding with carry-less multiplies (AVX-512 VPCLMULQDQ), for inputs of 256 bytes or more.
 * A 128-bit lane loaded little-endian holds its 16 bytes as a polynomial A of degree < 128
 * in the CRC's reflected order; with a_l, a_h its low and high 64 bits, A = x^64 a_l + a_h.
 * Moving A forward by D bits (A x^D) only matters mod P, so it is replaced by
 * a_l * (x^(D+63) mod P) + a_h * (x^(D-1) mod P), each a 64 x 32-bit carry-less product
 * (the reflected product carries one extra factor x, hence D+63 and D-1, not D+64 and D).
 * Sixteen lanes (four registers, 256 bytes) run side by side, each folded by D = 2048 per
 * step; at the end each lane is folded onto the last one, and the crc32 instruction reduces
 * that 128-bit remainder (crc(0, R) = R x^32 mod P, and R is congruent to the input). The
 * starting CRC is XORed into the first 32 bits of the input, which has the same effect as
 * starting the register with it. The constants are computed at init, not transcribed. */
#define CRC32C_FOLD_MIN 256u
static uint64_t crc32c_fold_k[16][2]; /* lane j of 16 -> the last lane: D = 128 * (15 - j) */
static uint64_t crc32c_fold_step[2];  /* D = 2048 */

static uint64_t crc32c_fold_const(uint64_t n)
{
    /* x^n mod P as a 64-bit reflected operand: degree < 32 sits in the top half */
    return (uint64_t)crc32c_xnmodp(n) << 32;
}

__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2"))) static __m512i
crc32c_fold512(__m512i a, __m512i k)
{
    return _mm512_xor_si512(_mm512_clmulepi64_epi128(a, k, 0x00),
                            _mm512_clmulepi64_epi128(a, k, 0x11));
}

__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2"))) static uint32_t
crc32c_vpclmul(uint32_t crc, const unsigned char *p, size_t len)
{
    if (len < CRC32C_FOLD_MIN)
        return crc32c_hw(crc, p, len);
    __m512i z0 = _mm512_loadu_si512((const void *)p);
    __m512i z1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i z2 = _mm512_loadu_si512((const void *)(p + 128));
    __m512i z3 = _mm512_loadu_si512((const void *)(p + 192));
    z0 = _mm512_xor_si512(z0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
    p += 256;
    len -= 256;
    const __m512i step = _mm512_broadcast_i32x4(
        _mm_set_epi64x((long long)crc32c_fold_step[1], (long long)crc32c_fold_step[0]));
    while (len >= 256) {
        z0 = _mm512_xor_si512(crc32c_fold512(z0, step), _mm512_loadu_si512((const void *)p));
        z1 = _mm512_xor_si512(crc32c_fold512(z1, step),
                              _mm512_loadu_si512((const void *)(p + 64)));
        z2 = _mm512_xor_si512(crc32c_fold512(z2, step),
                              _mm512_loadu_si512((const void *)(p + 128)));
        z3 = _mm512_xor_si512(crc32c_fold512(z3, step),
                              _mm512_loadu_si512((const void *)(p + 192)));
        p += 256;
        len -= 256;
    }
    /* every lane onto lane 15 (whose own constants are zero: it is kept as it is) */
    const uint64_t *k = &crc32c_fold_k[0][0];
    __m512i acc = _mm512_maskz_mov_epi64(0xC0, z3);
    acc = _mm512_xor_si512(acc, crc32c_fold512(z0, _mm512_loadu_si512((const void *)k)));
    acc = _mm512_xor_si512(acc, crc32c_fold512(z1, _mm512_loadu_si512((const void *)(k + 8))));
    acc = _mm512_xor_si512(acc, crc32c_fold512(z2, _mm512_loadu_si512((const void *)(k + 16))));
    acc = _mm512_xor_si512(acc, crc32c_fold512(z3, _mm512_loadu_si512((const void *)(k + 24))));
    __m128i r = _mm_xor_si128(
        _mm_xor_si128(_mm512_extracti32x4_epi32(acc, 0), _mm512_extracti32x4_epi32(acc, 1)),
        _mm_xor_si128(_mm512_extracti32x4_epi32(acc, 2), _mm512_extracti32x4_epi32(acc, 3)));
    /* the remaining whole 16-byte blocks, one lane folded by D = 128 */
    const __m128i k128 = _mm_set_epi64x((long long)crc32c_fold_k[14][1],
                                        (long long)crc32c_fold_k[14][0]);
    while (len >= 16) {
        r = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(r, k128, 0x00),
                                        _mm_clmulepi64_si128(r, k128, 0x11)),
                          _mm_loadu_si128((const __m128i *)p));
        p += 16;
        len -= 16;
    }
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(r));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(r, 1));
    return crc32c_hw((uint32_t)c, p, len);
}
#endif

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc32c_table[t][i] =
                (crc32c_table[t - 1][i] >> 8) ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
    crc32c_shift_table(crc32c_shift1, CRC32C_LANE);
    crc32c_shift_table(crc32c_shift2, 2 * CRC32C_LANE);
    crc32c_impl = crc32c_sw;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        crc32c_impl = crc32c_hw;
        crc32c_path = STRATUS_CRC32C_SSE42;
    }
    for (int j = 0; j < 15; j++) {
        uint64_t d = 128u * (uint64_t)(15 - j);
        crc32c_fold_k[j][0] = crc32c_fold_const(d + 63);
        crc32c_fold_k[j][1] = crc32c_fold_const(d - 1);
    }
    crc32c_fold_step[0] = crc32c_fold_const(2048 + 63);
    crc32c_fold_step[1] = crc32c_fold_const(2048 - 1);
    if (crc32c_path == STRATUS_CRC32C_SSE42 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul")) {
        crc32c_impl = crc32c_vpclmul;
        crc32c_path = STRATUS_CRC32C_VPCLMUL;
    }
#endif
}

uint32_t stratus_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc32c_once, crc32c_init);
    return ~crc32c_impl(~crc, buf, len);
}

/* GF(2) polynomials mod the reflected CRC32C polynomial (zlib's crc32_combine method): a * b,
 * and x^(8n) from the table of x^(2^k). */
static uint32_t crc32c_multmodp(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ CRC32C_POLY : b >> 1;
    }
    return p;
}

static uint32_t crc32c_x2n_table[32];
static pthread_once_t crc32c_x2n_once = PTHREAD_ONCE_INIT;

static void crc32c_x2n_init(void)
{
    uint32_t p = 1u << 30; /* x^1 */
    crc32c_x2n_table[0] = p;
    for (int n = 1; n < 32; n++)
        crc32c_x2n_table[n] = p = crc32c_multmodp(p, p);
}

/* x^(n * 2^k0) mod P, reflected (bit 31 - d holds x^d): the product of x^(2^k) over the set
 * bits of n, k from k0. */
static uint32_t crc32c_x2nk(uint64_t n, unsigned k)
{
    uint32_t p = 1u << 31; /* x^0 */
    pthread_once(&crc32c_x2n_once, crc32c_x2n_init);
    while (n) {
        if (n & 1)
            p = crc32c_multmodp(crc32c_x2n_table[k & 31], p);
        n >>= 1;
        k++;
    }
    return p;
}

static uint32_t crc32c_xnmodp(uint64_t n)
{
    return crc32c_x2nk(n, 0);
}

uint32_t stratus_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    /* crc(a, B) = crc_a * x^(8 len_b) mod P  xor  crc(0, B) (the inversions cancel out) */
    uint32_t p = crc32c_x2nk(len_b, 3);
    return crc32c_multmodp(p, crc_a) ^ crc_b;
}

/* Software path, exported for the tests (to compare both implementations on one machine). */
uint32_t stratus_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc32c_once, crc32c_init);
    return ~crc32c_sw(~crc, buf, len);
}

int stratus_crc32c_path(void)
{
    pthread_once(&crc32c_once, crc32c_init);
    return crc32c_path;
}

uint32_t stratus_crc32c_by(int path, uint32_t crc, const void *buf, size_t len)
{
    int best = stratus_crc32c_path();
#if defined(__x86_64__)
    if (path == STRATUS_CRC32C_VPCLMUL && best >= STRATUS_CRC32C_VPCLMUL)
        return ~crc32c_vpclmul(~crc, buf, len);
    if (path == STRATUS_CRC32C_SSE42 && best >= STRATUS_CRC32C_SSE42)
        return ~crc32c_hw(~crc, buf, len);
#endif
    (void)best;
    (void)path;
    return ~crc32c_sw(~crc, buf, len);
}
