/*
 * json_text.h — the two pieces of JSON text every writer shares: how a byte of
 * a string is escaped, and the shortest decimal that reads back as a double.
 *
 * The document engine's JSON writer (engine/doc/json.c), the REST shim's
 * protobuf-to-JSON writer (service/json_pb.c) and the log (service/log.c) all
 * use these, so a string or a number prints the same wherever it goes out.
 * Pure functions; thread-safe.
 */
#ifndef NDB_JSON_TEXT_H
#define NDB_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* The escape for byte c inside a JSON string: writes it to out and returns its
 * length (2 for \" \\ \b \f \n \r \t, 6 for other control bytes as \u00XX), or
 * returns 0 when c stands for itself (every other byte, UTF-8 included). */
static inline size_t ndb_json_escape(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    if (c >= 0x20 && c != '"' && c != '\\')
        return 0;
    out[0] = '\\';
    switch (c) {
    case '"': out[1] = '"'; return 2;
    case '\\': out[1] = '\\'; return 2;
    case '\b': out[1] = 'b'; return 2;
    case '\f': out[1] = 'f'; return 2;
    case '\n': out[1] = 'n'; return 2;
    case '\r': out[1] = 'r'; return 2;
    case '\t': out[1] = 't'; return 2;
    default:
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
}

/* The shortest %g text of a finite d that reads back as the same value (as a
 * float when is_float: from 6 digits, else from 15), NUL-terminated in out
 * (cap >= 32). Returns its length. */
int ndb_json_shortest(char *out, size_t cap, double d, bool is_float);

#endif /* NDB_JSON_TEXT_H */
