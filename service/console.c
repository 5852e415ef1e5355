/* console.c — finds the console's embedded files for a request path (see console.h). */
#include "console.h"

#include <string.h>

#define PREFIX "/console"
#define PREFIX_LEN (sizeof PREFIX - 1)
#define MAX_PATH 256

const char *const svc_console_headers[] = {
    "Content-Security-Policy",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options",
    "nosniff",
    "X-Frame-Options",
    "DENY",
    "Referrer-Policy",
    "no-referrer",
    NULL,
};

bool svc_console_claims(const char *url)
{
    return strncmp(url, PREFIX, PREFIX_LEN) == 0 && (url[PREFIX_LEN] == '\0' || url[PREFIX_LEN] == '/');
}

static const svc_console_asset *find(const char *path, size_t len)
{
    for (size_t i = 0; i < svc_console_n_assets; i++) {
        const svc_console_asset *a = &svc_console_assets[i];
        if (strlen(a->path) == len && memcmp(a->path, path, len) == 0)
            return a;
    }
    return NULL;
}

/* Only A-Z a-z 0-9 . _ - and '/' between non-empty segments that do not start with '.':
 * no traversal, no escapes, nothing a file name of ours lacks. */
static bool path_ok(const char *p, size_t n)
{
    if (n > MAX_PATH)
        return false;
    bool seg_start = true;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '/') {
            if (seg_start)
                return false; /* "//" */
            seg_start = true;
            continue;
        }
        if (seg_start && c == '.')
            return false; /* ".", "..", ".hidden" */
        seg_start = false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

svc_console_result svc_console_lookup(const char *url, const svc_console_asset **out)
{
    *out = NULL;
    if (!svc_console_claims(url))
        return SVC_CONSOLE_NOT_FOUND;
    const char *p = url + PREFIX_LEN;
    if (*p == '/')
        p++; /* the one slash after /console */
    size_t n = strlen(p);
    if (n > 0 && p[n - 1] == '/')
        n--; /* "/console/server/" is "/console/server" */
    if (!path_ok(p, n))
        return SVC_CONSOLE_BAD_PATH;
    if (svc_console_n_assets == 0)
        return SVC_CONSOLE_NOT_BUILT;
    if (n > 0 && (*out = find(p, n)) != NULL)
        return SVC_CONSOLE_FOUND;
    /* A file that is not there is a 404; anything else is a page of the app, which routes it. */
    const char *last = p;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '/')
            last = p + i + 1;
    bool file_like = (n >= 7 && memcmp(p, "assets/", 7) == 0) || memchr(last, '.', (size_t)(p + n - last)) != NULL;
    if (file_like)
        return SVC_CONSOLE_NOT_FOUND;
    *out = find("index.html", 10);
    return *out != NULL ? SVC_CONSOLE_FOUND : SVC_CONSOLE_NOT_FOUND;
}
