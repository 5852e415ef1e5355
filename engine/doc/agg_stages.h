/*
 * agg_stages.h — the streaming stages that rewrite one document at a time,
 * for agg.c's pipeline: reshaping ($project $addFields/$set $unset
 * $replaceRoot/$replaceWith, agg_reshape.c), $unwind (agg_unwind.c) and
 * $lookup (agg_lookup.c).
 *
 * Each compiles from its stage's value and then turns an input document
 * into its output; none pulls from another stage (agg.c does), so calls run
 * one way: agg.c, then these, then expr.c, shape.c and codec.c. An output
 * is borrowed from the stage's own builders until its next call.
 */
#ifndef NDB_DOC_AGG_STAGES_H
#define NDB_DOC_AGG_STAGES_H

#include "doc_int.h"
#include "expr.h"

/* NDB_OK when k is a field name a stage may create: not empty, no leading
 * '$', no '.'; else NDB_EINVAL (with msg unless it is NULL). */
static inline ndb_status agg_need_name(const char *k, size_t kl, const char *stage, ndb_errmsg *msg)
{
    if (kl == 0 || k[0] == '$' || memchr(k, '.', kl))
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: field name '%.*s' may not be empty, start "
                              "with '$' or contain '.'", stage, (int)kl, k);
    return NDB_OK;
}

/* ---- $project, $addFields/$set, $unset, $replaceRoot/$replaceWith */

typedef enum reshape_kind { RS_PROJECT, RS_ADDFIELDS, RS_UNSET, RS_REPLACEROOT, RS_REPLACEWITH } reshape_kind;

typedef struct reshape {
    reshape_kind kind;
    prj_spec *prj;       /* the 0/1 part of $project, and $unset */
    bool prj_empty;      /* $project with only computed fields (and maybe _id) */
    bool id_excluded;
    expr *cexpr;         /* computed fields */
    const char **cname;
    size_t *cnlen;
    dpath *cpath;        /* $addFields: dotted names (n > 1) are set along the path */
    int ncomp;
    expr root;           /* $replaceRoot's newRoot, $replaceWith's expression */
    ndb_doc_builder *out, *tmp;
    dbuf spec;           /* the synthetic projection document prj borrows */
} reshape;

/* Compiles v, the stage's value (borrowed until reshape_free). */
ndb_status reshape_compile(reshape *r, reshape_kind kind, const ndb_doc_val *v, ndb_errmsg *msg);
/* The stage's output for root: 1 with the document in *d and *dl, or a negative status. */
int reshape_apply(reshape *r, const ndb_doc_val *root, const uint8_t **d, size_t *dl, ndb_errmsg *msg);
void reshape_free(reshape *r);

/* ---- $unwind */

typedef struct unwind {
    dpath path;
    bool preserve;       /* preserveNullAndEmptyArrays */
    const char *idxname; /* includeArrayIndex (NULL: none) */
    size_t idxlen;
    const uint8_t *cur;  /* the input document being unwound (borrowed) */
    size_t curlen;
    uint32_t ui;         /* the next element of its array */
    bool have_cur;
    ndb_doc_builder *out, *tmp;
} unwind;

ndb_status unwind_compile(unwind *u, const ndb_doc_val *v, ndb_errmsg *msg);
/* Takes the next input document (borrowed until unwind_next answers 0). */
void unwind_start(unwind *u, const uint8_t *d, size_t dl);
/* 1 with the next output for the held document, 0 when it has no more (the
 * caller then starts the next), or a negative status. */
int unwind_next(unwind *u, const uint8_t **d, size_t *dl, ndb_errmsg *msg);
void unwind_free(unwind *u);

/* ---- $lookup: an equality join on another collection */

typedef struct lookup {
    char from[NDB_DOC_MAX_COLL_NAME + 1];
    const char *lf, *ff, *as; /* localField, foreignField, as (borrowed) */
    size_t lfl, ffl, asl;
    ndb_doc_builder *filter, *arr, *out;
} lookup;

ndb_status lookup_compile(lookup *l, const ndb_doc_val *v, ndb_errmsg *msg);
/* root with the matches in db's collection `from` as the array `as`: 1 with
 * *d and *dl, or a negative status. intr bounds the inner find. */
int lookup_apply(lookup *l, ndb_doc_db *db, const ndb_interrupt *intr, const ndb_doc_val *root,
                 const uint8_t **d, size_t *dl, ndb_errmsg *msg);
void lookup_free(lookup *l);

#endif
