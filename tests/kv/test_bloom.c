#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bloom.h"

Test(bloom, no_false_negatives_and_low_false_positive_rate)
{
    enum { N = 20000 };
    uint64_t *h = malloc(N * sizeof *h);
    char k[32];
    for (int i = 0; i < N; i++) {
        int n = sprintf(k, "key-%d", i);
        h[i] = kv_bloom_hash(k, (size_t)n);
    }
    size_t sz = kv_bloom_size(N, 10);
    char *f = malloc(sz);
    kv_bloom_build(h, N, 10, f);
    for (int i = 0; i < N; i++) cr_assert(kv_bloom_may_contain(f, sz, h[i]), "false negative %d", i);
    int fp = 0;
    for (int i = 0; i < 100000; i++) {
        int n = sprintf(k, "other-%d", i);
        fp += kv_bloom_may_contain(f, sz, kv_bloom_hash(k, (size_t)n));
    }
    double rate = fp / 100000.0;
    cr_log_info("bloom fp rate at 10 bits/key: %.4f", rate);
    cr_assert_lt(rate, 0.02, "false positive rate %.4f", rate);
    cr_assert(kv_bloom_may_contain(f, 1, 42), "malformed filter must answer maybe");
    free(f);
    free(h);
}
