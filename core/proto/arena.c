/* arena.c - the per-request bump allocator (see arena.h). Chunks of ARENA_CHUNK_SIZE are chained
 * newest first; an allocation larger than a quarter chunk gets a chunk of its own so the tail
 * of the current chunk is not wasted.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, off;
    _Alignas(16) unsigned char data[];
};

#define ARENA_ALIGN 16u

void arena_init(struct stratus_arena *a, size_t max)
{
    a->head = NULL;
    a->used = 0;
    a->max = max ? max : ARENA_DEFAULT_MAX;
}

static struct arena_chunk *arena_new_chunk(struct stratus_arena *a, size_t cap)
{
    size_t total = sizeof(struct arena_chunk) + cap;
    size_t max = a->max ? a->max : ARENA_DEFAULT_MAX;
    if (cap > max || total > max - a->used)
        return NULL;
    struct arena_chunk *c = malloc(total);
    if (!c)
        return NULL;
    c->cap = cap;
    c->off = 0;
    a->used += total;
    return c;
}

void *arena_alloc(struct stratus_arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < n)
        return NULL;
    if (need == 0)
        need = ARENA_ALIGN;
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->off < need) {
        if (need > ARENA_CHUNK_SIZE / 4) {
            /* big block: own chunk, linked behind the current one so its tail stays usable */
            struct arena_chunk *big = arena_new_chunk(a, need);
            if (!big)
                return NULL;
            big->off = need;
            if (c) {
                big->next = c->next;
                c->next = big;
            } else {
                big->next = NULL;
                a->head = big;
            }
            memset(big->data, 0, need);
            return big->data;
        }
        c = arena_new_chunk(a, ARENA_CHUNK_SIZE);
        if (!c)
            return NULL;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->off;
    c->off += need;
    memset(p, 0, need);
    return p;
}

void *arena_calloc(struct stratus_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return arena_alloc(a, n * size);
}

void arena_free_all(struct stratus_arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}
