/*
 * fuzz_app.h — a whole nexadb-server application (configuration, keys,
 * dispatch table, metrics, the three engines) over the fuzz scratch
 * directory, in-process, for the service-level fuzz targets. No transport is
 * started here; targets start the one they need.
 *
 * The engines run with fsync off (NDB_KV_NONE, vector nosync): durability is
 * not what these targets test, and fsync would dominate each execution.
 */
#ifndef FUZZ_APP_H
#define FUZZ_APP_H

#include "app.h"

#define FZ_API_KEY "fuzz-key-0123456789abcdef"

/* The application, created on first call and kept for the process (engines
 * closed at exit). Aborts when setup fails (a harness failure). */
svc_app *fz_app(void);

#endif /* FUZZ_APP_H */
