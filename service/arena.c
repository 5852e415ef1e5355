#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct svc_arena_chunk {
    svc_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    _Alignas(16) unsigned char data[];
};

#define FIRST_CHUNK 4096

static void *pb_alloc(void *data, size_t size)
{
    return svc_arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void svc_arena_init(svc_arena *a, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->limit = limit;
    a->pb = (ProtobufCAllocator){.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
}

void *svc_arena_alloc(svc_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0)
        size = 16;
    if (a->head == NULL || a->head->size - a->used < size) {
        size_t want = a->head == NULL ? FIRST_CHUNK : a->head->size * 2;
        if (want < size)
            want = size;
        if (want > SIZE_MAX / 2 || a->total + want > a->limit)
            return NULL;
        svc_arena_chunk *c = malloc(sizeof *c + want);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        c->size = want;
        a->head = c;
        a->used = 0;
        a->total += want;
    }
    void *p = a->head->data + a->used;
    a->used += size;
    return p;
}

char *svc_arena_strndup(svc_arena *a, const char *s, size_t n)
{
    char *p = svc_arena_alloc(a, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void svc_arena_reset(svc_arena *a)
{
    if (a->head == NULL)
        return;
    /* keep the oldest chunk (the smallest), free the rest */
    svc_arena_chunk *c = a->head;
    while (c->next != NULL) {
        svc_arena_chunk *next = c->next;
        a->total -= c->size;
        free(c);
        c = next;
    }
    a->head = c;
    a->used = 0;
}

void svc_arena_release(svc_arena *a)
{
    svc_arena_chunk *c = a->head;
    while (c != NULL) {
        svc_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
    a->total = 0;
}
