/*
 * arena.h — a bump allocator for one request's memory.
 *
 * A call's request message, its response and everything a handler builds for
 * it come from one arena, released at once when the call ends. Individual
 * frees are no-ops. Thread safety: none; an arena belongs to one call.
 */
#ifndef SVC_ARENA_H
#define SVC_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct svc_arena_chunk svc_arena_chunk;

typedef struct svc_arena {
    svc_arena_chunk *head;
    size_t used;      /* bytes used in head */
    size_t total;     /* bytes held in all chunks */
    size_t limit;     /* allocations fail (NULL) beyond this many bytes */
    ProtobufCAllocator pb; /* protobuf-c's view of this arena */
} svc_arena;

void svc_arena_init(svc_arena *a, size_t limit);

/* size bytes aligned to 16, or NULL when out of memory or over the limit.
 * Owned by the arena: valid until svc_arena_reset or svc_arena_release. */
void *svc_arena_alloc(svc_arena *a, size_t size);

/* A NUL-terminated copy of n bytes of s, owned by the arena. */
char *svc_arena_strndup(svc_arena *a, const char *s, size_t n);

/* Frees everything but the first chunk, for reuse. */
void svc_arena_reset(svc_arena *a);

/* Frees everything. */
void svc_arena_release(svc_arena *a);

#endif /* SVC_ARENA_H */
