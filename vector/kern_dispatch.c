/*
 * kern_dispatch.c — picks the kernel variant once, at first use.
 *
 * Order of preference: NDB_VEC_KERNEL (environment) if it names a runnable
 * variant, else the widest the CPU runs natively (avx512 > avx2 > neon),
 * else scalar. On x86 the neon table is SIMDe's translation to SSE2, so it is
 * runnable (for tests) but never chosen by default; on Arm the x86 tables are
 * SIMDe translations to NEON, likewise.
 */
#include "kern.h"

#if defined(__x86_64__) || defined(__i386__)
#  include <cpuid.h>
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const kern_ops *const all_ops[] = {
    &kern_scalar_ops,
    &kern_avx2_ops,
    &kern_avx512_ops,
    &kern_neon_ops,
    NULL,
};

static _Atomic(const kern_ops *) chosen;

const kern_ops *const *kern_all(void) { return all_ops; }

#if defined(__x86_64__) || defined(__i386__)
/* F16C (half-float conversion, used by dot_f16), which __builtin_cpu_supports
 * does not name on every compiler: CPUID leaf 1, ECX. */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

/* Native support; translated variants are runnable but not "native". */
static int kern_native(const kern_ops *k)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (k == &kern_avx512_ops)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") && has_f16c();
    if (k == &kern_avx2_ops)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    return 0;
#elif defined(__aarch64__) || defined(__ARM_NEON)
    return k == &kern_neon_ops;
#else
    (void)k;
    return 0;
#endif
}

/* Runnable: native, the scalar table, or a variant compiled without special
 * target flags (SIMDe's portable translation). */
static int kern_runnable(const kern_ops *k)
{
    if (k == &kern_scalar_ops || kern_native(k))
        return 1;
#if defined(__x86_64__) || defined(__i386__)
    return k == &kern_neon_ops;
#else
    return k == &kern_avx2_ops || k == &kern_avx512_ops;
#endif
}

const kern_ops *kern_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; all_ops[i]; i++)
        if (strcmp(all_ops[i]->name, name) == 0)
            return kern_runnable(all_ops[i]) ? all_ops[i] : NULL;
    return NULL;
}

static const kern_ops *kern_pick(void)
{
    const kern_ops *k = kern_lookup(getenv("NDB_VEC_KERNEL"));
    if (k)
        return k;
    if (kern_native(&kern_avx512_ops))
        return &kern_avx512_ops;
    if (kern_native(&kern_avx2_ops))
        return &kern_avx2_ops;
    if (kern_native(&kern_neon_ops))
        return &kern_neon_ops;
    return &kern_scalar_ops;
}

const kern_ops *kern_get(void)
{
    const kern_ops *k = atomic_load_explicit(&chosen, memory_order_acquire);
    if (!k) {
        k = kern_pick();
        atomic_store_explicit(&chosen, k, memory_order_release);
    }
    return k;
}

/* Used by ndb_vec_kernel_force(). */
int kern_force(const char *name)
{
    const kern_ops *k = kern_lookup(name);
    if (!k)
        return -1;
    atomic_store_explicit(&chosen, k, memory_order_release);
    return 0;
}
