/* json_read.h: a small strict JSON reader (RFC 8259) for results files: the objects fedvim
 * prints with --json, metrics.jsonl lines, experiment JSON. A parsed value is a tree owned by
 * its root. Strict: trailing commas, comments, NaN, leading zeros, control characters in strings
 * and bytes after the value are errors with the byte offset; nesting is limited to 64 levels.
 * Not here: writing JSON (json.h), streaming, a DOM that can be edited.
 */
#ifndef FV_JSON_READ_H
#define FV_JSON_READ_H
#include <stddef.h>

#include "fv_common.h"

typedef enum { FV_JR_NULL, FV_JR_BOOL, FV_JR_NUM, FV_JR_STR, FV_JR_ARR, FV_JR_OBJ } fv_jr_type;

typedef struct fv_jr fv_jr;
struct fv_jr {
    fv_jr_type type;
    double num;      /* NUM; BOOL: 0 or 1 */
    char *str;       /* STR: UTF-8, NUL-terminated (\u0000 is refused) */
    int n;           /* ARR, OBJ: number of items */
    fv_jr *items;    /* ARR, OBJ: n values */
    char **keys;     /* OBJ: n keys (duplicates kept; fv_jr_get returns the first) */
};

/* Parse text[0..len). Returns the root (caller owns: fv_jr_free) or NULL with e naming the byte
 * offset and the problem. */
FV_MUST_USE fv_jr *fv_jr_parse(const char *text, size_t len, fv_err *e);

/* Free a root and its tree; accepts NULL and clears *v. */
void fv_jr_free(fv_jr **v);

/* The value of key in an object, or NULL (v NULL or not an object, or no such key). */
const fv_jr *fv_jr_get(const fv_jr *v, const char *key);

/* v's number if v is a number, else dflt (also for NULL). */
double fv_jr_num(const fv_jr *v, double dflt);

#endif
