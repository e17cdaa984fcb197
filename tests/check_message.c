/* check_message.c - DataMessage JSON codec, base64, UTF-8, result JSON */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "check_main.h"
#include "message.h"

Suite *message_suite(void);

/* What Go's encoding/json wrote for a full DataMessage. */
static const char go_json[] =
    "{\"id\":\"3f1c0d7e-1b2a-4c3d-9e8f-0a1b2c3d4e5f\","
    "\"timestamp\":1732700000,\"source\":\"sensor-1\","
    "\"payload\":\"aGVsbG8gd29ybGQ=\",\"metadata\":{\"a\":\"1\",\"b\":\"2\"}}";

static char *
encode(const struct data_message *msg)
{
	size_t len = 0;
	char *s = message_encode(msg, &len);

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, strlen(s));
	return s;
}

/*
 * Decode s from the value it parses to, as a batch's items are: the
 * message must be the one decoding the text gave, to the byte.
 */
static void
decode_object_same(const char *s, const struct data_message *want)
{
	struct json_object *obj = json_tokener_parse(s);
	struct data_message *msg = NULL;
	char *cause = NULL, *a, *b;

	ck_assert_ptr_nonnull(obj);
	ck_assert_msg(message_decode_object(obj, &msg, &cause) == 0,
	    "decode of the value of %s failed: %s", s,
	    cause != NULL ? cause : "(no cause)");
	ck_assert_ptr_null(cause);
	a = encode(want);
	b = encode(msg);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	message_free(msg);
	json_object_put(obj);
}

/* Decode s; the test fails when that does not succeed. */
static struct data_message *
decode_ok(const char *s)
{
	struct data_message *msg = NULL;
	char *cause = NULL;
	int rc = message_decode(s, strlen(s), &msg, &cause);

	ck_assert_msg(rc == 0, "decode of %s failed: %s", s,
	    cause != NULL ? cause : "(no cause)");
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_null(cause);
	decode_object_same(s, msg);
	return msg;
}

/*
 * Decode s, expect a rejection whose cause mentions want; a value that
 * parses is refused for the same reason when decoded as a batch's item.
 */
static void
decode_rejected(const char *s, const char *want)
{
	struct data_message *msg = NULL;
	struct json_object *obj;
	char *cause = NULL;
	int rc = message_decode(s, strlen(s), &msg, &cause);

	ck_assert_msg(rc != 0, "decode of %s was accepted", s);
	ck_assert_ptr_null(msg);
	ck_assert_msg(cause != NULL, "no cause for %s", s);
	if (want != NULL)
		ck_assert_msg(strstr(cause, want) != NULL,
		    "cause '%s' for %s does not name '%s'", cause, s, want);
	free(cause);
	if (want == NULL || (obj = json_tokener_parse(s)) == NULL)
		return;
	cause = NULL;
	ck_assert_msg(message_decode_object(obj, &msg, &cause) != 0,
	    "the value of %s was accepted", s);
	ck_assert_ptr_null(msg);
	ck_assert_msg(cause != NULL && strstr(cause, want) != NULL,
	    "cause '%s' for the value of %s does not name '%s'",
	    cause != NULL ? cause : "(none)", s, want);
	free(cause);
	json_object_put(obj);
}

/* --- DataMessage codec ------------------------------------------------- */

START_TEST(go_encoding_decodes_all_fields)
{
	struct data_message *msg = decode_ok(go_json);

	ck_assert_str_eq(msg->id, "3f1c0d7e-1b2a-4c3d-9e8f-0a1b2c3d4e5f");
	ck_assert_int_eq(msg->timestamp, 1732700000);
	ck_assert_str_eq(msg->source, "sensor-1");
	ck_assert_uint_eq(msg->payload_len, 11);
	ck_assert_mem_eq(msg->payload, "hello world", 11);
	ck_assert_uint_eq(msg->n_metadata, 2);
	ck_assert_str_eq(msg->metadata[0].key, "a");
	ck_assert_str_eq(msg->metadata[0].value, "1");
	ck_assert_str_eq(msg->metadata[1].key, "b");
	ck_assert_str_eq(msg->metadata[1].value, "2");
	message_free(msg);
}
END_TEST

START_TEST(go_encoding_round_trips_to_same_bytes)
{
	struct data_message *msg = decode_ok(go_json);
	char *out = encode(msg);

	ck_assert_str_eq(out, go_json);
	free(out);
	message_free(msg);
}
END_TEST

START_TEST(empty_fields_are_omitted_on_encode)
{
	struct data_message msg = { .id = (char *)"x" };
	char *out = encode(&msg);

	ck_assert_str_eq(out, "{\"id\":\"x\"}");
	free(out);

	/* empty strings count as absent too, as Go's omitempty */
	msg.source = (char *)"";
	out = encode(&msg);
	ck_assert_str_eq(out, "{\"id\":\"x\"}");
	free(out);

	msg.source = (char *)"s";
	msg.timestamp = 5;
	out = encode(&msg);
	ck_assert_str_eq(out, "{\"id\":\"x\",\"timestamp\":5,\"source\":\"s\"}");
	free(out);
}
END_TEST

START_TEST(metadata_keys_are_sorted)
{
	struct data_message *msg = decode_ok("{\"id\":\"m\",\"metadata\":"
	    "{\"zeta\":\"z\",\"alpha\":\"a\",\"mid\":\"m\",\"Beta\":\"B\"}}");
	char *out;

	ck_assert_uint_eq(msg->n_metadata, 4);
	ck_assert_str_eq(msg->metadata[0].key, "Beta");
	ck_assert_str_eq(msg->metadata[1].key, "alpha");
	ck_assert_str_eq(msg->metadata[2].key, "mid");
	ck_assert_str_eq(msg->metadata[3].key, "zeta");
	ck_assert_str_eq(msg->metadata[3].value, "z");
	out = encode(msg);
	ck_assert_str_eq(out, "{\"id\":\"m\",\"metadata\":{\"Beta\":\"B\","
	    "\"alpha\":\"a\",\"mid\":\"m\",\"zeta\":\"z\"}}");
	free(out);
	message_free(msg);
}
END_TEST

START_TEST(absent_and_null_optional_fields_decode_empty)
{
	struct data_message *msg = decode_ok("{\"id\":\"only\"}");

	ck_assert_int_eq(msg->timestamp, 0);
	ck_assert_ptr_null(msg->source);
	ck_assert_uint_eq(msg->payload_len, 0);
	ck_assert_uint_eq(msg->n_metadata, 0);
	message_free(msg);

	msg = decode_ok("{\"id\":\"n\",\"timestamp\":null,\"source\":null,"
	    "\"payload\":null,\"metadata\":null}");
	ck_assert_str_eq(msg->id, "n");
	ck_assert_int_eq(msg->timestamp, 0);
	ck_assert_uint_eq(msg->payload_len, 0);
	ck_assert_uint_eq(msg->n_metadata, 0);
	message_free(msg);
}
END_TEST

