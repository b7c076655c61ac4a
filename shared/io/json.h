/* json.h: a tiny JSON object writer for --json outputs, metrics.jsonl lines and summaries.
 * It builds one flat or nested object into a growing string. Non-finite numbers are written as
 * null (JSON has no NaN), except that +inf can be written as the string "inf" via
 * fv_json_num_or_inf. Not here: JSON parsing (json_read.h, through libjansson; configs are INI).
 */
#ifndef FV_JSON_H
#define FV_JSON_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int need_comma; /* internal */
} fv_json;

/* Start an object: "{". */
void fv_json_begin(fv_json *j);
/* Close the object and return the string (owned by j until fv_json_free). */
const char *fv_json_end(fv_json *j);
void fv_json_free(fv_json *j);

void fv_json_num(fv_json *j, const char *key, double v);
void fv_json_num_or_inf(fv_json *j, const char *key, double v);
void fv_json_int(fv_json *j, const char *key, int64_t v);
void fv_json_str(fv_json *j, const char *key, const char *v);
void fv_json_bool(fv_json *j, const char *key, int v);
/* Arrays of numbers. */
void fv_json_num_array(fv_json *j, const char *key, const double *v, size_t n);
void fv_json_float_array(fv_json *j, const char *key, const float *v, size_t n);
/* Nested object: fv_json_obj_begin(j, "key") ... fv_json_obj_end(j). */
void fv_json_obj_begin(fv_json *j, const char *key);
void fv_json_obj_end(fv_json *j);
/* Insert raw, already-valid JSON as the value of key. */
void fv_json_raw(fv_json *j, const char *key, const char *raw);

#endif
