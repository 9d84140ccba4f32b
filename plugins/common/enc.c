/* enc.c - hex, base64 and URI percent-encoding (see enc.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "enc.h"

#include <string.h>

static const char enc_hexdig[] = "0123456789abcdef";
static const char enc_hexup[] = "0123456789ABCDEF";
static const char enc_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void stratus_enc_hex(const uint8_t *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = enc_hexdig[in[i] >> 4];
        out[2 * i + 1] = enc_hexdig[in[i] & 15];
    }
    out[2 * len] = 0;
}

size_t stratus_enc_base64(const void *in, size_t len, char *out, size_t cap)
{
    const uint8_t *p = in;
    size_t need = 4 * ((len + 2) / 3) + 1, o = 0;
    if (cap < need)
        return 0;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = enc_b64[v >> 18];
        out[o++] = enc_b64[(v >> 12) & 63];
        out[o++] = enc_b64[(v >> 6) & 63];
        out[o++] = enc_b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = enc_b64[v >> 18];
        out[o++] = enc_b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? enc_b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
    return o;
}

static int enc_b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long stratus_enc_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    while (len && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = enc_b64val(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)o;
}

void stratus_enc_uri(struct stratus_sbuf *sb, const char *in, size_t len, int keep_slash)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && keep_slash)) {
            stratus_sbuf_putc(sb, (char)c);
        } else {
            char e[3] = {'%', enc_hexup[c >> 4], enc_hexup[c & 15]};
            stratus_sbuf_append(sb, e, 3);
        }
    }
}

static int enc_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void stratus_enc_uri_decode(struct stratus_sbuf *sb, const char *in, size_t len, int plus_is_space)
{
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%' && i + 2 < len && enc_hexval(in[i + 1]) >= 0 &&
            enc_hexval(in[i + 2]) >= 0) {
            stratus_sbuf_putc(sb, (char)(enc_hexval(in[i + 1]) << 4 | enc_hexval(in[i + 2])));
            i += 2;
        } else if (in[i] == '+' && plus_is_space) {
            stratus_sbuf_putc(sb, ' ');
        } else {
            stratus_sbuf_putc(sb, in[i]);
        }
    }
}
