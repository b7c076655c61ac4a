/* json_read.h: reading JSON (results files: the objects fedvim prints with --json, metrics.jsonl
 * and attacks.jsonl lines, experiment JSON; the safetensors header) through libjansson, with
 * fedvim's error convention and one strict policy for every caller. A parsed value is a jansson
 * tree: read it with jansson's own accessors (json_object_get, json_array_foreach, json_is_*,
 * json_integer_value ...), release it with json_decref.
 * The policy (fv_jr_parse): RFC 8259 JSON, any value at the top; duplicate keys in an object,
 * bytes after the value, \u0000 in strings, invalid UTF-8, integers outside the 64-bit signed
 * range and reals that overflow are errors; nesting is bounded by jansson (2048 levels).
 * Integers stay exact 64-bit json_int_t values (never a double); reals are doubles.
 * Not here: writing JSON (json.h), streaming, schemas (each caller checks the shape it expects).
 */
#ifndef FV_JSON_READ_H
#define FV_JSON_READ_H
#include <jansson.h>
#include <stddef.h>

#include "fv_common.h"

/* Parse text[0..len) (need not be NUL-terminated). Returns the root (caller owns: json_decref) or
 * NULL with e set to "byte B (line L, column C): what is wrong" in jansson's words, e.g.
 * "duplicate object key near '"a"'"; callers prefix the input's name. */
FV_MUST_USE json_t *fv_jr_parse(const char *text, size_t len, fv_err *e);

/* v's value if v is a number (integer or real; integers converted to double), else dflt (also
 * for NULL, strings, booleans and null). */
double fv_jr_num(const json_t *v, double dflt);

#endif