START_TEST(binary_payload_round_trips_through_json)
{
	struct data_message in = { .id = (char *)"bin" }, *out;
	unsigned char bytes[256];
	char *json;

	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	in.payload = bytes;
	in.payload_len = sizeof(bytes);
	json = encode(&in);
	out = decode_ok(json);
	ck_assert_uint_eq(out->payload_len, sizeof(bytes));
	ck_assert_mem_eq(out->payload, bytes, sizeof(bytes));
	free(json);
	message_free(out);
}
END_TEST

START_TEST(bad_base64_payload_is_rejected)
{
	decode_rejected("{\"id\":\"x\",\"payload\":\"not base64!\"}", "payload");
	decode_rejected("{\"id\":\"x\",\"payload\":\"aGVsbG8\"}", "payload");
	decode_rejected("{\"id\":\"x\",\"payload\":\"aG=sbG8=\"}", "payload");
	decode_rejected("{\"id\":\"x\",\"payload\":\"aGVsbG8gd29ybGQ=aGk=\"}",
	    "payload");
}
END_TEST

START_TEST(missing_id_is_rejected)
{
	decode_rejected("{\"source\":\"s\",\"payload\":\"aGk=\"}", "id");
	decode_rejected("{\"id\":\"\",\"source\":\"s\"}", "id");
	decode_rejected("{\"id\":null}", "id");
}
END_TEST

START_TEST(ill_typed_fields_are_rejected_naming_the_field)
{
	decode_rejected("{\"id\":42}", "id");
	decode_rejected("{\"id\":\"x\",\"timestamp\":\"1732700000\"}",
	    "timestamp");
	decode_rejected("{\"id\":\"x\",\"timestamp\":1.5}", "timestamp");
	decode_rejected("{\"id\":\"x\",\"source\":true}", "source");
	decode_rejected("{\"id\":\"x\",\"payload\":12}", "payload");
	decode_rejected("{\"id\":\"x\",\"metadata\":[\"a\",\"b\"]}", "metadata");
	decode_rejected("{\"id\":\"x\",\"metadata\":{\"a\":1}}", "metadata");
	decode_rejected("{\"id\":\"x\",\"metadata\":\"a=1\"}", "metadata");
}
END_TEST

START_TEST(malformed_json_is_rejected)
{
	decode_rejected("", NULL);
	decode_rejected("{", NULL);
	decode_rejected("{\"id\":\"x\"", NULL);
	decode_rejected("{\"id\":\"x\",}", NULL);
	decode_rejected("{id:\"x\"}", NULL);
	decode_rejected("not json", NULL);
	/* json-c's lax extensions that Go's decoder refuses */
	decode_rejected("{'id':'x'}", NULL);
	decode_rejected("{\"id\":\"x\"/* c */}", NULL);
	decode_rejected("{\"id\":\"x\",\"metadata\":{\"a\":\"1\",}}", NULL);
}
END_TEST

START_TEST(trailing_garbage_is_rejected)
{
	struct data_message *msg;

	decode_rejected("{\"id\":\"x\"}garbage", NULL);
	decode_rejected("{\"id\":\"x\"}{\"id\":\"y\"}", NULL);
	decode_rejected("{\"id\":\"x\"} 1", NULL);
	/* trailing whitespace is not garbage */
	msg = decode_ok("{\"id\":\"x\"} \r\n\t");
	ck_assert_str_eq(msg->id, "x");
	message_free(msg);
}
END_TEST

START_TEST(non_object_top_level_is_rejected)
{
	decode_rejected("[]", "object");
	decode_rejected("[{\"id\":\"x\"}]", "object");
	decode_rejected("\"id\"", "object");
	/* json-c cannot tell a bare number or null from an error: any cause */
	decode_rejected("42", NULL);
	decode_rejected("null", NULL);
}
END_TEST

START_TEST(decode_does_not_read_past_len)
{
	/* the buffer continues with garbage that len excludes */
	static const char buf[] = "{\"id\":\"x\"}GARBAGE";
	struct data_message *msg = NULL;
	char *cause = NULL;

	ck_assert_int_eq(message_decode(buf, 10, &msg, &cause), 0);
	ck_assert_str_eq(msg->id, "x");
	message_free(msg);
}
END_TEST

/* --- base64 -------------------------------------------------------------- */

static const struct {
	const char *plain, *b64;
} rfc4648[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

START_TEST(base64_encodes_rfc4648_vectors)
{
	size_t n = 99;
	char *out = base64_encode((const unsigned char *)rfc4648[_i].plain,
	    strlen(rfc4648[_i].plain), &n);

	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, rfc4648[_i].b64);
	ck_assert_uint_eq(n, strlen(rfc4648[_i].b64));
	free(out);
}
END_TEST

START_TEST(base64_decodes_rfc4648_vectors)
{
	unsigned char *out = NULL;
	size_t n = 99;

	ck_assert_int_eq(base64_decode(rfc4648[_i].b64,
	    strlen(rfc4648[_i].b64), &out, &n), 0);
	ck_assert_uint_eq(n, strlen(rfc4648[_i].plain));
	ck_assert_mem_eq(out, rfc4648[_i].plain, n);
	free(out);
}
END_TEST

START_TEST(base64_round_trips_every_byte_value)
{
	unsigned char bytes[256], *back = NULL;
	size_t n, m;
	char *b64;

	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	/* every length 0..256 exercises each padding case */
	for (size_t len = 0; len <= sizeof(bytes); len++) {
		b64 = base64_encode(bytes, len, &n);
		ck_assert_ptr_nonnull(b64);
		ck_assert_uint_eq(n % 4, 0);
		ck_assert_int_eq(base64_decode(b64, n, &back, &m), 0);
		ck_assert_uint_eq(m, len);
		if (len > 0)
			ck_assert_mem_eq(back, bytes, len);
		free(back);
		free(b64);
	}
}
END_TEST

START_TEST(base64_rejects_bad_input)
{
	static const char *const bad[] = {
		"Zg", "Zg=", "Z===", "====", "Zm9v!A==", "Zm-v", "Zm_v",
		"Zg==Zg==", "Z=g=", "Zm9v\n",
	};
	unsigned char *out;
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		out = NULL;
		ck_assert_msg(base64_decode(bad[i], strlen(bad[i]), &out,
		    &n) != 0, "'%s' was accepted", bad[i]);
		ck_assert_ptr_null(out);
	}
}
END_TEST

/* --- ingest requests ------------------------------------------------------ */

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

