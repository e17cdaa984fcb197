/* check_role_processor.c - what processing a message means */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>

#include "check_main.h"
#include "check_util.h"
#include "message.h"
#include "role.h"

Suite *role_processor_suite(void);

/* Process raw bytes as they come off the broker, not yet decoded. */
static void
process_raw(const char *raw, const char *id, uint64_t num_delivered,
    struct processing_result *res)
{
	struct delivery d = { .data = raw, .len = strlen(raw), .id = id,
		.num_delivered = num_delivered };

	processor_process(&d, res, 0);
}

START_TEST(processor_process_prefixes_payload)
{
	struct delivery d = { 0 };
	struct processing_result res;

	d.msg = tu_new_msg("wp-x", "hello");
	d.id = d.msg->id;
	d.num_delivered = 1;
	processor_process(&d, &res, 0);
	ck_assert(res.success);
	ck_assert_str_eq(res.message_id, "wp-x");
	ck_assert_uint_eq(res.result_len, 15);
	ck_assert_mem_eq(res.result, "PROCESSED_hello", 15);
	ck_assert_int_gt(res.processed_at, 0);
	result_clear(&res);
	message_free(d.msg);
}
END_TEST

/*
 * A keyed message's row keeps its fingerprint, computed from the body
 * as it came off the broker (it is not on the wire); others keep none.
 */
START_TEST(a_keyed_result_keeps_its_fingerprint)
{
	struct data_message *m;
	struct processing_result res;
	char id[37], fp[MESSAGE_FINGERPRINT_LEN + 1], *cause = NULL, *raw;
	size_t len;

	ck_assert_int_eq(message_id_for_key("k-9", id, &cause), 0);
	m = tu_new_msg(id, "hello");
	ck_assert_int_eq(message_fingerprint(m, fp), 0);
	raw = message_encode(m, &len);
	ck_assert_ptr_nonnull(raw);
	process_raw(raw, id, 1, &res);
	ck_assert(res.success);
	ck_assert_ptr_nonnull(res.fingerprint);
	ck_assert_str_eq(res.fingerprint, fp);
	result_clear(&res);
	free(raw);
	message_free(m);
	m = tu_new_msg("not-keyed", "hello");
	raw = message_encode(m, &len);
	process_raw(raw, "not-keyed", 1, &res);
	ck_assert_ptr_null(res.fingerprint);
	result_clear(&res);
	free(raw);
	message_free(m);
}
END_TEST

START_TEST(processor_process_turns_undecodable_bytes_into_failed_result)
{
	static const char raw[] = "{\"id\":\"r-1\",\"payload\":\"!!\"}";
	struct processing_result res;

	process_raw(raw, "r-1", 1, &res);
	ck_assert(!res.success);
	ck_assert_str_eq(res.message_id, "r-1");
	ck_assert_ptr_nonnull(res.error);
	ck_assert_ptr_nonnull(strstr(res.error, "payload"));
	/* the bytes as they came, for a replay */
	ck_assert_uint_eq(res.message_len, strlen(raw));
	ck_assert_mem_eq(res.message, raw, strlen(raw));
	result_clear(&res);
}
END_TEST

/* Give up on raw bytes delivered n times, with a limit of max. */
static bool
give_up_raw(const char *raw, const char *id, uint64_t n, uint64_t max,
    struct processing_result *res)
{
	struct delivery d = { .data = raw, .len = strlen(raw), .id = id,
		.num_delivered = n };

	return processor_give_up(&d, max, res);
}

START_TEST(processor_gives_up_only_past_the_limit)
{
	static const char raw[] = "{\"id\":\"g-1\",\"source\":\"s\","
	    "\"timestamp\":7,\"payload\":\"aGk=\"}";
	struct processing_result res;

	ck_assert(!give_up_raw(raw, "g-1", 1000, 0, &res));
	ck_assert(!give_up_raw(raw, "g-1", 3, 3, &res));
	ck_assert(give_up_raw(raw, "g-1", 4, 3, &res));
	ck_assert(!res.success);
	ck_assert_str_eq(res.message_id, "g-1");
	ck_assert_str_eq(res.source, "s");
	ck_assert_int_eq(res.timestamp, 7);
	ck_assert_ptr_nonnull(strstr(res.error, "delivered 4 times"));
	ck_assert_uint_eq(res.message_len, strlen(raw));
	ck_assert_mem_eq(res.message, raw, strlen(raw));
	result_clear(&res);
}
END_TEST

