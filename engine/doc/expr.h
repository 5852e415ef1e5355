/*
 * expr.h — aggregation expressions (internal; agg.c's stages use them).
 *
 * "$path" (arrays along the path give arrays of values), "$$ROOT",
 * literals, objects and arrays of expressions, and the operators $literal
 * $add $subtract $multiply $divide $mod $abs $floor $ceil $concat $toUpper
 * $toLower $ifNull $size $arrayElemAt $concatArrays $in $cond $switch $and
 * $or $not $type $eq $ne $gt $gte $lt $lte, and the date operators $year
 * $month $dayOfMonth $hour $minute $second $millisecond $dayOfWeek
 * $dayOfYear $dateToString (UTC only).
 *
 * A missing value (a path that is not there) is not null: it compares below
 * null ({"$eq": ["$nope", null]} is false, as in MongoDB's expressions), and
 * arithmetic, string and date operators answer null for either.
 *
 * Thread safety: an expr is used by one thread (it owns scratch storage).
 */
#ifndef NDB_DOC_EXPR_H
#define NDB_DOC_EXPR_H

#include "doc_int.h"

typedef enum ekind {
    E_LIT, E_PATH, E_ROOT, E_OBJ, E_ARR,
    E_ADD, E_SUB, E_MUL, E_DIV, E_MOD, E_CONCAT, E_UPPER, E_LOWER, E_IFNULL, E_SIZE, E_COND,
    E_EQ, E_NE, E_GT, E_GTE, E_LT, E_LTE,
    E_ABS, E_FLOOR, E_CEIL, E_ARRAYELEMAT, E_CONCATARRAYS, E_IN, E_SWITCH, E_AND, E_OR, E_NOT, E_TYPE,
    E_YEAR, E_MONTH, E_DAYOFMONTH, E_HOUR, E_MINUTE, E_SECOND, E_MILLISECOND, E_DAYOFWEEK, E_DAYOFYEAR,
    E_DATETOSTRING,
} ekind;

typedef struct expr {
    ekind kind;
    ndb_doc_val lit;      /* E_LIT */
    dpath path;           /* E_PATH */
    bool simple;          /* E_PATH: try the array-free fast path first */
    struct expr *args;    /* operands / E_OBJ field values / E_ARR elements */
    const char **names;   /* E_OBJ keys */
    size_t *nlens;
    int nargs;
    bool has_default;     /* E_SWITCH: the last argument is the default */
    ndb_doc_builder *scratch; /* result storage for computed values */
} expr;

/* Compiles v into e (caller clears it with expr_clear, also on failure).
 * where names the stage in messages; depth bounds nesting. */
ndb_status expr_compile(const ndb_doc_val *v, const char *where, expr *e, int depth, ndb_errmsg *msg);
/* Evaluates e against root: 1 with *out set (borrowed until e is evaluated
 * again), 0 when the value is missing, or a negative ndb_status. */
int expr_eval(expr *e, const ndb_doc_val *root, ndb_doc_val *out, ndb_errmsg *msg);
void expr_clear(expr *e);
/* MongoDB's truthiness of an expression's value (have: 0 when missing):
 * missing, null, false and zero are false. */
bool expr_truthy(const ndb_doc_val *v, int have);

#endif /* NDB_DOC_EXPR_H */
