/* stratus_plugin.h - the plugin ABI of Stratus: descriptor, host table, config map.
 *
 * A plugin is a shared object that exports one function, stratus_plugin_entry(), returning a
 * pointer to a const struct stratus_plugin_desc (use STRATUS_PLUGIN_DECLARE). The core loads it
 * with dlopen(RTLD_NOW | RTLD_LOCAL), checks the ABI version, the struct sizes, the kind, the
 * required ops and the config keys, and refuses it with a message naming the file otherwise.
 *
 * Ownership rules (they hold for every call of every kind):
 *  1. Everything the host passes is borrowed. `host` and `conf` stay valid until close();
 *     keys, buffers and iovecs only during the call: copy what you keep.
 *  2. The caller allocates outputs (get() writes into the caller's buffer). Variable-size
 *     results a plugin must return are allocated with host->alloc and freed by the host.
 *  3. A parameter marked TAKES is owned by the callee even when the call fails.
 *  4. After a failed open(), *inst is NULL; close() accepts a half-built instance.
 *  5. The host never writes to plugin memory and never unloads a plugin while instances live.
 *  6. Plugins keep no mutable globals: several instances of one plugin may coexist.
 *
 * Compatibility: structs that cross the boundary carry their size and grow only at the end.
 * A plugin built against ABI 1.x loads in any core of ABI 1.y with y >= x. A host slot added
 * after 1.0 is checked with STRATUS_HOST_HAS() before use.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PLUGIN_H
#define STRATUS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "stratus_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STRATUS_ABI_MAJOR 1
#define STRATUS_ABI_MINOR 2

/* Facts of the build that change the binary layout; the loader strcmp()s them. */
#if defined(__LP64__) || defined(_LP64)
#define STRATUS_BUILD_SIG_PTR "lp64"
#else
#define STRATUS_BUILD_SIG_PTR "ilp32"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define STRATUS_BUILD_SIG_END "be"
#else
#define STRATUS_BUILD_SIG_END "le"
#endif
#define STRATUS_BUILD_SIG STRATUS_BUILD_SIG_PTR "," STRATUS_BUILD_SIG_END

#if defined(__GNUC__)
#define STRATUS_PLUGIN_EXPORT __attribute__((visibility("default")))
#define STRATUS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define STRATUS_PLUGIN_EXPORT
#define STRATUS_PRINTF(a, b)
#endif

#define STRATUS_KiB (1024ULL)
#define STRATUS_MiB (1024ULL * 1024)
#define STRATUS_GiB (1024ULL * 1024 * 1024)

enum stratus_plugin_kind {
    STRATUS_PLUGIN_STORAGE = 1, /* ops: struct stratus_storage_ops (stratus_storage.h) */
    STRATUS_PLUGIN_CACHE = 2,   /* ops: struct stratus_cache_ops (stratus_cache.h) */
    STRATUS_PLUGIN_POLICY = 3,  /* ops: reserved for autoscaling policies */
};

enum stratus_log_level {
    STRATUS_LOG_ERROR = 0,
    STRATUS_LOG_WARN = 1,
    STRATUS_LOG_INFO = 2,
    STRATUS_LOG_DEBUG = 3,
    STRATUS_LOG_TRACE = 4,
};

/* ---- Config map: the plugin declares its keys, the core parses and checks them ---------- */

enum stratus_param_type {
    STRATUS_PARAM_T_STR = 1,  /* char * (host-owned, NUL-terminated, valid until close) */
    STRATUS_PARAM_T_INT = 2,  /* int64_t, bounds [min, max] */
    STRATUS_PARAM_T_BOOL = 3, /* int: true/false, yes/no, on/off, 1/0 */
    STRATUS_PARAM_T_SIZE = 4, /* uint64_t bytes: "64MiB", "1GB", "4096"; bounds [min, max] */
    STRATUS_PARAM_T_MS = 5,   /* int64_t milliseconds: "250ms", "5s", "2m", "1h"; bounds */
};

enum stratus_param_flags {
    STRATUS_P_REQUIRED = 1 << 0, /* the key must be present */
    STRATUS_P_SECRET = 1 << 1,   /* never logged or printed; shown as "****" */
};

/* One config key. The host zero-allocates a struct of desc->conf_size bytes, writes each value
 * at `offset` and passes the struct to open(). Values of `${env:NAME}` are read from the
 * environment. A {0}-terminated array of these is the plugin's config map. */
struct stratus_param {
    const char *name;
    int type;            /* enum stratus_param_type */
    const char *def;     /* default as text, NULL for none (STR stays NULL, numbers 0) */
    int flags;           /* enum stratus_param_flags */
    size_t offset;       /* offsetof(conf struct, field) */
    int64_t min, max;    /* inclusive bounds for INT, SIZE and MS; both 0 = unbounded */
    const char *help;    /* one line for --describe-plugin */
};