START_TEST(processor_gives_up_on_a_decoded_message_keeping_its_encoding)
{
	struct delivery d = { 0 };
	struct processing_result res;
	struct data_message *back = NULL;
	char *cause = NULL;

	d.msg = tu_new_msg("g-3", "hello");
	d.id = d.msg->id;
	d.num_delivered = 3;
	ck_assert(processor_give_up(&d, 2, &res));
	ck_assert_ptr_nonnull(res.message);
	ck_assert_int_eq(message_decode((const char *)res.message,
	    res.message_len, &back, &cause), 0);
	ck_assert_str_eq(back->id, "g-3");
	ck_assert_mem_eq(back->payload, "hello", 5);
	message_free(back);
	result_clear(&res);
	message_free(d.msg);
}
END_TEST

START_TEST(a_processed_message_keeps_no_copy)
{
	struct delivery d = { 0 };
	struct processing_result res;

	d.msg = tu_new_msg("ok-1", "x");
	d.id = d.msg->id;
	processor_process(&d, &res, 0);
	ck_assert(res.success);
	ck_assert_ptr_null(res.message);
	result_clear(&res);
	message_free(d.msg);
}
END_TEST

START_TEST(processor_gives_up_on_bytes_it_cannot_decode_by_their_id)
{
	struct processing_result res;

	ck_assert(give_up_raw("not json", "g-2", 2, 1, &res));
	ck_assert(!res.success);
	ck_assert_str_eq(res.message_id, "g-2");
	result_clear(&res);
	ck_assert(give_up_raw("not json", NULL, 2, 1, &res));
	ck_assert_ptr_null(res.message_id);
	result_clear(&res);
}
END_TEST

START_TEST(processor_process_keeps_binary_payload_bytes)
{
	struct delivery d = { 0 };
	struct processing_result res;

	d.msg = tu_new_msg("wp-b", "ab");
	d.msg->payload[1] = '\0';
	d.id = d.msg->id;
	processor_process(&d, &res, 0);
	ck_assert(res.success);
	ck_assert_uint_eq(res.result_len, 12);
	ck_assert_mem_eq(res.result, "PROCESSED_a\0", 12);
	result_clear(&res);
	message_free(d.msg);
}
END_TEST

START_TEST(processor_process_without_id_has_no_row)
{
	struct processing_result res;

	process_raw("not json", NULL, 0, &res);
	ck_assert(!res.success);
	ck_assert_ptr_null(res.message_id);
	ck_assert_ptr_nonnull(res.error);
	result_clear(&res);
}
END_TEST

/*
 * Memory for a result that cannot be had ends the process (the one
 * out-of-memory policy), instead of a "processed" result without its bytes
 * that would be stored, acknowledged and so lost. The address space is
 * capped in the test's own forked process; the payload's length is claimed,
 * not allocated, since the result's allocation fails first.
 */
START_TEST(processor_process_aborts_when_memory_runs_out)
{
	static const struct rlimit cap = { 256 << 20, 256 << 20 };
	struct delivery d = { 0 };
	struct processing_result res;
	char tiny[8] = "x";

	d.msg = tu_new_msg("oom", "x");
	d.id = d.msg->id;
	free(d.msg->payload);
	d.msg->payload = (unsigned char *)tiny;
	d.msg->payload_len = (size_t)1 << 30;
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &cap), 0);
	processor_process(&d, &res, 0);
	/* not reached: a result without its bytes must never come back */
	ck_abort_msg("processed with result %p of %zu bytes",
	    (void *)res.result, res.result_len);
}
END_TEST

/*
 * Capping the address space fits only a plain build in a test process of
 * its own: not ASan's reservations, nor valgrind's run without fork.
 */
static bool
can_cap_memory(void)
{
	const char *fork_mode = getenv("CK_FORK");

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return false;
#endif
	return fork_mode == NULL || strcmp(fork_mode, "no") != 0;
}

Suite *
role_processor_suite(void)
{
	Suite *s = suite_create("role_processor");
	TCase *tc = tcase_create("process");

	tcase_add_test(tc, processor_process_prefixes_payload);
	tcase_add_test(tc, a_keyed_result_keeps_its_fingerprint);
	tcase_add_test(tc, processor_process_turns_undecodable_bytes_into_failed_result);
	tcase_add_test(tc, processor_process_keeps_binary_payload_bytes);
	tcase_add_test(tc, processor_process_without_id_has_no_row);
	tcase_add_test(tc, processor_gives_up_only_past_the_limit);
	tcase_add_test(tc,
	    processor_gives_up_on_a_decoded_message_keeping_its_encoding);
	tcase_add_test(tc, a_processed_message_keeps_no_copy);
	tcase_add_test(tc,
	    processor_gives_up_on_bytes_it_cannot_decode_by_their_id);
	if (can_cap_memory())
		tcase_add_test_raise_signal(tc,
		    processor_process_aborts_when_memory_runs_out, SIGABRT);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(role_processor_suite)
