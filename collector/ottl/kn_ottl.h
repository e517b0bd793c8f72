/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl: the one OpenTelemetry Transformation Language engine, shared by
 * the `filter` and `transform` processors and the tail sampler's
 * `ottl_condition` policy.
 *
 * Compile once, at config time: kn_ottl_compile parses one statement
 * (`editor(args) where condition`) or one condition (a boolean expression)
 * with OTTL's grammar (precedence: not > and > or; * / over + -; comparisons
 * between values), resolves every path, enum and function for its context
 * (span, spanevent, resource or scope; paths may carry the context prefix
 * `span.`, `spanevent.`, `resource.`, `scope.` / `instrumentation_scope.`,
 * and a prefix names the context when it is to be inferred) and compiles
 * regular expressions (PCRE2) once. Anything kansatsu does not support (a
 * function, a path, a syntax) is an error naming the config path, the
 * statement and the offending token with its column. A compiled program is
 * immutable and shared by every shard.
 *
 * Run per span, on the shard worker: a kn_ottl_tx is one thread's transform
 * context. The caller tells it where it is (kn_ottl_tx_resource / _scope /
 * _span / _event, pointing at the encoded messages: nothing is copied or
 * decoded ahead) and evaluates conditions or executes statements. Paths read
 * the wire bytes with the zero-copy field reader; edits go to per-message
 * edit states in the tx (attribute lists as kn_wire_attrs views, changed
 * scalar fields, dropped or rewritten span events) and kn_ottl_tx_emit
 * turns them into kn_wire_edit splices of the current message, so a message
 * no statement touched makes no splice and keeps its exact bytes. Once warm
 * nothing is allocated per span (scratch arenas and views only grow).
 *
 * Errors at run time (a converter given the wrong type, math on nil, an
 * integer divided by zero) make kn_ottl_cond / kn_ottl_exec return -1 and
 * kn_ottl_tx_error say why; the processors apply OTel's error_mode.
 *
 * Threads: programs are read-only and shared; a tx belongs to one thread. */
#ifndef KN_OTTL_H
#define KN_OTTL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/kn_err.h"
#include "../wire/kn_wire_edit.h"

/* Contexts, from the highest to the lowest (a lower one can read the
 * higher ones: a span reads its scope and resource). */
enum kn_ottl_ctx {
	KN_OTTL_CTX_RESOURCE = 0,
	KN_OTTL_CTX_SCOPE = 1,
	KN_OTTL_CTX_SPAN = 2,
	KN_OTTL_CTX_SPANEVENT = 3,
	KN_OTTL_NCTX = 4,
	KN_OTTL_CTX_INFER = -1,   /* kn_ottl_compile: infer from the path prefixes */
};

enum kn_ottl_errmode {
	KN_OTTL_PROPAGATE = 0,    /* the error goes up: the processor drops the data */
	KN_OTTL_IGNORE,           /* logged (rate-limited), evaluation goes on */
	KN_OTTL_SILENT,           /* not logged, evaluation goes on */
};

enum kn_ottl_kind { KN_OTTL_CONDITION = 0, KN_OTTL_STATEMENT = 1 };

struct kn_ottl_prog;

/* Compiles src. ctx: the context, or KN_OTTL_CTX_INFER (the lowest context
 * a path prefix names; `dflt` when no path has a prefix). `where` names the
 * config path in messages ("processors.filter.traces.span[1]"). */
int kn_ottl_compile(const char *src, enum kn_ottl_kind kind, int ctx, int dflt,
		    const char *where, struct kn_ottl_prog **out, struct kn_err *err);
void kn_ottl_prog_free(struct kn_ottl_prog *p);
int kn_ottl_prog_ctx(const struct kn_ottl_prog *p);
const char *kn_ottl_prog_src(const struct kn_ottl_prog *p);

/* "resource", "scope", "span", "spanevent"; -1 for another name. */
int kn_ottl_ctx_parse(const char *name);
const char *kn_ottl_ctx_name(int ctx);
/* "propagate" / "ignore" / "silent" -> mode; -1 otherwise. */
int kn_ottl_errmode_parse(const char *name);
const char *kn_ottl_errmode_name(int mode);

/* ---- running ---- */

struct kn_ottl_tx;

struct kn_ottl_tx *kn_ottl_tx_new(void);
void kn_ottl_tx_free(struct kn_ottl_tx *tx);

/* Where evaluation stands. Each call forgets the edits of that level and the
 * levels below it (emit them first). msg may be NULL with len 0 (absent). */
void kn_ottl_tx_resource(struct kn_ottl_tx *tx, const uint8_t *msg, uint32_t len);
void kn_ottl_tx_scope(struct kn_ottl_tx *tx, const uint8_t *msg, uint32_t len);
void kn_ottl_tx_span(struct kn_ottl_tx *tx, const uint8_t *msg, uint32_t len);
/* The current span's events (field 11), in order; -1 when its bytes are
 * malformed. kn_ottl_tx_event makes event i current (spanevent context);
 * kn_ottl_tx_event_done keeps its edits for emission; kn_ottl_tx_drop_event
 * removes it from the span. */
int kn_ottl_tx_nevents(struct kn_ottl_tx *tx);
void kn_ottl_tx_event(struct kn_ottl_tx *tx, uint32_t i);
int kn_ottl_tx_event_done(struct kn_ottl_tx *tx);
void kn_ottl_tx_drop_event(struct kn_ottl_tx *tx, uint32_t i);

/* A condition: 1 true, 0 false, -1 error. */
int kn_ottl_cond(const struct kn_ottl_prog *p, struct kn_ottl_tx *tx);
/* A statement: 1 the editor ran, 0 its where clause was false, -1 error
 * (edits made before the error stay). */
int kn_ottl_exec(const struct kn_ottl_prog *p, struct kn_ottl_tx *tx);
/* The last run-time error ("..." with the statement's config path). */
const char *kn_ottl_tx_error(const struct kn_ottl_tx *tx);

/* Conditions ORed, OTel's way: 1 when one of p[0..n) holds, 0 when none
 * does, -1 when one failed under KN_OTTL_PROPAGATE (evaluation stops);
 * under ignore / silent a failed condition counts as false. Every failure
 * adds 1 to *errors. */
int kn_ottl_any(struct kn_ottl_prog *const *p, uint32_t n, int errmode, struct kn_ottl_tx *tx,
		uint64_t *errors);

/* Run-time errors in the log, at most one line a second per owner: the
 * message, what error_mode made of it, and how many were not logged since.
 * KN_OTTL_SILENT logs nothing. */
struct kn_ottl_errlog {
	_Atomic uint64_t next_ns;
	_Atomic uint64_t suppressed;
};
/* outcome: what followed, NULL for the mode's usual words. */
void kn_ottl_errlog(struct kn_ottl_errlog *l, const char *who, int errmode, const char *msg,
		    const char *outcome);

/* Splices for the edits of the current message of `ctx` (RESOURCE, SCOPE or
 * SPAN: a span's event edits go with the span) into ed, which must be
 * visiting that message. 1 spliced, 0 nothing to do, -1 failure. */
int kn_ottl_tx_emit(struct kn_ottl_tx *tx, int ctx, struct kn_wire_edit *ed);

#endif
