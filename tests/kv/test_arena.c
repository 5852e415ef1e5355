#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"

Test(arena, aligned_distinct_and_counted)
{
    kv_arena *a = kv_arena_new(4096);
    cr_assert_not_null(a);
    size_t before = kv_arena_usage(a);
    char *prev[1000];
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)(i % 97) + 1;
        if (i % 100 == 0) n = 10000; /* bigger than a block: its own allocation */
        char *p = kv_arena_alloc(a, n);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 8, 0);
        memset(p, i & 0xff, n);
        prev[i] = p;
    }
    for (int i = 0; i < 1000; i++) cr_assert_eq((unsigned char)prev[i][0], (unsigned)(i & 0xff), "overlap at %d", i);
    cr_assert_gt(kv_arena_usage(a), before + 10 * 10000);
    kv_arena_free(a);
}
