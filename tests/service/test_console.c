/* Tests for service/console.c: which embedded file a request path gets, and which paths are
 * refused. Runs against the table this build embedded (empty when the console was not built). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "console.h"

Test(console, claims_only_its_prefix)
{
    cr_assert(svc_console_claims("/console"));
    cr_assert(svc_console_claims("/console/"));
    cr_assert(svc_console_claims("/console/assets/x.js"));
    cr_assert(!svc_console_claims("/consoles"));
    cr_assert(!svc_console_claims("/collections/console"));
    cr_assert(!svc_console_claims("/"));
}

Test(console, refuses_traversal_and_odd_bytes)
{
    const svc_console_asset *a;
    const char *bad[] = {"/console/..",          "/console/../api_key", "/console/assets/../../x",
                         "/console/.hidden",     "/console//x",         "/console/a%2e%2e",
                         "/console/a\\b",        "/console/a b",        "/console/x/./y",
                         "/console/\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(svc_console_lookup(bad[i], &a), SVC_CONSOLE_BAD_PATH, "%s", bad[i]);
        cr_assert_null(a);
    }
    char longp[400] = "/console/";
    memset(longp + 9, 'a', 300);
    longp[309] = '\0';
    cr_assert_eq(svc_console_lookup(longp, &a), SVC_CONSOLE_BAD_PATH);
}

Test(console, serves_files_and_falls_back_to_the_app)
{
    const svc_console_asset *a;
    if (svc_console_n_assets == 0) {
        cr_assert_eq(svc_console_lookup("/console/", &a), SVC_CONSOLE_NOT_BUILT);
        cr_assert(strlen(svc_console_missing) > 0);
        return;
    }
    cr_assert_eq(svc_console_lookup("/console", &a), SVC_CONSOLE_FOUND);
    cr_assert_str_eq(a->path, "index.html");
    cr_assert(!a->immutable);
    cr_assert_eq(svc_console_lookup("/console/", &a), SVC_CONSOLE_FOUND);
    cr_assert_str_eq(a->path, "index.html");
    /* client-side routes */
    cr_assert_eq(svc_console_lookup("/console/collections/users/indexes", &a), SVC_CONSOLE_FOUND);
    cr_assert_str_eq(a->path, "index.html");
    cr_assert_eq(svc_console_lookup("/console/server/", &a), SVC_CONSOLE_FOUND);
    cr_assert_str_eq(a->path, "index.html");
    /* files that are not there */
    cr_assert_eq(svc_console_lookup("/console/assets/missing", &a), SVC_CONSOLE_NOT_FOUND);
    cr_assert_eq(svc_console_lookup("/console/robots.txt", &a), SVC_CONSOLE_NOT_FOUND);
    /* every embedded file by its own path, with a type, and gzip smaller than the file */
    for (size_t i = 0; i < svc_console_n_assets; i++) {
        const svc_console_asset *x = &svc_console_assets[i];
        char url[300];
        snprintf(url, sizeof url, "/console/%s", x->path);
        cr_assert_eq(svc_console_lookup(url, &a), SVC_CONSOLE_FOUND, "%s", url);
        cr_assert_eq(a, x);
        cr_assert(x->content_type != NULL && x->content_type[0] != '\0');
        cr_assert(x->gz == NULL || x->gz_len < x->len);
        cr_assert_eq(x->immutable, strncmp(x->path, "assets/", 7) == 0);
    }
}

Test(console, headers_are_strict)
{
    const char *csp = NULL;
    for (const char *const *h = svc_console_headers; *h != NULL; h += 2)
        if (strcmp(h[0], "Content-Security-Policy") == 0)
            csp = h[1];
    cr_assert_not_null(csp);
    cr_assert_not_null(strstr(csp, "default-src 'self'"));
    cr_assert_not_null(strstr(csp, "frame-ancestors 'none'"));
    cr_assert_null(strstr(csp, "unsafe-inline"));
}