START_TEST(ingest_request_gets_fresh_uuid_v4_and_current_time)
{
	static const char req[] = "{\"source\":\"cli\",\"data\":\"hello\","
	    "\"metadata\":{\"k\":\"v\"}}";
	struct data_message *a = NULL, *b = NULL;
	char *cause = NULL;
	time_t before = time(NULL), after;

	ck_assert_int_eq(message_from_ingest_request(req, strlen(req), NULL, &a,
	    &cause), 0);
	ck_assert_int_eq(message_from_ingest_request(req, strlen(req), NULL, &b,
	    &cause), 0);
	after = time(NULL);
	ck_assert_ptr_null(cause);

	ck_assert_uint_eq(strlen(a->id), 36);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			ck_assert_int_eq(a->id[i], '-');
		else
			ck_assert_msg(is_hex(a->id[i]), "id %s", a->id);
	}
	ck_assert_int_eq(a->id[14], '4');		/* version 4 */
	ck_assert_ptr_nonnull(strchr("89ab", a->id[19]));	/* RFC variant */
	ck_assert_str_ne(a->id, b->id);

	ck_assert_int_ge(a->timestamp, (int64_t)before);
	ck_assert_int_le(a->timestamp, (int64_t)after);

	ck_assert_str_eq(a->source, "cli");
	ck_assert_uint_eq(a->payload_len, 5);
	ck_assert_mem_eq(a->payload, "hello", 5);
	ck_assert_uint_eq(a->n_metadata, 1);
	ck_assert_str_eq(a->metadata[0].key, "k");
	ck_assert_str_eq(a->metadata[0].value, "v");
	message_free(a);
	message_free(b);
}
END_TEST

START_TEST(ingest_request_data_is_raw_bytes_encoded_as_base64)
{
	static const char req[] = "{\"data\":\"hello world\"}";
	struct data_message *msg = NULL;
	char *cause = NULL, *json;

	ck_assert_int_eq(message_from_ingest_request(req, strlen(req), NULL, &msg,
	    &cause), 0);
	json = encode(msg);
	ck_assert_ptr_nonnull(strstr(json, "\"payload\":\"aGVsbG8gd29ybGQ=\""));
	ck_assert_ptr_null(strstr(json, "\"source\""));
	free(json);
	message_free(msg);
}
END_TEST

START_TEST(ingest_request_with_wrong_types_is_rejected)
{
	static const struct {
		const char *req, *field;
	} bad[] = {
		{ "{\"source\":1,\"data\":\"x\"}", "source" },
		{ "{\"source\":\"s\",\"data\":42}", "data" },
		{ "{\"data\":{\"nested\":true}}", "data" },
		{ "{\"data\":\"x\",\"metadata\":[1]}", "metadata" },
		{ "{\"data\":\"x\",\"metadata\":{\"k\":false}}", "metadata" },
		{ "[\"data\"]", "object" },
		{ "{\"data\":", "JSON" },
	};
	struct data_message *msg;
	char *cause;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		msg = NULL;
		cause = NULL;
		ck_assert_msg(message_from_ingest_request(bad[i].req,
		    strlen(bad[i].req), NULL, &msg, &cause) != 0, "%s accepted",
		    bad[i].req);
		ck_assert_ptr_null(msg);
		ck_assert_ptr_nonnull(cause);
		ck_assert_msg(strstr(cause, bad[i].field) != NULL,
		    "cause '%s' does not name '%s'", cause, bad[i].field);
		free(cause);
	}
}
END_TEST

/* --- result JSON ------------------------------------------------------- */

/* Parse s as one JSON object and check it has exactly the expected keys. */
static struct json_object *
parse_result(const char *s, size_t len, bool base64)
{
	static const char *const keys[] = { "message_id", "processed_at",
		"success", "error", "result", "deliveries" };
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj, *v;
	int nkeys = 0;

	obj = json_tokener_parse_ex(tok, s, (int)len);
	ck_assert_msg(obj != NULL, "not JSON: %s", s);
	ck_assert_int_eq(tok->char_offset, (int)len);
	json_tokener_free(tok);
	ck_assert(json_object_is_type(obj, json_type_object));
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		ck_assert_msg(json_object_object_get_ex(obj, keys[i], &v),
		    "no %s in %s", keys[i], s);
	ck_assert_int_eq(json_object_object_get_ex(obj, "result_encoding",
	    &v), base64);
	json_object_object_foreach(obj, k, val) {
		(void)k;
		(void)val;
		nkeys++;
	}
	ck_assert_int_eq(nkeys, 6 + (base64 ? 1 : 0));
	return obj;
}

static const char *
get_str(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	ck_assert(json_object_object_get_ex(obj, key, &v));
	ck_assert(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

START_TEST(utf8_result_is_a_json_string)
{
	struct processing_result res = {
		.message_id = (char *)"m-1", .processed_at = 1732700001,
		.success = true, .result = (unsigned char *)"PROCESSED_hello",
		.result_len = 15, .deliveries = 1,
	};
	struct json_object *obj, *v;
	size_t len = 0;
	char *s = result_to_json(&res, &len);

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, strlen(s));
	ck_assert_ptr_nonnull(strstr(s, "\"result\":\"PROCESSED_hello\""));
	obj = parse_result(s, len, false);
	ck_assert_str_eq(get_str(obj, "message_id"), "m-1");
	ck_assert_str_eq(get_str(obj, "result"), "PROCESSED_hello");
	ck_assert_str_eq(get_str(obj, "error"), "");
	json_object_object_get_ex(obj, "success", &v);
	ck_assert(json_object_is_type(v, json_type_boolean));
	ck_assert(json_object_get_boolean(v));
	json_object_object_get_ex(obj, "processed_at", &v);
	ck_assert(json_object_is_type(v, json_type_int));
	ck_assert_int_eq(json_object_get_int64(v), 1732700001);
	json_object_object_get_ex(obj, "deliveries", &v);
	ck_assert(json_object_is_type(v, json_type_int));
	ck_assert_int_eq(json_object_get_int64(v), 1);
	json_object_put(obj);
	free(s);
}
END_TEST

START_TEST(invalid_utf8_result_is_base64_with_encoding)
{
	unsigned char bytes[] = { 'P', 0xff, 0xfe, 0x00, 'x' };
	struct processing_result res = {
		.message_id = (char *)"m-2", .processed_at = 7,
		.success = true, .result = bytes, .result_len = sizeof(bytes),
		.deliveries = 3,
	};
	struct json_object *obj;
	unsigned char *back = NULL;
	size_t len = 0, n = 0;
	const char *b64;
	char *s = result_to_json(&res, &len);

	ck_assert_ptr_nonnull(s);
	obj = parse_result(s, len, true);
	ck_assert_str_eq(get_str(obj, "result_encoding"), "base64");
	b64 = get_str(obj, "result");
	ck_assert_int_eq(base64_decode(b64, strlen(b64), &back, &n), 0);
	ck_assert_uint_eq(n, sizeof(bytes));
	ck_assert_mem_eq(back, bytes, sizeof(bytes));
	free(back);
	json_object_put(obj);
	free(s);
}
END_TEST

START_TEST(failed_result_json_carries_error)
{
	struct processing_result res = {
		.message_id = (char *)"m-3", .success = false,
		.error = (char *)"cannot decode message: \"bad\"",
		.deliveries = 1,
	};
	struct json_object *obj, *v;
	size_t len = 0;
	char *s = result_to_json(&res, &len);

	ck_assert_ptr_nonnull(s);
	obj = parse_result(s, len, false);
	ck_assert_str_eq(get_str(obj, "error"),
	    "cannot decode message: \"bad\"");
	ck_assert_str_eq(get_str(obj, "result"), "");
	json_object_object_get_ex(obj, "success", &v);
	ck_assert(!json_object_get_boolean(v));
	json_object_put(obj);
	free(s);
}
END_TEST

START_TEST(error_body_is_json_with_error_key)
{
	struct json_object *obj;
	size_t len = 0;
	char *s = json_error_body("Queue is full", &len);

	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "{\"error\":\"Queue is full\"}");
	ck_assert_uint_eq(len, strlen(s));
	obj = json_tokener_parse(s);
	ck_assert_ptr_nonnull(obj);
	ck_assert_str_eq(get_str(obj, "error"), "Queue is full");
	json_object_put(obj);
	free(s);
}
END_TEST

