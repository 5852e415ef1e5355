#include "json_text.h"

#include <stdio.h>
#include <stdlib.h>

int ndb_json_shortest(char *out, size_t cap, double d, bool is_float)
{
    /* %g drops trailing zeros, so a value with a shorter form comes out short by itself; start
     * at the precision every value of that many digits survives (FLT_DIG, DBL_DIG). */
    int n = 0;
    for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
        n = snprintf(out, cap, "%.*g", prec, d);
        if (is_float ? strtof(out, NULL) == (float)d : strtod(out, NULL) == d)
            break;
    }
    return n;
}
