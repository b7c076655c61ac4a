/* json_read.c: see json_read.h. The parser is libjansson's; this file fixes its flags and turns
 * its error record into an fv_err. */
#include "io/json_read.h"

json_t *fv_jr_parse(const char *text, size_t len, fv_err *e) {
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!v) fv_err_set(e, "byte %d (line %d, column %d): %s", je.position, je.line, je.column, je.text);
    return v;
}

double fv_jr_num(const json_t *v, double dflt) { return json_is_number(v) ? json_number_value(v) : dflt; }