/* --- UTF-8 --------------------------------------------------------------- */

#define U(s) ((const unsigned char *)(s)), (sizeof(s) - 1)

START_TEST(utf8_accepts_ascii_and_multibyte_text)
{
	ck_assert(utf8_valid(U("")));
	ck_assert(utf8_valid(U("PROCESSED_hello")));
	ck_assert(utf8_valid(U("caf\xc3\xa9")));			/* é */
	ck_assert(utf8_valid(U("\xd0\xbf\xd1\x80\xd0\xb8")));	/* при */
	ck_assert(utf8_valid(U("\xe2\x82\xac")));			/* € */
	ck_assert(utf8_valid(U("\xe6\x97\xa5\xe6\x9c\xac")));	/* 日本 */
	ck_assert(utf8_valid(U("\xf0\x9f\x98\x80")));		/* 😀 */
	ck_assert(utf8_valid(U("\xf4\x8f\xbf\xbf")));		/* U+10FFFF */
	ck_assert(utf8_valid(U("\xed\x9f\xbf")));			/* U+D7FF */
	ck_assert(utf8_valid(U("\xee\x80\x80")));			/* U+E000 */
	ck_assert(utf8_valid(U("a\0b")));			/* NUL is valid */
}
END_TEST

START_TEST(utf8_rejects_overlongs)
{
	ck_assert(!utf8_valid(U("\xc0\xaf")));
	ck_assert(!utf8_valid(U("\xc1\xbf")));
	ck_assert(!utf8_valid(U("\xe0\x80\xaf")));
	ck_assert(!utf8_valid(U("\xe0\x9f\xbf")));
	ck_assert(!utf8_valid(U("\xf0\x80\x80\xaf")));
	ck_assert(!utf8_valid(U("\xf0\x8f\xbf\xbf")));
}
END_TEST

START_TEST(utf8_rejects_surrogates)
{
	ck_assert(!utf8_valid(U("\xed\xa0\x80")));	/* U+D800 */
	ck_assert(!utf8_valid(U("\xed\xbf\xbf")));	/* U+DFFF */
	ck_assert(!utf8_valid(U("a\xed\xb0\x80z")));
}
END_TEST

START_TEST(utf8_rejects_beyond_u10ffff)
{
	ck_assert(!utf8_valid(U("\xf4\x90\x80\x80")));
	ck_assert(!utf8_valid(U("\xf7\xbf\xbf\xbf")));
	ck_assert(!utf8_valid(U("\xf8\x88\x80\x80\x80")));
	ck_assert(!utf8_valid(U("\xff")));
	ck_assert(!utf8_valid(U("\xff\xfe")));
}
END_TEST

START_TEST(utf8_rejects_truncated_and_stray_bytes)
{
	ck_assert(!utf8_valid(U("\xc3")));
	ck_assert(!utf8_valid(U("caf\xc3")));
	ck_assert(!utf8_valid(U("\xe2\x82")));
	ck_assert(!utf8_valid(U("\xf0\x9f\x98")));
	ck_assert(!utf8_valid(U("\x80")));			/* lone continuation */
	ck_assert(!utf8_valid(U("\xc3(")));			/* bad continuation */
	ck_assert(!utf8_valid(U("\xe2\x28\xa1")));
	/* the length bounds the scan, not a NUL */
	ck_assert(!utf8_valid((const unsigned char *)"\xe2\x82\xac", 2));
}
END_TEST

/* A key names one message: the same id for every retry, a UUID v5. */
START_TEST(idempotency_key_gives_one_id_per_key)
{
	char a[37], b[37], c[37], *cause = NULL;

	ck_assert_int_eq(message_id_for_key("order-42", a, &cause), 0);
	ck_assert_int_eq(message_id_for_key("order-42", b, &cause), 0);
	ck_assert_int_eq(message_id_for_key("order-43", c, &cause), 0);
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	ck_assert_int_eq(strlen(a), 36);
	ck_assert(message_id_is_keyed(a));
	ck_assert(!message_id_is_keyed("7001735b-a29b-45d0-9c59-3803d53f9b70"));
	ck_assert(!message_id_is_keyed(NULL));
	ck_assert(!message_id_is_keyed("short"));
}
END_TEST

/*
 * A key of a named client: its own id, the same for each retry, never
 * another client's nor the id of the key alone (nor of "name:key").
 */
START_TEST(a_clients_key_gives_an_id_of_its_own)
{
	char a[37], a2[37], b[37], plain[37], joined[37], none[37];
	char *cause = NULL;

	ck_assert_int_eq(message_id_for_client_key("team-a", "order-42", a,
	    &cause), 0);
	ck_assert_int_eq(message_id_for_client_key("team-a", "order-42", a2,
	    &cause), 0);
	ck_assert_int_eq(message_id_for_client_key("team-b", "order-42", b,
	    &cause), 0);
	ck_assert_int_eq(message_id_for_key("order-42", plain, &cause), 0);
	ck_assert_int_eq(message_id_for_key("team-a:order-42", joined,
	    &cause), 0);
	ck_assert_int_eq(message_id_for_client_key(NULL, "order-42", none,
	    &cause), 0);
	ck_assert_str_eq(a, a2);
	ck_assert_str_ne(a, b);
	ck_assert_str_ne(a, plain);
	ck_assert_str_ne(a, joined);
	ck_assert_str_eq(none, plain);
	ck_assert(message_id_is_keyed(a));
	/* a bad key is refused with a client too */
	ck_assert_int_ne(message_id_for_client_key("team-a", "", a, &cause),
	    0);
	ck_assert_ptr_nonnull(strstr(cause, "Idempotency-Key"));
	free(cause);
}
END_TEST

/* The client travels with the message; a message of none has no field. */
START_TEST(the_client_is_on_the_wire_when_there_is_one)
{
	char id[] = "id-1", client[] = "team-a";
	struct data_message m = { .id = id, .client = client }, *got;
	static const char bad[] = "{\"id\":\"x\",\"client\":7}";
	char *json, *cause = NULL;
	size_t len;

	json = message_encode(&m, &len);
	ck_assert_ptr_nonnull(strstr(json, "\"client\":\"team-a\""));
	ck_assert_int_eq(message_decode(json, len, &got, &cause), 0);
	ck_assert_str_eq(got->client, "team-a");
	message_free(got);
	free(json);
	m.client = NULL;
	json = message_encode(&m, &len);
	ck_assert_ptr_null(strstr(json, "client"));
	ck_assert_int_eq(message_decode(json, len, &got, &cause), 0);
	ck_assert_ptr_null(got->client);
	message_free(got);
	free(json);
	ck_assert_int_ne(message_decode(bad, strlen(bad), &got, &cause), 0);
	ck_assert_ptr_nonnull(strstr(cause, "client"));
	free(cause);
}
END_TEST

