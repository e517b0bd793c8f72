/* SPDX-License-Identifier: Apache-2.0
 * bench_procs: the CPU cost per span of chains of processors on one shard,
 * in process, on W1, without network or threads: before/after figures of
 * processor optimisations that stay put on a noisy 2-core VM.
 *
 * A chain runs the way a shard worker runs a pipeline (kn_shard.c): each
 * stage's emit calls the next stage's process(); the end of the chain stands
 * for the exporters and frees the batch. Processors are made from YAML as
 * the collector makes them (kn_component_find, kn_config_parse,
 * kn_cfg_apply_at, validate, create, start, shard_create of shard 0).
 *
 * Every request is a distinct W1 request (fresh trace ids), built once
 * (untimed); then, for each selected scenario in turn, indexed and split into
 * one chunk as a receiver does (kn_wire_index_request + kn_wire_split, and
 * the budget charge: timed apart, the `ingest` row), put into a batch
 * (untimed), and handed to the chain. CLOCK_THREAD_CPUTIME_ID is read just
 * around that call, so a scenario's figure is its processors' work plus
 * freeing what leaves the chain; `none` (no processor) is that floor.
 * Scenarios take turns request by request, so a slow patch of the machine
 * falls on all of them alike. W warm-up requests, then R rounds of N
 * requests; a row gives the median, min and max over the rounds of the
 * round's ns per span, spans per CPU-second from the median, and spans out
 * per span in over all rounds.
 *
 * Scenarios (YAML meaning the same as bench/run_scenarios.py's
 * AGENT_PROCESSORS and OTTL_PROCESSORS):
 *   none                   no processor
 *   resource               upsert deployment.environment.name
 *   attributes             upsert http.route and app.tier, delete server.port
 *   probabilistic_sampler  sampling_percentage 50
 *   agent                  resource -> attributes -> probabilistic_sampler
 *                          (the agent scenario's memory_limiter and batch are
 *                          left out: memory_limiter does no per-span work and
 *                          batch only groups batches)
 *   filter                 the ottl scenario's OTTL filter
 *   transform              the ottl scenario's OTTL transform
 *   ottl                   filter -> transform
 *
 * Every run checks itself (exit 1 on a wrong result): each chain is fed
 * N x 512 spans a round, no more spans leave a chain than entered it, the
 * chains that drop nothing let every span through, and at the end the
 * memory budget is back to 0 (no chunk leaked).
 *
 * Usage: bench_procs [-n requests] [-r rounds] [-w warmup_requests]
 *                    [-s scenario[,scenario...]] [-S seed]
 * Single-threaded; memory: one request and its chunks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collector/config/kn_config.h"
#include "collector/core/kn_batch.h"
#include "collector/core/kn_budget.h"
#include "collector/core/kn_component.h"
#include "collector/core/kn_metrics.h"
#include "collector/wire/kn_wire.h"
#include "kn_w1.h"

/* ---- scenarios ---- */

#define MAX_STAGES 3

struct step {
	const char *type;
	const char *yaml;   /* a flow map: the processor's config */
};

#define P_RESOURCE {"resource", \
	"{attributes: [{key: deployment.environment.name, value: bench, action: upsert}]}"}
#define P_ATTRIBUTES {"attributes", \
	"{actions: [{key: http.route, value: /redacted, action: upsert}, " \
	"{key: app.tier, value: web, action: upsert}, {key: server.port, action: delete}]}"}
#define P_SAMPLER {"probabilistic_sampler", "{sampling_percentage: 50}"}
#define P_FILTER {"filter", \
	"{error_mode: ignore, traces: {span: ['attributes[\"http.route\"] == \"/healthz\"', " \
	"'end_time_unix_nano - start_time_unix_nano < 1000000']}}"}
#define P_TRANSFORM {"transform", \
	"{error_mode: ignore, trace_statements: [" \
	"'set(span.attributes[\"deployment.environment.name\"], \"bench\")', " \
	"'set(span.attributes[\"app.tier\"], \"web\")', " \
	"'replace_pattern(span.attributes[\"http.route\"], \"\\\\{id\\\\}\", \"ID\")', " \
	"'delete_key(span.attributes, \"server.port\")']}"}

struct scenario {
	const char *name;
	int keeps_all;      /* 1: every span must come out */
	size_t nsteps;
	struct step steps[MAX_STAGES];
};