#define STRATUS_PARAM_STR(n, d, fl, T, f, h) {n, STRATUS_PARAM_T_STR, d, fl, offsetof(T, f), 0, 0, h}
#define STRATUS_PARAM_BOOL(n, d, fl, T, f, h) \
    {n, STRATUS_PARAM_T_BOOL, d, fl, offsetof(T, f), 0, 0, h}
#define STRATUS_PARAM_INT(n, d, fl, T, f, lo, hi, h) \
    {n, STRATUS_PARAM_T_INT, d, fl, offsetof(T, f), lo, hi, h}
#define STRATUS_PARAM_SIZE(n, d, fl, T, f, lo, hi, h) \
    {n, STRATUS_PARAM_T_SIZE, d, fl, offsetof(T, f), lo, hi, h}
#define STRATUS_PARAM_MS(n, d, fl, T, f, lo, hi, h) \
    {n, STRATUS_PARAM_T_MS, d, fl, offsetof(T, f), lo, hi, h}
#define STRATUS_PARAM_END {0, 0, 0, 0, 0, 0, 0, 0}

/* ---- Host table: what the core offers a plugin ------------------------------------------ */

struct stratus_metric; /* opaque, owned by the host */

enum stratus_metric_type {
    STRATUS_METRIC_COUNTER = 1,
    STRATUS_METRIC_GAUGE = 2,
};

/* Passed to open() and valid until close(). Every slot may be called from any thread. */
struct stratus_host {
    uint32_t host_size; /* sizeof(struct stratus_host) as the core built it */
    uint32_t abi_minor; /* the core's STRATUS_ABI_MINOR */
    void *hctx;         /* opaque; pass it back on each call */
    /* Logs one line tagged with the plugin instance. Never pass secrets. */
    void (*log)(void *hctx, int level, const char *fmt, ...) STRATUS_PRINTF(3, 4);
    /* Accounted allocation; NULL on failure. Memory the host frees must come from here. */
    void *(*alloc)(void *hctx, size_t n);
    void (*free)(void *hctx, void *p);
    /* Wall clock in milliseconds since the epoch (injectable in tests: sign with this). */
    int64_t (*now_ms)(void *hctx);
    /* Looks up any key of the broker's config ("broker.data_dir"); NULL when absent.
     * The string is owned by the host and valid until close(). */
    const char *(*config_get)(void *hctx, const char *section_dot_key);
    /* Registers (or finds) a metric named stratus_<plugin>_<name>; the handle lives as long
     * as the host. metric_add() adds to a counter or sets a gauge. */
    struct stratus_metric *(*metric)(void *hctx, int type, const char *name, const char *help);
    void (*metric_add)(struct stratus_metric *m, int64_t v);
    /* ---- ABI 1.1 and later: append below, never reorder ---- */
};

#define STRATUS_HOST_HAS(h, slot) \
    ((h)->host_size >= offsetof(struct stratus_host, slot) + sizeof((h)->slot) && (h)->slot)

/* ---- Descriptor -------------------------------------------------------------------------- */

struct stratus_plugin_desc {
    uint32_t desc_size;               /* sizeof(struct stratus_plugin_desc) */
    uint16_t abi_major;               /* STRATUS_ABI_MAJOR: must equal the core's */
    uint16_t abi_minor;               /* STRATUS_ABI_MINOR: must be <= the core's */
    const char *build_sig;            /* STRATUS_BUILD_SIG */
    int kind;                         /* enum stratus_plugin_kind */
    const char *name;                 /* "local", "s3", "memory": [a-z0-9_-]+ */
    const char *version;              /* the plugin's own version, free text */
    const char *description;          /* one line */
    const struct stratus_param *params; /* {0}-terminated config map, or NULL */
    size_t conf_size;                 /* size of the struct the params fill in */
    const void *ops;                  /* the kind's ops table; its first field is its size */
};

#define STRATUS_PLUGIN_ENTRY_SYMBOL "stratus_plugin_entry"
typedef const struct stratus_plugin_desc *stratus_plugin_entry_fn(void);

/* In exactly one .c file of a plugin: STRATUS_PLUGIN_DECLARE(my_desc); */
#define STRATUS_PLUGIN_DECLARE(d)                                                  \
    STRATUS_PLUGIN_EXPORT const struct stratus_plugin_desc *stratus_plugin_entry(void); \
    const struct stratus_plugin_desc *stratus_plugin_entry(void)                   \
    {                                                                              \
        return &(d);                                                               \
    }

#ifdef __cplusplus
}
#endif
#endif