/* The fingerprint of an ingest request's body. */
static void
fingerprint_of(const char *body, char fp[MESSAGE_FINGERPRINT_LEN + 1])
{
	struct data_message *msg = NULL;
	char *cause = NULL;

	ck_assert_msg(message_from_ingest_request(body, strlen(body), NULL,
	    &msg, &cause) == 0, "%s: %s", body, cause != NULL ? cause : "?");
	ck_assert_int_eq(message_fingerprint(msg, fp), 0);
	message_free(msg);
}

START_TEST(fingerprint_is_the_decoded_content_not_its_spelling)
{
	static const char *const same[] = {
		"{\"source\":\"s\",\"data\":\"d\",\"metadata\":{\"k\":\"v\"}}",
		" { \"metadata\" : { \"k\" : \"v\" } ,\n\t\"data\":\"d\", "
		    "\"source\" : \"s\" } ",
		"{\"source\":\"\\u0073\",\"data\":\"\\u0064\",\"metadata\":"
		    "{\"k\":\"\\u0076\"}}",
	};
	char a[MESSAGE_FINGERPRINT_LEN + 1], b[MESSAGE_FINGERPRINT_LEN + 1];

	/* the format pinned: SHA-256 of the length-prefixed fields */
	fingerprint_of(same[0], a);
	ck_assert_str_eq(a, "dda0524c81b34dc538dad280b83fe40607c1800f"
	    "93056a5a5b151381e65d06a0");
	for (size_t i = 1; i < sizeof(same) / sizeof(*same); i++) {
		fingerprint_of(same[i], b);
		ck_assert_msg(strcmp(a, b) == 0, "body %zu differs", i);
	}
}
END_TEST

START_TEST(fingerprint_ignores_metadata_order_id_and_time)
{
	char a[MESSAGE_FINGERPRINT_LEN + 1], b[MESSAGE_FINGERPRINT_LEN + 1];
	static const char body[] = "{\"data\":\"x\"}";
	struct data_message *m1 = NULL, *m2 = NULL;
	char *cause = NULL;

	fingerprint_of("{\"data\":\"x\",\"metadata\":{\"a\":\"1\",\"b\":\"2\","
	    "\"c\":\"3\"}}", a);
	fingerprint_of("{\"data\":\"x\",\"metadata\":{\"c\":\"3\",\"a\":\"1\","
	    "\"b\":\"2\"}}", b);
	ck_assert_str_eq(a, b);
	/* no source and an empty one are the same; no metadata and {} too */
	fingerprint_of("{\"data\":\"x\",\"source\":\"\",\"metadata\":{}}", a);
	fingerprint_of(body, b);
	ck_assert_str_eq(a, b);
	/* two requests get two ids, and the same fingerprint */
	ck_assert_int_eq(message_from_ingest_request(body, strlen(body), NULL,
	    &m1, &cause), 0);
	ck_assert_int_eq(message_from_ingest_request(body, strlen(body), NULL,
	    &m2, &cause), 0);
	m2->timestamp = m1->timestamp + 5;
	ck_assert_str_ne(m1->id, m2->id);
	ck_assert_int_eq(message_fingerprint(m1, a), 0);
	ck_assert_int_eq(message_fingerprint(m2, b), 0);
	ck_assert_str_eq(a, b);
	message_free(m1);
	message_free(m2);
}
END_TEST

START_TEST(fingerprint_tells_every_field_apart)
{
	static const char *const bodies[] = {
		"{\"source\":\"s\",\"data\":\"d\",\"metadata\":{\"k\":\"v\"}}",
		"{\"source\":\"t\",\"data\":\"d\",\"metadata\":{\"k\":\"v\"}}",
		"{\"source\":\"s\",\"data\":\"e\",\"metadata\":{\"k\":\"v\"}}",
		"{\"source\":\"s\",\"data\":\"d\",\"metadata\":{\"k\":\"w\"}}",
		"{\"source\":\"s\",\"data\":\"d\",\"metadata\":{\"j\":\"v\"}}",
		"{\"source\":\"s\",\"data\":\"d\"}",
		"{\"source\":\"s\",\"data\":\"d \",\"metadata\":{\"k\":\"v\"}}",
		/* a boundary moved between two fields */
		"{\"source\":\"sd\",\"data\":\"\",\"metadata\":{\"k\":\"v\"}}",
		"{\"source\":\"s\",\"data\":\"d\",\"metadata\":{\"kv\":\"\"}}",
	};
	enum { N = sizeof(bodies) / sizeof(*bodies) };
	char fp[N][MESSAGE_FINGERPRINT_LEN + 1];

	for (size_t i = 0; i < N; i++) {
		fingerprint_of(bodies[i], fp[i]);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(fp[i], fp[j]) != 0,
			    "bodies %zu and %zu share a fingerprint", j, i);
	}
}
END_TEST

START_TEST(a_keyed_batch_item_has_the_fingerprint_a_single_has)
{
	static const char batch[] =
	    "[{\"idempotency_key\":\"k-1\",\"data\":\"d\",\"source\":\"s\"},"
	    "{\"data\":\"d\",\"source\":\"s\"}]";
	struct batch_item *items = NULL;
	char fp[MESSAGE_FINGERPRINT_LEN + 1], id[37], *cause = NULL, *enc;
	size_t n = 0;

	ck_assert_int_eq(message_batch_from_request(batch, strlen(batch), 0, 0,
	    NULL, &items, &n, &cause), 0);
	ck_assert_uint_eq(n, 2);
	fingerprint_of("{\"source\":\"s\",\"data\":\"d\"}", fp);
	ck_assert_int_eq(message_id_for_key("k-1", id, &cause), 0);
	ck_assert_str_eq(items[0].msg->id, id);
	ck_assert_str_eq(items[0].msg->fingerprint, fp);
	ck_assert_ptr_null(items[1].msg->fingerprint);
	/* not on the wire: every hop computes its own */
	enc = encode(items[0].msg);
	ck_assert_ptr_null(strstr(enc, fp));
	free(enc);
	message_batch_free(items, n);
}
END_TEST

START_TEST(bad_idempotency_keys_are_refused)
{
	static const char *const bad[] = { "", "tab\there", "nl\n",
		"caf\xc3\xa9", "del\x7f" };
	char id[37], *cause = NULL, key[IDEMPOTENCY_KEY_MAX + 2];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ck_assert_msg(message_id_for_key(bad[i], id, &cause) != 0,
		    "key %zu accepted", i);
		ck_assert_ptr_nonnull(strstr(cause, "Idempotency-Key"));
		free(cause);
		cause = NULL;
	}
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	ck_assert_int_ne(message_id_for_key(key, id, &cause), 0);
	ck_assert_ptr_nonnull(strstr(cause, "128"));
	free(cause);
	cause = NULL;
	key[IDEMPOTENCY_KEY_MAX] = '\0';
	ck_assert_int_eq(message_id_for_key(key, id, &cause), 0);
	ck_assert_int_eq(message_id_for_key("a b ~", id, &cause), 0);
}
END_TEST