static const struct scenario scenarios[] = {
	{"none", 1, 0, {{0}}},
	{"resource", 1, 1, {P_RESOURCE}},
	{"attributes", 1, 1, {P_ATTRIBUTES}},
	{"probabilistic_sampler", 0, 1, {P_SAMPLER}},
	{"agent", 0, 3, {P_RESOURCE, P_ATTRIBUTES, P_SAMPLER}},
	{"filter", 0, 1, {P_FILTER}},
	{"transform", 1, 1, {P_TRANSFORM}},
	{"ottl", 0, 2, {P_FILTER, P_TRANSFORM}},
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

/* ---- chains ---- */

struct stage {
	const struct kn_component *comp;
	char path[64];            /* "processors.<type>", for messages */
	void *cfg, *inst, *state;
	struct kn_emit next;
};

struct chain {
	const struct scenario *sc;
	struct stage st[MAX_STAGES];
	size_t n;                 /* stages opened */
	struct kn_metrics *metrics;
	struct kn_emit head;
	uint64_t in, out;         /* spans fed, spans that reached the end */
	uint64_t round_in;
	double round_s;           /* CPU s inside the chain this round */
	double *ns;               /* ns per span of each round */
};

static int stage_fn(void *ctx, struct kn_batch *b)
{
	struct stage *st = ctx;
	return st->comp->process(st->state, b, &st->next);
}

/* The end of the chain: what the exporters would be handed. */
static int end_fn(void *ctx, struct kn_batch *b)
{
	struct chain *c = ctx;
	c->out += b->nspans;
	kn_batch_free(b);
	return KN_OK;
}

static int stage_open(struct stage *st, const struct step *s, struct kn_metrics *m,
		      struct kn_err *err)
{
	struct kn_cnode *root = NULL;
	char text[1024];
	snprintf(st->path, sizeof st->path, "processors.%s", s->type);
	if (!(st->comp = kn_component_find(KN_PROCESSOR, s->type)))
		return kn_errf(err, "%s: no such processor in this build", st->path);
	if (!(st->cfg = calloc(1, st->comp->config_size)))
		return kn_errf(err, "%s: out of memory", st->path);
	snprintf(text, sizeof text, "processors:\n  %s: %s\n", s->type, s->yaml);
	int rc = kn_config_parse(text, strlen(text), "bench_procs", &root, err);
	if (rc == KN_OK)
		rc = kn_cfg_apply_at(st->comp->config_fields,
				     kn_cnode_get(kn_cnode_get(root, "processors"), s->type),
				     st->path, st->cfg, err);
	if (rc == KN_OK && st->comp->validate)
		rc = st->comp->validate(st->cfg, st->path, err);
	kn_cnode_free(root);
	if (rc != KN_OK)
		return rc;
	struct kn_component_ctx ctx = {.id = s->type, .metrics = m, .nshards = 1};
	if (st->comp->create(&ctx, st->cfg, &st->inst, err) != KN_OK ||
	    (st->comp->start && st->comp->start(st->inst, err) != KN_OK) ||
	    st->comp->shard_create(st->inst, 0, &st->state, err) != KN_OK)
		return kn_err_prefix(err, "%s: ", st->path);
	return KN_OK;
}

static void stage_close(struct stage *st)
{
	if (!st->comp)
		return;
	if (st->state)
		st->comp->shard_destroy(st->state);
	if (st->inst) {
		if (st->comp->shutdown)
			st->comp->shutdown(st->inst, 0);
		st->comp->destroy(st->inst);
	}
	if (st->cfg)
		kn_cfg_free(st->comp->config_fields, st->cfg);
	free(st->cfg);
}

static int chain_open(struct chain *c, const struct scenario *sc, unsigned rounds,
		      struct kn_err *err)
{
	c->sc = sc;
	if (!(c->metrics = kn_metrics_create()) || !(c->ns = calloc(rounds, sizeof *c->ns)))
		return kn_errf(err, "%s: out of memory", sc->name);
	for (; c->n < sc->nsteps; c->n++)
		if (stage_open(&c->st[c->n], &sc->steps[c->n], c->metrics, err) != KN_OK) {
			c->n++;   /* closes the half-built stage too */
			return kn_err_prefix(err, "scenario %s: ", sc->name);
		}
	struct kn_emit next = {end_fn, c};
	for (size_t i = c->n; i-- > 0;) {
		c->st[i].next = next;
		next = (struct kn_emit){stage_fn, &c->st[i]};
	}
	c->head = next;
	return KN_OK;
}

/* Emits whatever a stage retained (none of the built-in ones does). */
static void chain_flush(struct chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->st[i].state && c->st[i].comp->flush)
			c->st[i].comp->flush(c->st[i].state, &c->st[i].next);
}

static void chain_close(struct chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		stage_close(&c->st[i]);
	kn_metrics_destroy(c->metrics);
	free(c->ns);
}

/* ---- one request through every chain ---- */

