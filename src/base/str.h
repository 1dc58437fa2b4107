/*
 * String helpers of the lowest layer: hex digits, URL (percent) decoding,
 * query-string lookup and comma-separated lists. One copy each, used by the
 * protocols (HTTP, RTMP), the core and the modules. Pure functions: no
 * allocation, no global state, safe on any thread.
 */
#ifndef SL_BASE_STR_H
#define SL_BASE_STR_H

#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit (0-9, a-f, A-F), or -1 for any other byte. */
int sl_hex_val(int c);

/*
 * Writes the 2 * n hex digits of in[0..n) and a NUL to out (2 * n + 1
 * bytes), lower case unless upper is set.
 */
void sl_hex_encode(const uint8_t *in, size_t n, char *out, int upper);

/*
 * Decodes exactly len hex digits (either case) into out (cap bytes).
 * Returns the number of bytes written (len / 2), or -1 when len is odd,
 * longer than 2 * cap, or a character is not a hex digit (out is then
 * partly written).
 */
int sl_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap);

/*
 * Percent-decodes the NUL-terminated s in place, and '+' to a space when
 * plus_space is set (form encoding). A '%' not followed by two hex digits
 * is kept as it is. The result may contain NUL bytes (from %00): the
 * returned length is the only reliable one.
 */
size_t sl_url_decode(char *s, int plus_space);

/*
 * Decodes the n bytes at p as form-urlencoded text ('%XX', '+' = space)
 * into out (cap bytes with the NUL), leaving p untouched. Returns the
 * decoded length, or -1 when it does not fit (out then holds what fit,
 * NUL-terminated, when cap > 0).
 */
int sl_url_decode_n(const char *p, size_t n, char *out, size_t cap);

/* Which occurrence of a repeated key sl_query_get returns. */
#define SL_QUERY_FIRST 0
#define SL_QUERY_LAST 1

/*
 * Looks key up in the query string "k=v&k2=v2" (no leading '?'), names
 * compared after decoding, and decodes its value into out (cap bytes with
 * the NUL). which is SL_QUERY_FIRST or SL_QUERY_LAST (the last occurrence
 * wins, e.g. RTMP's stream-name query appended after the connect's). A key
 * without '=' has the empty value. Returns the value's length, -1 when the
 * key is absent (or query/key NULL), -2 when the value was cut at cap - 1
 * bytes (out holds the cut value).
 */
int sl_query_get(const char *query, const char *key, int which, char *out, size_t cap);

/*
 * True when the JSON text (len bytes, not NUL-terminated) never nests
 * objects and arrays deeper than max_depth. A scan of the raw text
 * (strings and their escapes skipped), run before a JSON parser whose own
 * nesting cap is far higher (jansson: 2048), so a hostile body cannot make
 * it recurse. It does not validate: the parser does.
 */
int sl_json_depth_ok(const char *text, size_t len, int max_depth);

/*
 * Walks a comma-separated list: returns the next item with the blanks and
 * tabs around it trimmed, its length in *len, and moves *cursor past it;
 * empty items are skipped. NULL at the end (also when *cursor is NULL).
 * The item points into the caller's string and is not NUL-terminated; a
 * caller that owns the string may write a NUL at item[len] (the cursor is
 * already past it) to cut the item in place.
 *     for (const char *c = list, *it; (it = sl_list_next(&c, &n));) ...
 */
const char *sl_list_next(const char **cursor, size_t *len);

/*
 * Whether the comma-separated list holds word, compared without regard to
 * ASCII case (after trimming as sl_list_next does). 0 for a NULL list or
 * word.
 */
int sl_list_has(const char *list, const char *word);

#endif