/* One key, one id: blanks around it, as a header or a batch item has them. */
START_TEST(blanks_around_a_key_are_not_part_of_it)
{
	char a[37], b[37], *cause = NULL;
	static const char *const same[] = { " k-1", "k-1 ", "\tk-1 \t",
		"  k-1  " };

	ck_assert_int_eq(message_id_for_key("k-1", a, &cause), 0);
	for (size_t i = 0; i < sizeof(same) / sizeof(*same); i++) {
		ck_assert_int_eq(message_id_for_key(same[i], b, &cause), 0);
		ck_assert_str_eq(a, b);
	}
	ck_assert_int_ne(message_id_for_key(" \t ", b, &cause), 0);
	free(cause);
}
END_TEST

/* JSON has no raw control characters in strings; escaped ones are fine. */
START_TEST(raw_control_character_in_a_string_is_refused)
{
	static const char raw[] = "{\"source\":\"a\x14" "b\",\"data\":\"x\"}";
	static const char tab[] = "{\"data\":\"a\tb\"}";
	static const char esc[] = "{\"source\":\"a\\u0014b\",\"data\":\"x\"}";
	struct data_message *msg = NULL;
	char *cause = NULL;

	ck_assert_int_ne(message_from_ingest_request(raw, sizeof(raw) - 1,
	    NULL, &msg, &cause), 0);
	ck_assert_ptr_nonnull(strstr(cause, "control character"));
	free(cause);
	cause = NULL;
	ck_assert_int_ne(message_from_ingest_request(tab, sizeof(tab) - 1,
	    NULL, &msg, &cause), 0);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(message_from_ingest_request(esc, sizeof(esc) - 1,
	    NULL, &msg, &cause), 0);
	ck_assert_str_eq(msg->source, "a\x14" "b");
	message_free(msg);
}
END_TEST

static size_t batch_split(const char *body, bool ndjson, size_t max,
    int want, struct batch_item **items, char **cause);

/* refused: the cause holds want; want2 too when not NULL */
static void
ingest_refused(const char *req, size_t len, const char *want,
    const char *want2)
{
	struct data_message *msg = NULL;
	char *cause = NULL;

	ck_assert_msg(message_from_ingest_request(req, len, NULL, &msg,
	    &cause) != 0, "accepted: %s", req);
	ck_assert_ptr_null(msg);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, want) != NULL, "'%s' lacks '%s'", cause,
	    want);
	if (want2 != NULL)
		ck_assert_msg(strstr(cause, want2) != NULL, "'%s' lacks '%s'",
		    cause, want2);
	free(cause);
}

#define REFUSED(req, want, want2) \
	ingest_refused(req, sizeof(req) - 1, want, want2)

/* NaN and Infinity are not JSON: refused wherever they are. */
START_TEST(nan_and_infinity_are_refused_anywhere)
{
	REFUSED("{\"data\":\"x\",\"extra\":NaN}", "NaN", "'extra'");
	REFUSED("{\"data\":\"x\",\"extra\":Infinity}", "Infinity", "'extra'");
	REFUSED("{\"data\":\"x\",\"e\":{\"a\":[1,-Infinity]}}", "NaN",
	    "'e.a[1]'");
	REFUSED("{\"data\":\"NaN\",\"timestamp\":NaN}", "NaN", NULL);
}
END_TEST

/* A \u0000 would cut a C string short: refused, naming the field. */
START_TEST(nul_escape_is_refused_naming_the_field)
{
	struct data_message *msg = NULL;
	char *cause = NULL;
	static const char dm[] = "{\"id\":\"a\\u0000b\",\"payload\":\"eA==\"}";
	static const char ok[] = "{\"source\":\"a\\u0001\\u00e9\",\"data\":"
	    "\"x\\\\u0000\"}";

	REFUSED("{\"source\":\"a\\u0000b\",\"data\":\"x\"}", "u0000",
	    "field 'source'");
	REFUSED("{\"data\":\"x\\u0000\"}", "u0000", "field 'data'");
	REFUSED("{\"data\":\"x\",\"metadata\":{\"a\":\"1\",\"k\":\"\\u0000\"}}",
	    "u0000", "field 'metadata.k'");
	REFUSED("{\"data\":\"x\",\"metadata\":{\"a\":\"1\",\"k\\u0000z\":\"v\"}}",
	    "u0000", "a key in 'metadata'");
	ck_assert_int_ne(message_decode(dm, sizeof(dm) - 1, &msg, &cause), 0);
	ck_assert_ptr_nonnull(strstr(cause, "field 'id'"));
	free(cause);
	cause = NULL;
	/* "\\\\u0000" in the text is a backslash and "u0000": fine */
	ck_assert_int_eq(message_from_ingest_request(ok, sizeof(ok) - 1, NULL,
	    &msg, &cause), 0);
	ck_assert_uint_eq(msg->payload_len, 7);
	message_free(msg);
}
END_TEST

/* Bytes that are not UTF-8 are refused, in a known field or not. */
START_TEST(invalid_utf8_is_refused_anywhere)
{
	REFUSED("{\"source\":\"caf\xe9\",\"data\":\"x\"}", "UTF-8", NULL);
	REFUSED("{\"data\":\"x\",\"other\":\"\xff\xfe\"}", "UTF-8", NULL);
	REFUSED("{\"data\":\"x\",\"metadata\":{\"k\":\"\xc0\xaf\"}}", "UTF-8",
	    NULL);
}
END_TEST

/* A batch with any of them is refused whole, as malformed JSON is. */
START_TEST(batch_with_nan_nul_or_bad_utf8_is_refused)
{
	static const char *const bad[] = {
		"[{\"data\":\"x\"},{\"data\":\"y\",\"n\":NaN}]",
		"[{\"data\":\"x\"},{\"data\":\"y\\u0000\"}]",
		"[{\"data\":\"\xff\"}]",
	};
	static const char nul[] = "[{\"data\":\"y\\u0000\"}]";
	struct batch_item *items = NULL;
	char *cause = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		batch_split(bad[i], false, 10, -EINVAL, &items, &cause);
		free(cause);
		cause = NULL;
	}
	ck_assert_int_ne(message_json_check(nul, sizeof(nul) - 1, &cause), 0);
	ck_assert_ptr_nonnull(strstr(cause, "field '[0].data'"));
	free(cause);
}
END_TEST