static double now_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What a receiver does with a request for one shard: index, split, charge. */
static struct kn_chunk *ingest(struct kn_wire_index *ix, const uint8_t *buf, size_t len,
			       struct kn_err *err)
{
	struct kn_chunk *out[1] = {NULL};
	if (kn_wire_index_request(ix, buf, len, err) != KN_OK)
		return NULL;
	if (ix->nspans != KN_W1_SPANS || ix->rejected) {
		kn_errf(err, "indexed %u spans, %u rejected", ix->nspans, ix->rejected);
		return NULL;
	}
	if (kn_wire_split(ix, buf, 1, out, err) != KN_OK)
		return NULL;
	if (!out[0] || out[0]->nspans != KN_W1_SPANS) {
		kn_errf(err, "the chunk holds %u spans", out[0] ? out[0]->nspans : 0);
		kn_chunk_unref(out[0]);
		return NULL;
	}
	size_t charge = sizeof(struct kn_chunk) + out[0]->nspans * sizeof(struct kn_span_hdr) +
			out[0]->cap;
	if (kn_budget_try_charge(charge))
		out[0]->charged = charge;
	return out[0];
}

/* Request idx through every chain; adds the index+split CPU s to *ingest_s. */
static int feed(struct chain *chains, size_t nchains, struct kn_w1 *w, struct kn_wire_index *ix,
		uint64_t idx, double *ingest_s)
{
	struct kn_err err = {{0}};
	size_t len;
	uint8_t *buf = kn_w1_pack(w, idx, &len, NULL);
	if (!buf) {
		fprintf(stderr, "bench_procs: out of memory building request %llu\n",
			(unsigned long long)idx);
		return -1;
	}
	for (size_t k = 0; k < nchains; k++) {
		struct chain *c = &chains[k];
		double t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
		struct kn_chunk *ch = ingest(ix, buf, len, &err);
		double t1 = now_s(CLOCK_THREAD_CPUTIME_ID);
		struct kn_batch *b = ch ? kn_batch_new(1) : NULL;
		if (!ch || !b || kn_batch_add(&b, ch) != KN_OK) {
			fprintf(stderr, "bench_procs: index/split of request %llu for %s: %s\n",
				(unsigned long long)idx, c->sc->name, ch ? "out of memory" : err.msg);
			if (ch && !b)
				kn_chunk_unref(ch);
			kn_batch_free(b);
			free(buf);
			return -1;
		}
		*ingest_s += t1 - t0;
		uint64_t out0 = c->out;
		double t2 = now_s(CLOCK_THREAD_CPUTIME_ID);
		kn_emit(&c->head, b);
		double t3 = now_s(CLOCK_THREAD_CPUTIME_ID);
		c->round_s += t3 - t2;
		c->round_in += KN_W1_SPANS;
		c->in += KN_W1_SPANS;
		if (c->out - out0 > KN_W1_SPANS || (c->sc->keeps_all && c->out - out0 != KN_W1_SPANS)) {
			fprintf(stderr, "bench_procs: %s: request %llu: %llu of %u spans came out\n",
				c->sc->name, (unsigned long long)idx,
				(unsigned long long)(c->out - out0), KN_W1_SPANS);
			free(buf);
			return -1;
		}
	}
	free(buf);
	return 0;
}

/* nreq requests from index *idx on; records round r (r < 0: warm-up). */
static int run_round(struct chain *chains, size_t nchains, struct kn_w1 *w,
		     struct kn_wire_index *ix, uint64_t *idx, size_t nreq, int r, double *ingest_ns)
{
	double ingest_s = 0;
	for (size_t k = 0; k < nchains; k++) {
		chains[k].round_s = 0;
		chains[k].round_in = 0;
	}
	for (size_t i = 0; i < nreq; i++)
		if (feed(chains, nchains, w, ix, (*idx)++, &ingest_s) != 0)
			return -1;
	if (r < 0 || nreq == 0)
		return 0;
	for (size_t k = 0; k < nchains; k++)
		chains[k].ns[r] = chains[k].round_s * 1e9 / (double)chains[k].round_in;
	ingest_ns[r] = ingest_s * 1e9 / ((double)nreq * KN_W1_SPANS * (double)nchains);
	return 0;
}

/* ---- report ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts v in place; returns its median. */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_row(const char *name, double *ns, size_t rounds, const char *ratio)
{
	double med = median(ns, rounds);
	printf("| %s | %.1f | %.1f | %.1f | %.0f | %s |\n", name, med, ns[0], ns[rounds - 1],
	       med > 0 ? 1e9 / med : 0.0, ratio);
}

static void cpu_model(char *out, size_t cap)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");
	snprintf(out, cap, "unknown");
	while (f && fgets(line, sizeof line, f)) {
		const char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) != 0 || !colon)
			continue;
		colon += strspn(colon + 1, " \t") + 1;
		snprintf(out, cap, "%.*s", (int)strcspn(colon, "\n"), colon);
		break;
	}
	if (f)
		fclose(f);
}

/* ---- options ---- */

