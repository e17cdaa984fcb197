/* message.c - DataMessage and ProcessingResult JSON (json-c), base64, UTF-8 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <json-c/json.h>
#include <uuid/uuid.h>

#include "message.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding, as Go's encoding/json writes []byte. */
char *
base64_encode(const unsigned char *in, size_t len, size_t *out_len)
{
	size_t n = 4 * ((len + 2) / 3), o = 0, i;
	char *out = malloc(n + 1);

	if (out == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	if (out_len != NULL)
		*out_len = o;
	return out;
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict standard base64, padding required, as Go's decoder wants it. */
int
base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	size_t o = 0, pad = 0;

	if (len % 4 != 0)
		return -EINVAL;
	if (len > 0 && in[len - 1] == '=')
		pad = (len > 1 && in[len - 2] == '=') ? 2 : 1;
	if ((buf = malloc(len / 4 * 3 + 1)) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		size_t real = (i + 4 == len) ? 4 - pad : 4;

		for (size_t k = 0; k < 4; k++) {
			v[k] = k < real ? b64_value((unsigned char)in[i + k]) : 0;
			if (v[k] < 0) {
				free(buf);
				return -EINVAL;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		buf[o++] = (unsigned char)(w >> 16);
		if (real > 2)
			buf[o++] = (unsigned char)(w >> 8);
		if (real > 3)
			buf[o++] = (unsigned char)w;
	}
	buf[o] = '\0';
	*out = buf;
	*out_len = o;
	return 0;
}

/* Well-formed UTF-8: no overlongs, no surrogates, nothing past U+10FFFF. */
bool
utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

void
message_free(struct data_message *msg)
{
	if (msg == NULL)
		return;
	free(msg->id);
	free(msg->source);
	free(msg->payload);
	for (size_t i = 0; i < msg->n_metadata; i++) {
		free(msg->metadata[i].key);
		free(msg->metadata[i].value);
	}
	free(msg->metadata);
	free(msg->client);
	free(msg->dedup_id);
	free(msg->fingerprint);
	free(msg);
}

static int
meta_cmp(const void *a, const void *b)
{
	return strcmp(((const struct meta_pair *)a)->key,
	    ((const struct meta_pair *)b)->key);
}

/* Whether metadata obj keeps within lim; if not, why in *cause. */
static int
metadata_check(struct json_object *obj, const struct metadata_limits *lim,
    char **cause)
{
	size_t keys = (size_t)json_object_object_length(obj);

	if (lim == NULL)
		return 0;
	if (lim->max_keys > 0 && keys > lim->max_keys) {
		if (asprintf(cause, "metadata has %zu keys: the limit is %zu "
		    "(MAX_METADATA_KEYS)", keys, lim->max_keys) < 0)
			*cause = NULL;
		return -EINVAL;
	}
	json_object_object_foreach(obj, key, val) {
		size_t kl = strlen(key);
		size_t vl = json_object_is_type(val, json_type_string) ?
		    (size_t)json_object_get_string_len(val) : 0;

		if (lim->max_key_bytes > 0 && kl > lim->max_key_bytes) {
			if (asprintf(cause, "a metadata key of %zu bytes: the "
			    "limit is %zu (MAX_METADATA_KEY_BYTES)", kl,
			    lim->max_key_bytes) < 0)
				*cause = NULL;
			return -EINVAL;
		}
		if (lim->max_value_bytes > 0 && vl > lim->max_value_bytes) {
			if (asprintf(cause, "metadata value for a key has %zu "
			    "bytes: the limit is %zu "
			    "(MAX_METADATA_VALUE_BYTES)", vl,
			    lim->max_value_bytes) < 0)
				*cause = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

/* Copy a JSON object of strings into msg->metadata, sorted by key. */
static int
metadata_from_json(struct data_message *msg, struct json_object *obj,
    const struct metadata_limits *lim, char **cause)
{
	size_t n = 0;
	int rc;

	if (!json_object_is_type(obj, json_type_object)) {
		*cause = strdup("field 'metadata' must be an object of strings");
		return -EINVAL;
	}
	if ((rc = metadata_check(obj, lim, cause)) != 0)
		return rc;
	msg->metadata = calloc((size_t)json_object_object_length(obj) + 1,
	    sizeof(*msg->metadata));
	if (msg->metadata == NULL)
		return -ENOMEM;
	json_object_object_foreach(obj, key, val) {
		if (!json_object_is_type(val, json_type_string)) {
			if (asprintf(cause, "metadata value for '%s' must be "
			    "a string", key) < 0)
				*cause = NULL;
			return -EINVAL;
		}
		msg->metadata[n].key = strdup(key);
		msg->metadata[n].value = strdup(json_object_get_string(val));
		msg->n_metadata = ++n;
		if (msg->metadata[n - 1].key == NULL ||
		    msg->metadata[n - 1].value == NULL)
			return -ENOMEM;
	}
	qsort(msg->metadata, n, sizeof(*msg->metadata), meta_cmp);
	return 0;
}

/*
 * Where the text scan of a JSON value is: the keys and array indexes down
 * to here, for naming the field a fault is in.
 */
#define SCAN_DEPTH 8

struct json_scan {
	int depth;			/* containers open */
	struct {
		bool array;
		bool want_key;		/* object: the next string is a key */
		size_t index;		/* array: the item */
		const char *key;	/* object: the current key, raw */
		size_t key_len;
	} at[SCAN_DEPTH];
};

/* The field at depth d and above as a path: "metadata.k", "[2].source". */
static void
scan_path(const struct json_scan *js, char *buf, size_t size)
{
	size_t n = 0;
	int depth = js->depth < SCAN_DEPTH ? js->depth : SCAN_DEPTH;

	buf[0] = '\0';
	for (int d = 0; d < depth && n < size; d++) {
		if (js->at[d].array)
			n += (size_t)snprintf(buf + n, size - n, "[%zu]",
			    js->at[d].index);
		else if (js->at[d].key != NULL && !js->at[d].want_key)
			n += (size_t)snprintf(buf + n, size - n, "%s%.*s",
			    n > 0 ? "." : "", (int)(js->at[d].key_len > 40 ?
			    40 : js->at[d].key_len), js->at[d].key);
	}
}

/* A fault at the scan's place, as the cause. */
static int
scan_fault(const struct json_scan *js, const char *what, bool in_key,
    char **cause)
{
	char path[128];

	scan_path(js, path, sizeof(path));
	if (path[0] == '\0' ? asprintf(cause, "%s", what) < 0 :
	    asprintf(cause, "%s '%s': %s", in_key ? "a key in" : "field",
	    path, what) < 0)
		*cause = NULL;
	return -EINVAL;
}

/* One structural byte outside strings: containers, keys, indexes. */
static void
scan_structure(struct json_scan *js, unsigned char c)
{
	int d = js->depth - 1;

	if (c == '{' || c == '[') {
		if (js->depth < SCAN_DEPTH) {
			js->at[js->depth].array = c == '[';
			js->at[js->depth].want_key = c == '{';
			js->at[js->depth].index = 0;
			js->at[js->depth].key = NULL;
		}
		js->depth++;
	} else if (c == '}' || c == ']') {
		js->depth--;
	} else if (c == ',' && d >= 0 && d < SCAN_DEPTH) {
		if (js->at[d].array)
			js->at[d].index++;
		else
			js->at[d].want_key = true;
	}
}

/*
 * What json-c takes but a message must not have, in the text of a value
 * json-c parsed already: bytes that are not UTF-8; a raw control character
 * in a string (JSON forbids it, json-c would write it escaped, up to six
 * times as long, past what message_encoded_max promises the next hop);
 * NaN or Infinity, which are not JSON, anywhere; a \u0000, which would cut
 * a string short in C, anywhere. Faults in a string name its field.
 */
int
message_json_check(const char *json, size_t len, char **cause)
{
	struct json_scan js = { 0 };
	const char *str = NULL;		/* the string being read */
	bool escaped = false;

	*cause = NULL;
	if (!utf8_valid((const unsigned char *)json, len)) {
		*cause = strdup("malformed JSON: not valid UTF-8");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)json[i];
		int d = js.depth - 1;
		bool is_key = d >= 0 && d < SCAN_DEPTH && !js.at[d].array &&
		    js.at[d].want_key;

		if (str == NULL) {
			if (c == '"')
				str = json + i + 1;
			else if (c == 'N' || c == 'I')
				return scan_fault(&js, "NaN and Infinity are "
				    "not JSON numbers", false, cause);
			else
				scan_structure(&js, c);
		} else if (escaped) {
			escaped = false;
			if (c == 'u' && len - i > 4 &&
			    memcmp(json + i + 1, "0000", 4) == 0)
				return scan_fault(&js, "a \\u0000 (NUL) is "
				    "not allowed", is_key, cause);
		} else if (c == '\\') {
			escaped = true;
		} else if (c == '"') {
			if (is_key) {
				js.at[d].key = str;
				js.at[d].key_len = (size_t)(json + i - str);
				js.at[d].want_key = false;
			}
			str = NULL;
		} else if (c < 0x20) {
			*cause = strdup("malformed JSON: a control character "
			    "in a string");
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Whether the n bytes at s are all of blanks; bounded by n, since a body
 * need not end in a NUL.
 */
static bool
only_blanks(const char *s, size_t n, const char *blanks)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0' || strchr(blanks, s[i]) == NULL)
			return false;
	}
	return true;
}

static struct json_object *
parse_object(const char *json, size_t len, char **cause)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj;

	if (tok == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT); /* as Go */
	obj = json_tokener_parse_ex(tok, json, (int)len);
	if (obj == NULL || tok->char_offset != (int)len) {
		/* trailing bytes after the value are garbage, not JSON */
		if (obj == NULL || !only_blanks(json + tok->char_offset,
		    len - (size_t)tok->char_offset, " \t\r\n")) {
			json_object_put(obj);
			obj = NULL;
			*cause = strdup("malformed JSON");
		}
	}
	json_tokener_free(tok);
	if (obj != NULL && message_json_check(json, len, cause) != 0) {
		json_object_put(obj);
		obj = NULL;
	}
	if (obj != NULL && !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
		*cause = strdup("request body must be a JSON object");
	}
	return obj;
}

/* The string field key, or NULL when absent; -EINVAL when not a string. */
static int
get_string(struct json_object *obj, const char *key, const char **out,
    size_t *len, char **cause)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		if (asprintf(cause, "field '%s' must be a string", key) < 0)
			*cause = NULL;
		return -EINVAL;
	}
	*out = json_object_get_string(v);
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return 0;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? strdup(s) : NULL;
}

/* Start a message with what both kinds of body share, its "source". */
static int
message_begin_obj(struct json_object *obj, struct data_message **msg,
    char **cause)
{
	const char *s;

	*msg = NULL;
	if (get_string(obj, "source", &s, NULL, cause) != 0)
		return -EINVAL;
	if ((*msg = calloc(1, sizeof(**msg))) == NULL ||
	    (s != NULL && *s != '\0' && ((*msg)->source = strdup(s)) == NULL)) {
		free(*msg);
		*msg = NULL;
		*cause = strdup("out of memory");
		return -ENOMEM;
	}
	return 0;
}

int
message_decode_object(struct json_object *obj, struct data_message **out,
    char **cause)
{
	struct json_object *v;
	struct data_message *msg = NULL;
	const char *s;
	size_t slen;
	int rc;

	*out = NULL;
	*cause = NULL;
	if (!json_object_is_type(obj, json_type_object)) {
		*cause = strdup("request body must be a JSON object");
		return -EINVAL;
	}
	if ((rc = message_begin_obj(obj, &msg, cause)) != 0)
		return rc;
	rc = -EINVAL;
	if (get_string(obj, "id", &s, NULL, cause) != 0)
		goto out;
	msg->id = dup_or_null(s);
	if (json_object_object_get_ex(obj, "timestamp", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_int)) {
			*cause = strdup("field 'timestamp' must be an integer");
			goto out;
		}
		msg->timestamp = json_object_get_int64(v);
	}
	if (get_string(obj, "client", &s, NULL, cause) != 0)
		goto out;
	msg->client = dup_or_null(s);
	if (get_string(obj, "payload", &s, &slen, cause) != 0)
		goto out;
	if (s != NULL && base64_decode(s, slen, &msg->payload,
	    &msg->payload_len) != 0) {
		*cause = strdup("field 'payload' must be standard base64");
		goto out;
	}
	if (json_object_object_get_ex(obj, "metadata", &v) &&
	    !json_object_is_type(v, json_type_null) &&
	    (rc = metadata_from_json(msg, v, NULL, cause)) != 0)
		goto out;
	if (msg->id == NULL) {
		*cause = strdup("field 'id' is required");
		rc = -EINVAL;
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		message_free(msg);
		msg = NULL;
	}
	*out = msg;
	return rc;
}

int
message_decode(const char *json, size_t len, struct data_message **out,
    char **cause)
{
	struct json_object *obj;
	int rc;

	*out = NULL;
	*cause = NULL;
	if ((obj = parse_object(json, len, cause)) == NULL)
		return -EINVAL;
	rc = message_decode_object(obj, out, cause);
	json_object_put(obj);
	return rc;
}

/* diplom's own namespace for the ids of keyed messages */
static const uuid_t key_namespace = {
	0x6b, 0x1f, 0x3e, 0x52, 0x9d, 0x4a, 0x4c, 0x1b,
	0x8e, 0x27, 0x5a, 0xc0, 0x31, 0xd4, 0x77, 0x09,
};

int
message_id_for_key(const char *key, char id[37], char **cause)
{
	size_t n;
	uuid_t uu;

	*cause = NULL;
	/* blanks around a key are not part of it, header or batch item */
	for (; *key == ' ' || *key == '\t'; key++)
		;
	for (n = strlen(key); n > 0 && (key[n - 1] == ' ' ||
	    key[n - 1] == '\t'); n--)
		;
	if (n == 0 || n > IDEMPOTENCY_KEY_MAX) {
		if (asprintf(cause, "Idempotency-Key must be 1 to %d "
		    "characters, not %zu", IDEMPOTENCY_KEY_MAX, n) < 0)
			*cause = NULL;
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];

		if (c < 0x20 || c > 0x7e) {
			*cause = strdup("Idempotency-Key must be printable "
			    "ASCII");
			return -EINVAL;
		}
	}
	uuid_generate_sha1(uu, key_namespace, key, n);
	uuid_unparse_lower(uu, id);
	return 0;
}

/* The ids of keyed messages of named clients: a namespace of their own */
static const uuid_t client_key_namespace = {
	0x3c, 0x90, 0x0e, 0x5d, 0x62, 0xb8, 0x4f, 0x07,
	0xa1, 0x4e, 0xd2, 0x19, 0x8b, 0x7f, 0x20, 0x6a,
};

int
message_id_for_client_key(const char *client, const char *key, char id[37],
    char **cause)
{
	char *name = NULL;
	uuid_t uu;
	int rc, n;

	if ((rc = message_id_for_key(key, id, cause)) != 0 || client == NULL)
		return rc;
	/* a name holds no ':', so "name:key" is one pair only */
	if ((n = asprintf(&name, "%s:%s", client, key)) < 0) {
		*cause = strdup("out of memory");
		return -ENOMEM;
	}
	uuid_generate_sha1(uu, client_key_namespace, name, (size_t)n);
	uuid_unparse_lower(uu, id);
	free(name);
	return 0;
}

bool
message_id_is_keyed(const char *id)
{
	/* 8-4-4: the version digit opens the third group */
	return id != NULL && strlen(id) == 36 && id[14] == '5';
}

/* Feed n to h as 8 bytes, most significant first. */
static int
fp_count(gnutls_hash_hd_t h, size_t n)
{
	unsigned char be[8];

	for (int i = 0; i < 8; i++)
		be[i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
	return gnutls_hash(h, be, sizeof(be)) != 0 ? -EIO : 0;
}

/* Feed n bytes to h, after their length: no two fields run together. */
static int
fp_field(gnutls_hash_hd_t h, const void *p, size_t n)
{
	if (fp_count(h, n) != 0)
		return -EIO;
	return n > 0 && gnutls_hash(h, p, n) != 0 ? -EIO : 0;
}

int
message_fingerprint(const struct data_message *msg,
    char out[MESSAGE_FINGERPRINT_LEN + 1])
{
	static const char tag[] = "diplom fingerprint 1";
	static const char hex[] = "0123456789abcdef";
	const char *src = msg->source != NULL ? msg->source : "";
	unsigned char digest[32];
	gnutls_hash_hd_t h;
	int rc = 0;

	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) != 0)
		return -EIO;
	/* the metadata is sorted by key already, whatever order it came in */
	if (fp_field(h, tag, sizeof(tag) - 1) != 0 ||
	    fp_field(h, src, strlen(src)) != 0 ||
	    fp_field(h, msg->payload, msg->payload_len) != 0 ||
	    fp_count(h, msg->n_metadata) != 0)
		rc = -EIO;
	for (size_t i = 0; rc == 0 && i < msg->n_metadata; i++) {
		if (fp_field(h, msg->metadata[i].key,
		    strlen(msg->metadata[i].key)) != 0 ||
		    fp_field(h, msg->metadata[i].value,
		    strlen(msg->metadata[i].value)) != 0)
			rc = -EIO;
	}
	gnutls_hash_deinit(h, digest);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < sizeof(digest); i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xf];
	}
	out[MESSAGE_FINGERPRINT_LEN] = '\0';
	return 0;
}