/* Metadata over each limit fails with a cause that names the limit. */
START_TEST(metadata_over_limits_names_the_limit)
{
	static const struct metadata_limits lim = { 2, 4, 8 };
	static const struct {
		const char *req;
		const char *want;
	} cases[] = {
		{ "{\"data\":\"x\",\"metadata\":{\"a\":\"1\",\"b\":\"2\","
		  "\"c\":\"3\"}}", "MAX_METADATA_KEYS" },
		{ "{\"data\":\"x\",\"metadata\":{\"abcde\":\"1\"}}",
		  "MAX_METADATA_KEY_BYTES" },
		{ "{\"data\":\"x\",\"metadata\":{\"a\":\"123456789\"}}",
		  "MAX_METADATA_VALUE_BYTES" },
	};
	const char *ok = "{\"data\":\"x\",\"metadata\":{\"abcd\":\"12345678\","
	    "\"b\":\"\"}}";
	struct data_message *msg = NULL;
	char *cause = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		ck_assert_int_ne(message_from_ingest_request(cases[i].req,
		    strlen(cases[i].req), &lim, &msg, &cause), 0);
		ck_assert_ptr_null(msg);
		ck_assert_msg(cause != NULL && strstr(cause, cases[i].want) !=
		    NULL, "cause '%s' does not name %s", cause ? cause : "",
		    cases[i].want);
		free(cause);
		cause = NULL;
	}
	ck_assert_int_eq(message_from_ingest_request(ok, strlen(ok), &lim,
	    &msg, &cause), 0);
	ck_assert_uint_eq(msg->n_metadata, 2);
	message_free(msg);
}
END_TEST

/* Encode the message of an ingest request; its length within the bound. */
static void
assert_encoded_within_bound(const char *req, size_t len)
{
	struct data_message *msg = NULL;
	char *cause = NULL, *enc;
	size_t n;

	ck_assert_msg(message_from_ingest_request(req, len, NULL, &msg,
	    &cause) == 0, "%s", cause ? cause : "");
	enc = message_encode(msg, &n);
	ck_assert_ptr_nonnull(enc);
	ck_assert_msg(n <= message_encoded_max(len), "%zu bytes of a %zu-byte "
	    "request encode to %zu, over the bound %zu", len, len, n,
	    message_encoded_max(len));
	free(enc);
	message_free(msg);
}

/* What a hop after the first must accept is bounded by the request. */
START_TEST(encoded_message_within_bound_of_request)
{
	static const char *const fields[] = { "data", "source" };
	/* what grows most: plain bytes in data, escapes elsewhere */
	static const char *const units[] = { "a", "\\u00e9", "\\/", "\\n",
		"\\u0001", "\xc3\xa9", "\\\"" };
	char *req = malloc(1 << 20);

	ck_assert_ptr_nonnull(req);
	for (size_t f = 0; f < 2; f++) {
		for (size_t u = 0; u < sizeof(units) / sizeof(*units); u++) {
			size_t n = (size_t)sprintf(req, "{\"%s\":\"",
			    fields[f]);

			for (int i = 0; i < 50000; i++)
				n += (size_t)sprintf(req + n, "%s", units[u]);
			n += (size_t)sprintf(req + n, "\",\"metadata\":"
			    "{\"k\":\"%s%s\"}}", units[u], units[u]);
			assert_encoded_within_bound(req, n);
		}
	}
	assert_encoded_within_bound("{}", 2);
	free(req);
}
END_TEST

/* Split body; the test fails unless that gives rc. */
static size_t
batch_split(const char *body, bool ndjson, size_t max, int want,
    struct batch_item **items, char **cause)
{
	size_t n = 99;
	int rc = message_batch_from_request(body, strlen(body), ndjson ?
	    MESSAGE_BATCH_NDJSON : 0, max,
	    NULL, items, &n, cause);

	ck_assert_msg(rc == want, "batch %s: %d, not %d (%s)", body, rc, want,
	    *cause != NULL ? *cause : "no cause");
	if (rc != 0) {
		ck_assert_ptr_null(*items);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_nonnull(*cause);
	}
	return n;
}

START_TEST(batch_array_gives_one_message_per_item_in_order)
{
	const char *body = "[{\"source\":\"a\",\"data\":\"1\"},"
	    "{\"source\":\"b\",\"data\":\"2\",\"metadata\":{\"k\":\"v\"}}]";
	struct batch_item *items = NULL;
	char *cause = NULL;
	size_t n = batch_split(body, false, 10, 0, &items, &cause);

	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(items[0].msg->source, "a");
	ck_assert_str_eq(items[1].msg->source, "b");
	ck_assert_uint_eq(items[1].msg->n_metadata, 1);
	ck_assert_str_ne(items[0].msg->id, items[1].msg->id);
	ck_assert_ptr_null(items[0].error);
	message_batch_free(items, n);
}
END_TEST

START_TEST(batch_ndjson_gives_one_message_per_line)
{
	const char *body = "{\"source\":\"a\",\"data\":\"1\"}\r\n\n"
	    "  \n{\"source\":\"b\",\"data\":\"2\"}";
	struct batch_item *items = NULL;
	char *cause = NULL;
	size_t n = batch_split(body, true, 10, 0, &items, &cause);

	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(items[0].msg->source, "a");
	ck_assert_str_eq(items[1].msg->source, "b");
	message_batch_free(items, n);
}
END_TEST

START_TEST(batch_mixed_items_are_judged_each_on_its_own)
{
	const char *body = "[{\"source\":\"a\"},{\"source\":7},\"x\","
	    "{\"source\":\"d\",\"idempotency_key\":\"k-1\"},"
	    "{\"source\":\"e\",\"idempotency_key\":\"\"}]";
	const char *nd = "{\"source\":\"a\"}\n{\"source\":\n{\"source\":\"c\"}\n";
	struct batch_item *items = NULL;
	char *cause = NULL, id[37];
	size_t n = batch_split(body, false, 10, 0, &items, &cause);

	ck_assert_uint_eq(n, 5);
	ck_assert_ptr_nonnull(items[0].msg);
	ck_assert_ptr_null(items[1].msg);
	ck_assert_ptr_nonnull(strstr(items[1].error, "source"));
	ck_assert_ptr_null(items[2].msg);
	ck_assert_ptr_nonnull(items[2].error);
	ck_assert_int_eq(message_id_for_key("k-1", id, &cause), 0);
	ck_assert_str_eq(items[3].msg->id, id);
	ck_assert_ptr_null(items[4].msg);
	ck_assert_ptr_nonnull(strstr(items[4].error, "Idempotency-Key"));
	message_batch_free(items, n);

	n = batch_split(nd, true, 10, 0, &items, &cause);
	ck_assert_uint_eq(n, 3);
	ck_assert_ptr_nonnull(items[0].msg);
	ck_assert_ptr_null(items[1].msg);
	ck_assert_ptr_nonnull(strstr(items[1].error, "malformed JSON"));
	ck_assert_str_eq(items[2].msg->source, "c");
	message_batch_free(items, n);
}
END_TEST

