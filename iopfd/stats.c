// SPDX-License-Identifier: GPL-2.0
/*
 * Counters and the latency histogram. The latency of a group runs from
 * its earliest record's time_ns (CLOCK_MONOTONIC, stamped by the kernel
 * when the page request arrived) to the moment iopfd answered the kernel,
 * so it includes the queue, the handler and a client's round trip.
 * Buckets are powers of two of microseconds: percentiles are estimates,
 * interpolated within their bucket, good to a factor of two at worst.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iopfd.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void stats_init(struct stats *st)
{
	memset(st, 0, sizeof(*st));
	st->start_ns = now_ns();
}

const char *decider_name(enum decider who)
{
	static const char *const names[DECIDER_NR] = {
		[DECIDER_CLIENT] = "client",
		[DECIDER_POLICY] = "policy",
		[DECIDER_RULE] = "rule",
		[DECIDER_REJECT] = "reject",
		[DECIDER_SHUTDOWN] = "shutdown",
		[DECIDER_RELEASE] = "release",
	};

	return names[who];
}

static unsigned int lat_bucket(uint64_t us)
{
	unsigned int b = 0;

	while (us && b < LAT_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	return b;
}

/* [lo, hi) of bucket @b in microseconds; the last one has no top. */
static uint64_t bucket_lo(unsigned int b)
{
	return b ? 1ULL << (b - 1) : 0;
}

static uint64_t bucket_hi(unsigned int b)
{
	return 1ULL << b;
}

void stats_answer(struct stats *st, enum iopfd_handler h, enum decider who,
		  uint32_t code, uint64_t t0_ns, uint64_t t1_ns)
{
	switch (code) {
	case IOPFMAP_PAGE_RESP_SUCCESS:
		st->resp_success++;
		break;
	case IOPFMAP_PAGE_RESP_FAILURE:
		st->resp_failure++;
		break;
	default:
		st->resp_invalid++;
		break;
	}
	if (h <= IOPFD_HANDLER_REJECT)
		st->by_handler[h]++;
	st->by_decider[who]++;
	st->lat[lat_bucket(t1_ns > t0_ns ? (t1_ns - t0_ns) / 1000 : 0)]++;
	st->lat_count++;
}

uint64_t stats_percentile(const struct stats *st, unsigned int pct)
{
	uint64_t rank, seen = 0;
	unsigned int b;

	if (!st->lat_count)
		return 0;
	/* The smallest rank r with r >= pct% of the count, at least 1. */
	rank = (st->lat_count * pct + 99) / 100;
	if (!rank)
		rank = 1;
	for (b = 0; b < LAT_BUCKETS; b++) {
		uint64_t n = st->lat[b];

		if (seen + n >= rank) {
			if (b == LAT_BUCKETS - 1)
				return bucket_lo(b);
			return bucket_lo(b) + (bucket_hi(b) - bucket_lo(b)) *
					      (rank - seen) / n;
		}
		seen += n;
	}
	return bucket_lo(LAT_BUCKETS - 1);
}

void stats_log(const struct stats *st, unsigned int queues,
	       unsigned int clients)
{
	log_info("stats",
		 "queues=%u clients=%u groups=%llu records=%llu success=%llu invalid=%llu failure=%llu forward=%llu resolve=%llu reject=%llu by_client=%llu by_policy=%llu by_rule=%llu by_reject=%llu by_shutdown=%llu by_release=%llu client_timeouts=%llu refused=%llu p50_us=%llu p90_us=%llu p99_us=%llu",
		 queues, clients,
		 (unsigned long long)st->groups,
		 (unsigned long long)st->records,
		 (unsigned long long)st->resp_success,
		 (unsigned long long)st->resp_invalid,
		 (unsigned long long)st->resp_failure,
		 (unsigned long long)st->by_handler[IOPFD_HANDLER_FORWARD],
		 (unsigned long long)st->by_handler[IOPFD_HANDLER_RESOLVE],
		 (unsigned long long)st->by_handler[IOPFD_HANDLER_REJECT],
		 (unsigned long long)st->by_decider[DECIDER_CLIENT],
		 (unsigned long long)st->by_decider[DECIDER_POLICY],
		 (unsigned long long)st->by_decider[DECIDER_RULE],
		 (unsigned long long)st->by_decider[DECIDER_REJECT],
		 (unsigned long long)st->by_decider[DECIDER_SHUTDOWN],
		 (unsigned long long)st->by_decider[DECIDER_RELEASE],
		 (unsigned long long)st->client_timeouts,
		 (unsigned long long)st->refused,
		 (unsigned long long)stats_percentile(st, 50),
		 (unsigned long long)stats_percentile(st, 90),
		 (unsigned long long)stats_percentile(st, 99));
	log_info("stats", "nl_events=%llu nl_lost=%llu devices_gone=%llu",
		 (unsigned long long)st->nl_events,
		 (unsigned long long)st->nl_lost,
		 (unsigned long long)st->devices_gone);
}

static void json_kv(FILE *f, const char *indent, const char *key,
		    uint64_t v, bool last)
{
	fprintf(f, "%s\"%s\": %llu%s\n", indent, key, (unsigned long long)v,
		last ? "" : ",");
}

