/* SPDX-License-Identifier: Apache-2.0
 * The batch processor: size trigger, timeout trigger through tick(), the
 * max-size split at chunk boundaries, flush at shutdown, and that chunk
 * references are handed on, never leaked or duplicated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "collector/core/kn_budget.h"
#include "collector/core/kn_metrics.h"
#include "processors/batch/kn_batch_processor.h"

struct sink {
	uint32_t batches;
	uint32_t spans[64];
	uint32_t chunks[64];
};

static int collect(void *ctx, struct kn_batch *b)
{
	struct sink *s = ctx;
	if (s->batches < 64) {
		s->spans[s->batches] = b->nspans;
		s->chunks[s->batches] = b->n;
	}
	s->batches++;
	kn_batch_free(b);
	return KN_OK;
}

struct fixture {
	struct kn_metrics *m;
	void *inst, *state;
	struct sink sink;
	struct kn_emit next;
};

static void setup_bp(struct fixture *f, uint64_t size, uint64_t max, uint64_t timeout_ns)
{
	struct kn_batch_processor_cfg cfg = {size, max, timeout_ns};
	struct kn_err err;
	f->m = kn_metrics_create();
	struct kn_component_ctx ctx = {.id = "batch", .metrics = f->m, .nshards = 1};
	assert_int_equal(kn_processor_batch.create(&ctx, &cfg, &f->inst, &err), KN_OK);
	assert_int_equal(kn_processor_batch.shard_create(f->inst, 0, &f->state, &err), KN_OK);
	f->next = (struct kn_emit){collect, &f->sink};
}

static void teardown_bp(struct fixture *f)
{
	kn_processor_batch.shard_destroy(f->state);
	kn_processor_batch.destroy(f->inst);
	kn_metrics_destroy(f->m);
	assert_int_equal(kn_budget_used(), 0);
}

static struct kn_batch *one_chunk(uint32_t nspans, uint64_t accepted_ns)
{
	struct kn_chunk *c = kn_chunk_alloc(nspans, 16);
	assert_non_null(c);
	c->accepted_ns = accepted_ns;
	/* charge so a leaked or double-freed reference shows in the budget */
	c->charged = 100;
	assert_true(kn_budget_try_charge(100));
	struct kn_batch *b = kn_batch_new(1);
	assert_int_equal(kn_batch_add(&b, c), KN_OK);
	return b;
}

static void test_size_trigger(void **st)
{
	(void)st;
	struct fixture f = {0};
	kn_budget_init(0);
	setup_bp(&f, 10, 0, 1000);
	assert_int_equal(kn_processor_batch.process(f.state, one_chunk(4, 1), &f.next), KN_RETAINED);
	assert_int_equal(kn_processor_batch.process(f.state, one_chunk(4, 2), &f.next), KN_RETAINED);
	assert_int_equal(f.sink.batches, 0);
	assert_int_equal(kn_processor_batch.process(f.state, one_chunk(4, 3), &f.next), KN_OK);
	assert_int_equal(f.sink.batches, 1);
	assert_int_equal(f.sink.spans[0], 12);
	assert_int_equal(f.sink.chunks[0], 3);
	teardown_bp(&f);
}

static void test_timeout_trigger(void **st)
{
	(void)st;
	struct fixture f = {0};
	kn_budget_init(0);
	setup_bp(&f, 1000, 0, 500);
	kn_processor_batch.process(f.state, one_chunk(3, 100), &f.next);
	/* deadline = first chunk's accepted time + timeout */
	assert_int_equal(kn_processor_batch.tick(f.state, 200, &f.next), 600);
	assert_int_equal(f.sink.batches, 0);
	kn_processor_batch.process(f.state, one_chunk(2, 300), &f.next);
	assert_int_equal(kn_processor_batch.tick(f.state, 599, &f.next), 600);
	assert_int_equal(f.sink.batches, 0);
	assert_int_equal(kn_processor_batch.tick(f.state, 600, &f.next), 0);
	assert_int_equal(f.sink.batches, 1);
	assert_int_equal(f.sink.spans[0], 5);
	/* nothing pending: no timer */
	assert_int_equal(kn_processor_batch.tick(f.state, 10000, &f.next), 0);
	teardown_bp(&f);
}

static void test_max_size_splits_at_chunks(void **st)
{
	(void)st;
	struct fixture f = {0};
	kn_budget_init(0);
	setup_bp(&f, 10, 12, 1000);
	kn_processor_batch.process(f.state, one_chunk(8, 1), &f.next);
	kn_processor_batch.process(f.state, one_chunk(8, 2), &f.next); /* 16 > 12: first goes alone */
	assert_int_equal(f.sink.batches, 1);
	assert_int_equal(f.sink.spans[0], 8);
	kn_processor_batch.process(f.state, one_chunk(30, 3), &f.next); /* a chunk bigger than max goes whole */
	assert_int_equal(f.sink.batches, 3);
	assert_int_equal(f.sink.spans[1], 8);
	assert_int_equal(f.sink.spans[2], 30);
	teardown_bp(&f);
}

static void test_flush(void **st)
{
	(void)st;
	struct fixture f = {0};
	kn_budget_init(0);
	setup_bp(&f, 100, 0, 1000);
	kn_processor_batch.process(f.state, one_chunk(1, 1), &f.next);
	kn_processor_batch.process(f.state, one_chunk(2, 1), &f.next);
	kn_processor_batch.flush(f.state, &f.next);
	assert_int_equal(f.sink.batches, 1);
	assert_int_equal(f.sink.spans[0], 3);
	kn_processor_batch.flush(f.state, &f.next); /* nothing left: no empty batch */
	assert_int_equal(f.sink.batches, 1);
	teardown_bp(&f);
}

static void test_pending_freed_on_destroy(void **st)
{
	(void)st;
	struct fixture f = {0};
	kn_budget_init(0);
	setup_bp(&f, 100, 0, 1000);
	kn_processor_batch.process(f.state, one_chunk(1, 1), &f.next);
	assert_int_equal(kn_budget_used(), 100);
	teardown_bp(&f); /* asserts the budget is back to 0 */
}

static void test_validate(void **st)
{
	(void)st;
	struct kn_batch_processor_cfg cfg = {100, 50, 1};
	struct kn_err err;
	assert_int_equal(kn_processor_batch.validate(&cfg, "processors.batch", &err), KN_ERR);
	assert_string_equal(err.msg,
			    "processors.batch.send_batch_max_size: must be 0 or at least send_batch_size (100)");
	cfg.send_batch_max_size = 0;
	assert_int_equal(kn_processor_batch.validate(&cfg, "processors.batch", &err), KN_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_trigger),
		cmocka_unit_test(test_timeout_trigger),
		cmocka_unit_test(test_max_size_splits_at_chunks),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_pending_freed_on_destroy),
		cmocka_unit_test(test_validate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