START_TEST(batch_of_singles_judges_each_as_a_single_request)
{
	/* what POST /ingest says of each line, and the batch of singles */
	static const char *const lines[] = {
		"{\"source\":\"a\",\"idempotency_key\":\"k-1\"}",
		"{\"source\":\"b\",\"idempotency_key\":\"\"}",
		"{\"source\":7}", "{\"source\":", "[1]",
	};
	size_t nl = sizeof(lines) / sizeof(*lines), n = 0, len = 0;
	struct batch_item *items = NULL;
	struct data_message *m = NULL;
	char body[512], *cause = NULL, *why = NULL, id[37];

	for (size_t i = 0; i < nl; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "%s\n",
		    lines[i]);
	ck_assert_int_eq(message_batch_from_request(body, len,
	    MESSAGE_BATCH_NDJSON | MESSAGE_BATCH_SINGLES, 10, NULL, &items, &n,
	    &cause), 0);
	ck_assert_uint_eq(n, nl);
	ck_assert_int_eq(message_id_for_key("k-1", id, &cause), 0);
	ck_assert_str_ne(items[0].msg->id, id);
	for (size_t i = 0; i < nl; i++) {
		int rc = message_from_ingest_request(lines[i],
		    strlen(lines[i]), NULL, &m, &why);

		ck_assert_int_eq(rc == 0, items[i].msg != NULL);
		if (rc != 0)
			ck_assert_str_eq(items[i].error, why);
		message_free(m);
		m = NULL;
		free(why);
		why = NULL;
	}
	message_batch_free(items, n);
}
END_TEST

START_TEST(batch_malformed_or_empty_body_is_refused_whole)
{
	static const char *const bad[] = {
		"[{\"source\":\"a\"}", "{\"source\":\"a\"}", "[] x", "",
		"[]", "[{\"source\":\"a\tb\"}]", "null",
	};
	struct batch_item *items = NULL;
	char *cause = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		batch_split(bad[i], false, 10, -EINVAL, &items, &cause);
		free(cause);
		cause = NULL;
	}
	/* NDJSON with no line holds no message either */
	batch_split(" \n\n", true, 10, -EINVAL, &items, &cause);
	free(cause);
}
END_TEST

START_TEST(batch_over_max_items_is_too_large)
{
	struct batch_item *items = NULL;
	char *cause = NULL;

	batch_split("[{},{},{}]", false, 2, MESSAGE_EBATCH, &items, &cause);
	ck_assert_ptr_nonnull(strstr(cause, "at most 2"));
	free(cause);
	cause = NULL;
	batch_split("{}\n{}\n{}\n", true, 2, MESSAGE_EBATCH, &items, &cause);
	free(cause);
	cause = NULL;
	ck_assert_uint_eq(batch_split("[{},{}]", false, 2, 0, &items, &cause),
	    2);
	message_batch_free(items, 2);
}
END_TEST

START_TEST(batch_encoded_bound_holds)
{
	const char *body = "[{\"source\":\"s\",\"data\":\"x\"},{},{},{}]";
	struct batch_item *items = NULL;
	char *cause = NULL, *enc;
	size_t n = batch_split(body, false, 10, 0, &items, &cause), len,
	    total = 2;

	for (size_t i = 0; i < n; i++) {
		enc = message_encode(items[i].msg, &len);
		total += len + 1;
		free(enc);
	}
	ck_assert_uint_le(total, message_batch_encoded_max(strlen(body), n));
	message_batch_free(items, n);
}
END_TEST

Suite *
message_suite(void)
{
	Suite *s = suite_create("message");
	TCase *tc;
	int nvec = (int)(sizeof(rfc4648) / sizeof(*rfc4648));

	tc = tcase_create("codec");
	tcase_add_test(tc, go_encoding_decodes_all_fields);
	tcase_add_test(tc, go_encoding_round_trips_to_same_bytes);
	tcase_add_test(tc, empty_fields_are_omitted_on_encode);
	tcase_add_test(tc, metadata_keys_are_sorted);
	tcase_add_test(tc, absent_and_null_optional_fields_decode_empty);
	tcase_add_test(tc, binary_payload_round_trips_through_json);
	tcase_add_test(tc, bad_base64_payload_is_rejected);
	tcase_add_test(tc, missing_id_is_rejected);
	tcase_add_test(tc, ill_typed_fields_are_rejected_naming_the_field);
	tcase_add_test(tc, malformed_json_is_rejected);
	tcase_add_test(tc, trailing_garbage_is_rejected);
	tcase_add_test(tc, non_object_top_level_is_rejected);
	tcase_add_test(tc, decode_does_not_read_past_len);
	suite_add_tcase(s, tc);

	tc = tcase_create("base64");
	tcase_add_loop_test(tc, base64_encodes_rfc4648_vectors, 0, nvec);
	tcase_add_loop_test(tc, base64_decodes_rfc4648_vectors, 0, nvec);
	tcase_add_test(tc, base64_round_trips_every_byte_value);
	tcase_add_test(tc, base64_rejects_bad_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("ingest");
	tcase_add_test(tc, ingest_request_gets_fresh_uuid_v4_and_current_time);
	tcase_add_test(tc, ingest_request_data_is_raw_bytes_encoded_as_base64);
	tcase_add_test(tc, ingest_request_with_wrong_types_is_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("result");
	tcase_add_test(tc, utf8_result_is_a_json_string);
	tcase_add_test(tc, invalid_utf8_result_is_base64_with_encoding);
	tcase_add_test(tc, failed_result_json_carries_error);
	tcase_add_test(tc, error_body_is_json_with_error_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_test(tc, utf8_accepts_ascii_and_multibyte_text);
	tcase_add_test(tc, utf8_rejects_overlongs);
	tcase_add_test(tc, utf8_rejects_surrogates);
	tcase_add_test(tc, utf8_rejects_beyond_u10ffff);
	tcase_add_test(tc, utf8_rejects_truncated_and_stray_bytes);
	tcase_add_test(tc, metadata_over_limits_names_the_limit);
	tcase_add_test(tc, raw_control_character_in_a_string_is_refused);
	tcase_add_test(tc, nan_and_infinity_are_refused_anywhere);
	tcase_add_test(tc, nul_escape_is_refused_naming_the_field);
	tcase_add_test(tc, invalid_utf8_is_refused_anywhere);
	tcase_add_test(tc, idempotency_key_gives_one_id_per_key);
	tcase_add_test(tc, bad_idempotency_keys_are_refused);
	tcase_add_test(tc, a_clients_key_gives_an_id_of_its_own);
	tcase_add_test(tc, the_client_is_on_the_wire_when_there_is_one);
	tcase_add_test(tc, blanks_around_a_key_are_not_part_of_it);
	tcase_add_test(tc, fingerprint_is_the_decoded_content_not_its_spelling);
	tcase_add_test(tc, fingerprint_ignores_metadata_order_id_and_time);
	tcase_add_test(tc, fingerprint_tells_every_field_apart);
	tcase_add_test(tc, a_keyed_batch_item_has_the_fingerprint_a_single_has);
	tcase_add_test(tc, encoded_message_within_bound_of_request);
	suite_add_tcase(s, tc);
	tc = tcase_create("batch");
	tcase_add_test(tc, batch_array_gives_one_message_per_item_in_order);
	tcase_add_test(tc, batch_ndjson_gives_one_message_per_line);
	tcase_add_test(tc, batch_mixed_items_are_judged_each_on_its_own);
	tcase_add_test(tc, batch_of_singles_judges_each_as_a_single_request);
	tcase_add_test(tc, batch_malformed_or_empty_body_is_refused_whole);
	tcase_add_test(tc, batch_over_max_items_is_too_large);
	tcase_add_test(tc, batch_with_nan_nul_or_bad_utf8_is_refused);
	tcase_add_test(tc, batch_encoded_bound_holds);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(message_suite)