/* Marks the scenarios named in list ("a,b"); -1 on an unknown name. */
static int select_scenarios(const char *list, int *on)
{
	char name[64];
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		snprintf(name, sizeof name, "%.*s", (int)len, p);
		size_t i = 0;
		while (i < NSCENARIOS && strcmp(scenarios[i].name, name) != 0)
			i++;
		if (i == NSCENARIOS) {
			fprintf(stderr, "bench_procs: -s: no scenario named \"%s\"; scenarios:", name);
			for (size_t k = 0; k < NSCENARIOS; k++)
				fprintf(stderr, " %s", scenarios[k].name);
			fprintf(stderr, "\n");
			return -1;
		}
		on[i] = 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

int main(int argc, char **argv)
{
	size_t nreq = 2000, warm = 200;
	unsigned rounds = 5;
	uint64_t seed = 1;
	int warm_set = 0, on[NSCENARIOS] = {0}, any = 0, opt, rc = 1;
	while ((opt = getopt(argc, argv, "n:r:w:s:S:")) != -1) {
		switch (opt) {
		case 'n': nreq = strtoul(optarg, NULL, 10); break;
		case 'r': rounds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': warm = strtoul(optarg, NULL, 10); warm_set = 1; break;
		case 's':
			if (select_scenarios(optarg, on) != 0)
				return 2;
			any = 1;
			break;
		case 'S': seed = strtoull(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: bench_procs [-n requests] [-r rounds] [-w warmup_requests] "
				"[-s scenario[,scenario...]] [-S seed]\n");
			return 2;
		}
	}
	if (nreq == 0 || rounds == 0 || rounds > 1000) {
		fprintf(stderr, "bench_procs: -n: at least 1 request; -r: 1 to 1000 rounds\n");
		return 2;
	}
	if (!warm_set && warm > nreq)
		warm = nreq;
	for (size_t i = 0; !any && i < NSCENARIOS; i++)
		on[i] = 1;

	struct chain chains[NSCENARIOS];
	size_t nchains = 0;
	struct kn_w1 *w = kn_w1_new(seed);
	double *ingest_ns = calloc(rounds, sizeof *ingest_ns);
	struct kn_wire_index ix;
	struct kn_err err = {{0}};
	memset(chains, 0, sizeof chains);
	kn_wire_index_init(&ix);
	kn_budget_init(0);
	if (!w || !ingest_ns) {
		fprintf(stderr, "bench_procs: out of memory\n");
		goto fail;
	}
	for (size_t i = 0; i < NSCENARIOS; i++) {
		if (!on[i])
			continue;
		if (chain_open(&chains[nchains++], &scenarios[i], rounds, &err) != KN_OK) {
			fprintf(stderr, "bench_procs: %s\n", err.msg);
			goto fail;
		}
	}

	uint64_t idx = 0;
	if (run_round(chains, nchains, w, &ix, &idx, warm, -1, ingest_ns) != 0)
		goto fail;
	for (unsigned r = 0; r < rounds; r++)
		if (run_round(chains, nchains, w, &ix, &idx, nreq, (int)r, ingest_ns) != 0)
			goto fail;

	char model[256];
	cpu_model(model, sizeof model);
	printf("bench_procs: machine: %s, %ld CPUs online\n", model, sysconf(_SC_NPROCESSORS_ONLN));
	printf("W1 (%u spans/request), seed %llu; one shard, thread CPU time; warm-up %zu requests, "
	       "then %u rounds of %zu requests (%zu spans) per scenario; min/max over rounds\n\n",
	       KN_W1_SPANS, (unsigned long long)seed, warm, rounds, nreq, nreq * KN_W1_SPANS);
	printf("| scenario | ns/span (median) | min | max | spans/s per core (median) | spans out / in |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
	print_row("ingest (index + split, not a processor)", ingest_ns, rounds, "-");
	for (size_t k = 0; k < nchains; k++) {
		char ratio[32];
		snprintf(ratio, sizeof ratio, "%.3f", (double)chains[k].out / (double)chains[k].in);
		print_row(chains[k].sc->name, chains[k].ns, rounds, ratio);
	}
	printf("\nagent = resource -> attributes -> probabilistic_sampler (memory_limiter and batch "
	       "left out); ottl = filter -> transform; none = no processor (freeing the batch "
	       "only)\n");
	rc = 0;
fail:
	for (size_t k = 0; k < nchains; k++)
		chain_flush(&chains[k]);
	for (size_t k = 0; k < nchains; k++)
		chain_close(&chains[k]);
	free(ingest_ns);
	kn_wire_index_free(&ix);
	kn_w1_free(w);
	if (rc == 0 && kn_budget_used() != 0) {
		fprintf(stderr, "bench_procs: %zu bytes still charged to the memory budget\n",
			kn_budget_used());
		rc = 1;
	}
	return rc;
}
