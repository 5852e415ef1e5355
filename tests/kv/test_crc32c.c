#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

Test(crc32c, known_vectors)
{
    cr_assert_eq(crc32c("123456789", 9), 0xe3069283u);
    char z[32] = {0};
    cr_assert_eq(crc32c(z, 32), 0x8a9136aau);
    char ff[32];
    memset(ff, 0xff, 32);
    cr_assert_eq(crc32c(ff, 32), 0x62a8ab43u);
    unsigned char inc[32];
    for (int i = 0; i < 32; i++) inc[i] = (unsigned char)i;
    cr_assert_eq(crc32c(inc, 32), 0x46dd794eu);
    cr_assert_eq(crc32c_extend_sw(0, "123456789", 9), 0xe3069283u);
}

Test(crc32c, extend_equals_whole_and_hw_equals_sw)
{
    unsigned char buf[1000];
    srand(7);
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)rand();
    for (size_t n = 0; n <= 1000; n += 37)
        for (size_t cut = 0; cut <= n; cut += 13) {
            uint32_t whole = crc32c(buf, n);
            cr_assert_eq(crc32c_extend(crc32c(buf, cut), buf + cut, n - cut), whole);
            cr_assert_eq(crc32c_extend_sw(0, buf, n), whole);
        }
    cr_log_info("hardware crc32c: %d", crc32c_hw_available());
}

Test(crc32c, mask_roundtrip)
{
    uint32_t c = crc32c("foo", 3);
    cr_assert_neq(crc32c_mask(c), c);
    cr_assert_eq(crc32c_unmask(crc32c_mask(c)), c);
}