static void json_body(FILE *f, const struct stats *st, unsigned int queues,
		      unsigned int clients)
{
	static const char *const hname[] = { NULL, "forward", "resolve",
					     "reject" };
	unsigned int b, top = 0;
	enum decider who;
	int h;

	fprintf(f, "{\n  \"version\": \"%s\",\n", IOPFMAP_VERSION);
	json_kv(f, "  ", "uptime_s", (now_ns() - st->start_ns) / 1000000000,
		false);
	fprintf(f, "  \"queues\": {\n");
	json_kv(f, "    ", "active", queues, false);
	json_kv(f, "    ", "handed_over", st->queues_handed, false);
	json_kv(f, "    ", "dropped", st->queues_dropped, true);
	fprintf(f, "  },\n  \"clients\": {\n");
	json_kv(f, "    ", "connected", clients, false);
	json_kv(f, "    ", "accepted", st->clients_accepted, false);
	json_kv(f, "    ", "bad_messages", st->bad_msgs, true);
	fprintf(f, "  },\n");
	json_kv(f, "  ", "groups", st->groups, false);
	json_kv(f, "  ", "records", st->records, false);
	fprintf(f, "  \"responses\": {\n");
	json_kv(f, "    ", "success", st->resp_success, false);
	json_kv(f, "    ", "invalid", st->resp_invalid, false);
	json_kv(f, "    ", "failure", st->resp_failure, true);
	fprintf(f, "  },\n  \"by_handler\": {\n");
	for (h = IOPFD_HANDLER_FORWARD; h <= IOPFD_HANDLER_REJECT; h++)
		json_kv(f, "    ", hname[h], st->by_handler[h],
			h == IOPFD_HANDLER_REJECT);
	fprintf(f, "  },\n  \"by_decider\": {\n");
	for (who = 0; who < DECIDER_NR; who++)
		json_kv(f, "    ", decider_name(who), st->by_decider[who],
			who == DECIDER_NR - 1);
	fprintf(f, "  },\n");
	json_kv(f, "  ", "client_timeouts", st->client_timeouts, false);
	json_kv(f, "  ", "refused", st->refused, false);
	json_kv(f, "  ", "stage1_maps", st->s1_maps, false);
	json_kv(f, "  ", "stage1_errors", st->s1_errors, false);
	/* Kernel events by the spec's names, as in the logs. */
	fprintf(f, "  \"netlink\": {\n");
	json_kv(f, "    ", "events", st->nl_events, false);
	for (b = 1; b < IOPFD_NL_CMDS; b++)
		if (strcmp(nl_event_name(b), "unknown"))
			json_kv(f, "    ", nl_event_name(b), st->nl_by_cmd[b],
				false);
	json_kv(f, "    ", "lost", st->nl_lost, false);
	json_kv(f, "    ", "devices_gone", st->devices_gone, true);
	fprintf(f, "  },\n");
	fprintf(f, "  \"latency_us\": {\n");
	json_kv(f, "    ", "count", st->lat_count, false);
	json_kv(f, "    ", "p50", stats_percentile(st, 50), false);
	json_kv(f, "    ", "p90", stats_percentile(st, 90), false);
	json_kv(f, "    ", "p99", stats_percentile(st, 99), false);
	/* Buckets up to the highest one used: "lt" is its exclusive top. */
	for (b = 0; b < LAT_BUCKETS; b++)
		if (st->lat[b])
			top = b + 1;
	fprintf(f, "    \"buckets\": [");
	for (b = 0; b < top; b++) {
		fprintf(f, "%s\n      { ", b ? "," : "");
		if (b == LAT_BUCKETS - 1)
			fprintf(f, "\"ge\": %llu",
				(unsigned long long)bucket_lo(b));
		else
			fprintf(f, "\"lt\": %llu",
				(unsigned long long)bucket_hi(b));
		fprintf(f, ", \"count\": %llu }",
			(unsigned long long)st->lat[b]);
	}
	fprintf(f, "%s]\n  }\n}\n", top ? "\n    " : "");
}

/* Written whole to PATH.tmp and renamed, so readers never see half. */
int stats_write(const struct stats *st, const char *path,
		unsigned int queues, unsigned int clients)
{
	char tmp[4096], qp[256];
	FILE *f;
	int fd;

	if (!path)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0)
		goto fail;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		goto fail_unlink;
	}
	json_body(f, st, queues, clients);
	if (fflush(f) || ferror(f)) {
		fclose(f);
		goto fail_unlink;
	}
	if (fclose(f))
		goto fail_unlink;
	if (rename(tmp, path))
		goto fail_unlink;
	log_dbg("stats_file", "file=%s", log_quote(qp, sizeof(qp), path));
	return 0;

fail_unlink:
	{
		int err = errno;

		unlink(tmp);
		errno = err;
	}
fail:
	log_warn("stats_file", "file=%s error=%s",
		 log_quote(qp, sizeof(qp), path),
		 log_strerror(errno));
	return -1;
}
