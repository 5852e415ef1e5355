/*
 * console.h — the browser console's files (console/, built by Vite and embedded at build time
 * by console/scripts/embed.mjs into console_assets.c in the build directory), looked up for
 * the REST shim, which serves them at /console without a key: the files are public, the data
 * they show comes through the REST API with the user's key.
 *
 * Thread safety: constant data and pure functions.
 * Invariants: asset paths are relative ("index.html", "assets/index-1a2b3c.js"), made only of
 * A-Z a-z 0-9 . _ - /, never with an empty or dot-leading segment; every asset has a content
 * type; gz, when set, is the gzip of data.
 */
#ifndef SVC_CONSOLE_H
#define SVC_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct svc_console_asset {
    const char *path;         /* under /console/, without the leading slash */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* gzip-compressed data, or NULL when compression did not pay */
    size_t gz_len;
    bool immutable; /* a content-hashed name (assets/…): may be cached for a year */
} svc_console_asset;

/* The generated table (console_assets.c). Empty when the server was built without the console;
 * svc_console_missing then says why and how to build it. */
extern const svc_console_asset svc_console_assets[];
extern const size_t svc_console_n_assets;
extern const char svc_console_missing[];

typedef enum svc_console_result {
    SVC_CONSOLE_FOUND = 0,   /* *out is the asset to send */
    SVC_CONSOLE_NOT_FOUND,   /* a file path (assets/…, a name with an extension) with no asset */
    SVC_CONSOLE_BAD_PATH,    /* refused: too long, '..', '%', a byte outside the allowed set */
    SVC_CONSOLE_NOT_BUILT,   /* this server has no console (svc_console_missing) */
} svc_console_result;

/* The asset for url, the request's path as sent ("/console", "/console/", "/console/x/y").
 * Client-side routes (no file extension, outside assets/) fall back to index.html.
 * Borrowed: *out points into the constant table. */
svc_console_result svc_console_lookup(const char *url, const svc_console_asset **out);

/* Whether url is the console's: "/console" or under "/console/". */
bool svc_console_claims(const char *url);

/* The response headers every console answer carries, NULL-terminated name/value pairs:
 * a Content-Security-Policy allowing only this origin (no inline scripts or styles, no
 * framing), X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer. */
extern const char *const svc_console_headers[];

#endif /* SVC_CONSOLE_H */
