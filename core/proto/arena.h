/* arena.h - a bump allocator for the structures decoded from one request.
 *
 * A request's decoded arrays live in chunks owned by one struct stratus_arena; the whole lot is
 * released at once with arena_free_all() when the response has been encoded. Memory comes from
 * plain malloc and is bounded by a ceiling (max bytes) so a peer cannot grow it without limit:
 * arena_alloc() returns NULL past the ceiling or on malloc failure, and decoders turn that into
 * STRATUS_EPROTO / STRATUS_ENOMEM. Returned memory is zeroed and aligned to 16 bytes.
 * Not thread-safe: one arena belongs to one request on one thread.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PROTO_ARENA_H
#define STRATUS_PROTO_ARENA_H

#include <stddef.h>

#define ARENA_CHUNK_SIZE (16u * 1024u)
#define ARENA_DEFAULT_MAX (64u * 1024u * 1024u)

struct arena_chunk;

struct stratus_arena {
    struct arena_chunk *head; /* newest chunk first */
    size_t used;              /* bytes handed out plus chunk headers, checked against max */
    size_t max;               /* ceiling; 0 means ARENA_DEFAULT_MAX */
};

/* Prepares an empty arena with ceiling max bytes (0 = ARENA_DEFAULT_MAX). */
void arena_init(struct stratus_arena *a, size_t max);

/* n zeroed bytes that live until arena_free_all(); NULL when over the ceiling or out of memory.
 * arena_alloc(a, 0) returns a valid unique pointer. */
void *arena_alloc(struct stratus_arena *a, size_t n);

/* n * size bytes, with the multiplication checked for overflow. */
void *arena_calloc(struct stratus_arena *a, size_t n, size_t size);

/* Releases every chunk; the arena is empty and reusable afterwards. */
void arena_free_all(struct stratus_arena *a);

#endif