int
message_set_key(struct data_message *msg, const char *id)
{
	char fp[MESSAGE_FINGERPRINT_LEN + 1];
	char *nid = strdup(id), *nfp = NULL;

	if (nid == NULL || message_fingerprint(msg, fp) != 0 ||
	    (nfp = strdup(fp)) == NULL) {
		free(nid);
		return -ENOMEM;
	}
	free(msg->id);
	free(msg->fingerprint);
	msg->id = nid;
	msg->fingerprint = nfp;
	return 0;
}

size_t
message_encoded_max(size_t n)
{
	/*
	 * id, timestamp and the names of the fields: well under 256; a
	 * client's name (64 at most) and its field: under 96 more
	 */
	return (n + 2) / 3 * 4 + 256 + 96;
}

size_t
message_batch_encoded_max(size_t n, size_t items)
{
	/* each item may round its base64 up and adds its own fields, a comma */
	return message_encoded_max(n) + items * (message_encoded_max(0) + 8);
}

/* The message of one ingest request already parsed; obj stays the caller's. */
static int
ingest_from_object(struct json_object *obj,
    const struct metadata_limits *limits, struct data_message **out,
    char **cause)
{
	struct json_object *v;
	struct data_message *msg = NULL;
	const char *s;
	size_t slen = 0;
	uuid_t uu;
	int rc;

	*out = NULL;
	if ((rc = message_begin_obj(obj, &msg, cause)) != 0)
		return rc;
	rc = -EINVAL;
	if (get_string(obj, "data", &s, &slen, cause) != 0)
		goto out;
	if (s != NULL && slen > 0) {
		if ((msg->payload = malloc(slen)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(msg->payload, s, slen);
		msg->payload_len = slen;
	}
	if (json_object_object_get_ex(obj, "metadata", &v) &&
	    !json_object_is_type(v, json_type_null) &&
	    (rc = metadata_from_json(msg, v, limits, cause)) != 0)
		goto out;
	if ((msg->id = malloc(37)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	uuid_generate_random(uu);
	uuid_unparse_lower(uu, msg->id);
	msg->timestamp = (int64_t)time(NULL);
	rc = 0;
out:
	if (rc != 0)
		message_free(msg);
	else
		*out = msg;
	return rc;
}

int
message_from_ingest_request(const char *json, size_t len,
    const struct metadata_limits *limits, struct data_message **out,
    char **cause)
{
	struct json_object *obj;
	int rc;

	*out = NULL;
	*cause = NULL;
	if ((obj = parse_object(json, len, cause)) == NULL)
		return -EINVAL;
	rc = ingest_from_object(obj, limits, out, cause);
	json_object_put(obj);
	return rc;
}

/* A batch holds 1 to max_items messages (0: no limit). */
static int
batch_count_check(size_t count, size_t max_items, char **cause)
{
	if (count == 0) {
		*cause = strdup("a batch must hold at least one message");
		return -EINVAL;
	}
	if (max_items > 0 && count > max_items) {
		if (asprintf(cause, "a batch holds at most %zu messages, not "
		    "%zu (MAX_BATCH)", max_items, count) < 0)
			*cause = NULL;
		return MESSAGE_EBATCH;
	}
	return 0;
}

/*
 * One item of a batch: its message, or why not. An "idempotency_key" gives
 * it the id a single request with that Idempotency-Key would have.
 */
static void
batch_item_from_object(struct json_object *obj, unsigned flags,
    const struct metadata_limits *limits, struct batch_item *item)
{
	const char *key = NULL;
	char id[37];

	item->error = NULL;
	if (!json_object_is_type(obj, json_type_object)) {
		item->error = strdup("a batch item must be a JSON object");
		return;
	}
	if (!(flags & MESSAGE_BATCH_SINGLES) && get_string(obj,
	    "idempotency_key", &key, NULL, &item->error) != 0)
		return;
	if (key != NULL && message_id_for_key(key, id, &item->error) != 0)
		return;
	if (ingest_from_object(obj, limits, &item->msg, &item->error) != 0) {
		if (item->error == NULL)
			item->error = strdup("invalid request");
		return;
	}
	if (key != NULL && (message_set_key(item->msg, id) != 0 ||
	    (item->key = strdup(key)) == NULL)) {
		message_free(item->msg);
		item->msg = NULL;
		item->error = strdup("out of memory");
	}
}

/* The items of a JSON array body. */
static int
batch_from_array(const char *body, size_t len, unsigned flags,
    size_t max_items,
    const struct metadata_limits *limits, struct batch_item **items,
    size_t *n, char **cause)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *arr = NULL;
	size_t count = 0;
	int rc = -EINVAL;

	if (tok == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	arr = json_tokener_parse_ex(tok, body, (int)len);
	if (arr == NULL || !only_blanks(body + tok->char_offset,
	    len - (size_t)tok->char_offset, " \t\r\n")) {
		*cause = strdup("malformed JSON");
		goto out;
	}
	if (message_json_check(body, len, cause) != 0)
		goto out;
	if (!json_object_is_type(arr, json_type_array)) {
		*cause = strdup("a batch must be a JSON array of ingest "
		    "requests, or NDJSON");
		goto out;
	}
	count = json_object_array_length(arr);
	if ((rc = batch_count_check(count, max_items, cause)) != 0)
		goto out;
	if ((*items = calloc(count, sizeof(**items))) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		batch_item_from_object(json_object_array_get_idx(arr, i),
		    flags, limits, &(*items)[i]);
	*n = count;
out:
	json_object_put(arr);
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}

/* The next non-blank line of [*p, end), without its end; NULL: none left. */
static const char *
ndjson_next(const char **p, const char *end, size_t *len)
{
	const char *line, *nl;

	while (*p < end) {
		line = *p;
		nl = memchr(line, '\n', (size_t)(end - line));
		*p = nl != NULL ? nl + 1 : end;
		*len = (size_t)((nl != NULL ? nl : end) - line);
		if (!only_blanks(line, *len, " \t\r"))
			return line;
	}
	return NULL;
}

/* The items of an NDJSON body: each line is an item of its own. */
static int
batch_from_ndjson(const char *body, size_t len, unsigned flags,
    size_t max_items,
    const struct metadata_limits *limits, struct batch_item **items,
    size_t *n, char **cause)
{
	const char *p = body, *end = body + len, *line;
	struct json_object *obj;
	size_t count = 0, llen, i = 0;
	int rc;

	while (ndjson_next(&p, end, &llen) != NULL)
		count++;
	if ((rc = batch_count_check(count, max_items, cause)) != 0)
		return rc;
	if ((*items = calloc(count, sizeof(**items))) == NULL)
		return -ENOMEM;
	for (p = body; (line = ndjson_next(&p, end, &llen)) != NULL; i++) {
		if ((obj = parse_object(line, llen, &(*items)[i].error)) ==
		    NULL)
			continue;
		batch_item_from_object(obj, flags, limits, &(*items)[i]);
		json_object_put(obj);
	}
	*n = count;
	return 0;
}

int
message_batch_from_request(const char *body, size_t len, unsigned flags,
    size_t max_items, const struct metadata_limits *limits,
    struct batch_item **items, size_t *n, char **cause)
{
	*items = NULL;
	*n = 0;
	*cause = NULL;
	if (flags & MESSAGE_BATCH_NDJSON)
		return batch_from_ndjson(body, len, flags, max_items, limits,
		    items, n, cause);
	return batch_from_array(body, len, flags, max_items, limits, items,
	    n, cause);
}

void
message_batch_free(struct batch_item *items, size_t n)
{
	if (items == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		message_free(items[i].msg);
		free(items[i].error);
		free(items[i].key);
	}
	free(items);
}

/* Serialise obj to a malloc'd string, without escaping '/' as Go does not. */
static char *
json_take(struct json_object *obj, size_t *len)
{
	size_t n;
	const char *s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	char *out = s != NULL ? strndup(s, n) : NULL;

	json_object_put(obj);
	if (out != NULL && len != NULL)
		*len = n;
	return out;
}

char *
message_encode(const struct data_message *msg, size_t *len)
{
	struct json_object *obj = json_object_new_object();
	char *b64;
	size_t n;

	if (obj == NULL)
		return NULL;
	if (msg->id != NULL && *msg->id != '\0')
		json_object_object_add(obj, "id", json_object_new_string(msg->id));
	if (msg->timestamp != 0)
		json_object_object_add(obj, "timestamp",
		    json_object_new_int64(msg->timestamp));
	if (msg->source != NULL && *msg->source != '\0')
		json_object_object_add(obj, "source",
		    json_object_new_string(msg->source));
	if (msg->client != NULL && *msg->client != '\0')
		json_object_object_add(obj, "client",
		    json_object_new_string(msg->client));
	if (msg->payload_len > 0) {
		if ((b64 = base64_encode(msg->payload, msg->payload_len,
		    &n)) == NULL) {
			json_object_put(obj);
			return NULL;
		}
		json_object_object_add(obj, "payload",
		    json_object_new_string_len(b64, (int)n));
		free(b64);
	}
	if (msg->n_metadata > 0) {
		struct json_object *m = json_object_new_object();

		for (size_t i = 0; i < msg->n_metadata; i++)
			json_object_object_add(m, msg->metadata[i].key,
			    json_object_new_string(msg->metadata[i].value));
		json_object_object_add(obj, "metadata", m);
	}
	return json_take(obj, len);
}

void
result_clear(struct processing_result *res)
{
	free(res->message_id);
	free(res->client);
	free(res->source);
	free(res->error);
	free(res->result);
	free(res->message);
	free(res->fingerprint);
	memset(res, 0, sizeof(*res));
}

char *
result_to_json(const struct processing_result *res, size_t *len)
{
	struct json_object *obj = json_object_new_object();
	bool text = utf8_valid(res->result, res->result_len);

	if (obj == NULL)
		return NULL;
	json_object_object_add(obj, "message_id",
	    json_object_new_string(res->message_id));
	json_object_object_add(obj, "processed_at",
	    json_object_new_int64(res->processed_at));
	json_object_object_add(obj, "success",
	    json_object_new_boolean(res->success));
	json_object_object_add(obj, "error",
	    json_object_new_string(res->error != NULL ? res->error : ""));
	if (text) {
		json_object_object_add(obj, "result", json_object_new_string_len(
		    (const char *)res->result, (int)res->result_len));
	} else {
		size_t n;
		char *b64 = base64_encode(res->result, res->result_len, &n);

		if (b64 == NULL) {
			json_object_put(obj);
			return NULL;
		}
		json_object_object_add(obj, "result",
		    json_object_new_string_len(b64, (int)n));
		json_object_object_add(obj, "result_encoding",
		    json_object_new_string("base64"));
		free(b64);
	}
	json_object_object_add(obj, "deliveries",
	    json_object_new_int64(res->deliveries));
	if (res->client != NULL)
		json_object_object_add(obj, "client",
		    json_object_new_string(res->client));
	return json_take(obj, len);
}

char *
json_error_body(const char *reason, size_t *len)
{
	struct json_object *obj = json_object_new_object();

	if (obj == NULL)
		return NULL;
	json_object_object_add(obj, "error", json_object_new_string(reason));
	return json_take(obj, len);
}
