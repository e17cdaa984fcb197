/*
 * fuzz_result.c - the result JSON writer (result_to_json), as GET
 * /results/{id} answers, checked as a round trip: a result that is valid
 * UTF-8 comes back as the JSON string itself, anything else as base64 with
 * "result_encoding": "base64", and either way the client decodes the very
 * bytes that were stored. utf8_valid is checked against a validator written
 * from the Unicode standard's table of well-formed byte sequences.
 *
 * Input: flags byte, message id up to a NUL, error up to a NUL, then the
 * result bytes (NULs and all).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "message.h"

/* Unicode 15, table 3-7: well-formed UTF-8 byte sequences. */
static bool
ref_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		uint8_t lo = 0x80, hi = 0xbf;
		size_t more;

		if (c <= 0x7f) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (n - i - 1 < more)
			return false;
		for (size_t k = 1; k <= more; k++) {
			uint8_t b = s[i + k];

			if (k == 1 ? b < lo || b > hi : b < 0x80 || b > 0xbf)
				return false;
		}
		i += more + 1;
	}
	return true;
}

/* Take bytes up to a NUL (or the end) as a string. */
static char *
take_string(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
	size_t n = nul != NULL ? (size_t)(nul - *p) : (size_t)(end - *p);
	char *s = strndup((const char *)*p, n);

	*p += nul != NULL ? n + 1 : n;
	return s;
}

static const char *
field_string(struct json_object *o, const char *key, size_t *len)
{
	struct json_object *v;

	FUZZ_CHECK(json_object_object_get_ex(o, key, &v));
	FUZZ_CHECK(json_object_is_type(v, json_type_string));
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

static int64_t
field_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	FUZZ_CHECK(json_object_object_get_ex(o, key, &v));
	FUZZ_CHECK(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	struct processing_result res = { 0 };
	struct json_tokener *tok;
	struct json_object *o, *v;
	unsigned char *back = NULL;
	const char *s;
	char *json;
	size_t len = 0, n, back_len = 0;
	bool text, valid;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = *p++;
	res.message_id = take_string(&p, end);
	res.error = take_string(&p, end);
	FUZZ_CHECK(res.message_id != NULL && res.error != NULL);
	res.success = flags & 1;
	res.processed_at = (int64_t)(flags >> 1) * 1000003;
	res.deliveries = flags >> 4;
	res.result_len = (size_t)(end - p);
	res.result = malloc(res.result_len ? res.result_len : 1);
	FUZZ_CHECK(res.result != NULL);
	memcpy(res.result, p, res.result_len);

	valid = ref_utf8_valid(res.result, res.result_len);
	FUZZ_CHECK(utf8_valid(res.result, res.result_len) == valid);

	json = result_to_json(&res, &len);
	FUZZ_CHECK(json != NULL);
	FUZZ_CHECK(strlen(json) == len);	/* NULs are escaped */
	/* a client's JSON parser needs UTF-8; the writer adds no bad bytes */
	if (ref_utf8_valid((const uint8_t *)res.message_id,
	    strlen(res.message_id)) && ref_utf8_valid((const uint8_t *)res.error,
	    strlen(res.error)))
		FUZZ_CHECK(ref_utf8_valid((const uint8_t *)json, len));

	tok = json_tokener_new();
	FUZZ_CHECK(tok != NULL);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, json, (int)len);
	FUZZ_CHECK(o != NULL && tok->char_offset == (int)len);
	json_tokener_free(tok);
	FUZZ_CHECK(json_object_is_type(o, json_type_object));

	FUZZ_CHECK(strcmp(field_string(o, "message_id", NULL),
	    res.message_id) == 0);
	FUZZ_CHECK(strcmp(field_string(o, "error", NULL), res.error) == 0);
	FUZZ_CHECK(json_object_object_get_ex(o, "success", &v) &&
	    json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v) == res.success);
	FUZZ_CHECK(field_int(o, "processed_at") == res.processed_at);
	FUZZ_CHECK(field_int(o, "deliveries") == res.deliveries);

	s = field_string(o, "result", &n);
	text = !json_object_object_get_ex(o, "result_encoding", &v);
	FUZZ_CHECK(text == valid);
	if (text) {
		FUZZ_CHECK(n == res.result_len);
		FUZZ_CHECK(memcmp(s, res.result, n) == 0);
	} else {
		FUZZ_CHECK(json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), "base64") == 0);
		FUZZ_CHECK(base64_decode(s, n, &back, &back_len) == 0);
		FUZZ_CHECK(back_len == res.result_len);
		FUZZ_CHECK(memcmp(back, res.result, back_len) == 0);
		free(back);
	}

	json_object_put(o);
	free(json);
	result_clear(&res);
	return 0;
}
