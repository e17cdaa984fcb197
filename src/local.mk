# src/local.mk - diplomd and libdiplom, the library it and its tests link

DIPLOM_CFLAGS = $(MHD_CFLAGS) $(JSONC_CFLAGS) $(SQLITE_CFLAGS) \
	$(CURL_CFLAGS) $(UUID_CFLAGS) $(NATS_CFLAGS) $(SYSTEMD_CFLAGS) \
	$(GNUTLS_CFLAGS)
DIPLOM_LIBS = $(MHD_LIBS) $(JSONC_LIBS) $(SQLITE_LIBS) $(CURL_LIBS) \
	$(UUID_LIBS) $(NATS_LIBS) $(SYSTEMD_LIBS) $(GNUTLS_LIBS)

noinst_LIBRARIES += src/libdiplom.a
src_libdiplom_a_CFLAGS = $(AM_CFLAGS) $(DIPLOM_CFLAGS)
src_libdiplom_a_SOURCES = \
	src/clock.h \
	src/duration.h \
	src/auth.c src/auth.h \
	src/config.c src/config.h \
	src/histogram.c src/histogram.h \
	src/log.c src/log.h \
	src/notify.c src/notify.h \
	src/message.c src/message.h \
	src/queue.c src/queue.h \
	src/queue_memory.c \
	src/queue_nats.c src/queue_nats_int.h src/queue_nats_provision.c \
	src/queue_nats_pull.c src/queue_nats_nkey.c \
	src/rate_limit.c src/rate_limit.h \
	src/result_store.c src/result_store.h \
	src/retention.c src/retention.h \
	src/worker_pool.c src/worker_pool.h \
	src/xmalloc.c src/xmalloc.h \
	src/http_server.c src/http_server.h \
	src/http_tls.c src/http_tls.h \
	src/http_client.c src/http_client.h \
	src/event_loop.c src/event_loop.h \
	src/forward_batch.c src/forward_batch.h \
	src/role.c src/role.h \
	src/role_gateway.c \
	src/role_ingest.c \
	src/role_processor.c

sbin_PROGRAMS += src/diplomd
src_diplomd_SOURCES = src/main.c
src_diplomd_CFLAGS = $(AM_CFLAGS) $(DIPLOM_CFLAGS)
src_diplomd_LDADD = src/libdiplom.a $(DIPLOM_LIBS)
