/* SPDX-License-Identifier: Apache-2.0
 * kn_attraction: the OpenTelemetry Collector's attribute actions (its
 * internal/coreinternal/attraction), shared by the `attributes` and
 * `resource` processors: a list of
 *   {key, action, value, from_attribute, from_context, default_value,
 *    pattern, converted_type}
 * applied in order to one attribute list (a kn_wire_attrs view):
 *   insert   key absent: set it from value / from_attribute (else default_value)
 *   update   key present: same sources
 *   upsert   both
 *   delete   key and/or every key matching pattern
 *   hash     key and/or every key matching pattern: value -> SHA-256 hex of
 *            its bytes (string bytes; int / double: 8 little-endian bytes;
 *            bool: one byte 1/0; other types: "")
 *   extract  key's string value matched against pattern; every named group
 *            becomes a string attribute (upsert); no match: nothing
 *   convert  key's value to converted_type int / double / string (as OTel's
 *            converter: a value that does not convert is left as it is)
 * `action` is case-insensitive, as in OTel. Regular expressions are PCRE2
 * (Go's RE2 syntax for groups, (?P<name>..) and (?<name>..), is accepted);
 * matching is unanchored, as Go's MatchString / FindStringSubmatch.
 *
 * Refused at parse time, each naming its path: unknown keys and actions, the
 * combinations OTel refuses (two value sources, pattern on insert, ...),
 * invalid patterns, extract patterns without names or with an unnamed group,
 * map / list values, and every `from_context` (OTel reads client metadata /
 * auth / client.address there; kansatsu carries none of it into the
 * pipeline, so such an action could never fire).
 *
 * Threads: the parsed list is immutable after parse and shared; the match
 * scratch (kn_attraction_scratch) is per thread. */
#ifndef KN_ATTRACTION_H
#define KN_ATTRACTION_H

#include <stddef.h>
#include <stdint.h>

#include "../config/kn_config.h"
#include "../wire/kn_wire_attrs.h"

enum kn_attraction_op {
	KN_ACT_INSERT, KN_ACT_UPDATE, KN_ACT_UPSERT, KN_ACT_DELETE,
	KN_ACT_HASH, KN_ACT_EXTRACT, KN_ACT_CONVERT,
};

enum kn_attraction_conv { KN_CONV_NONE, KN_CONV_INT, KN_CONV_DOUBLE, KN_CONV_STRING };

struct kn_attraction_group { char *name; uint32_t num; };

struct kn_attraction {
	enum kn_attraction_op op;
	char *key;                 /* NULL when absent (delete / hash by pattern) */
	size_t key_len;
	int has_value;
	struct kn_av value;        /* strings point into value_text */
	char *value_text;
	char *from_attribute;
	int has_default;
	struct kn_av def;
	char *default_text;
	char *pattern;
	void *re;                  /* pcre2_code *, when pattern is set */
	struct kn_attraction_group *groups;  /* extract: named groups by number */
	uint32_t ngroups;
	enum kn_attraction_conv conv;
};

struct kn_attractions {
	struct kn_attraction *v;
	size_t n;
	uint32_t max_groups;       /* largest capture count (for match data) */
};

/* KN_F_CUSTOM parse / free for an `actions:` (or resource `attributes:`)
 * list into a struct kn_attractions. */
int kn_attractions_parse(const struct kn_cnode *node, void *dst, struct kn_err *err);
void kn_attractions_free(void *dst);

/* Parses one scalar config node as OTel infers a value's type: quoted ->
 * string; plain true/false -> bool; a decimal integer -> int; a float ->
 * double; anything else -> string. Strings point into node->value.
 * Map / list nodes are an error naming the path. */
int kn_attraction_scalar(const struct kn_cnode *n, struct kn_av *v, struct kn_err *err);

struct kn_attraction_scratch;
/* Match scratch for patterns of up to ngroups capture groups (one per
 * thread); NULL on OOM. */
struct kn_attraction_scratch *kn_attraction_scratch_new(uint32_t ngroups);
void kn_attraction_scratch_free(struct kn_attraction_scratch *s);

/* Applies every action to the loaded list. 0, or -1 on OOM (the view may be
 * half edited then: do not emit it). */
int kn_attractions_apply(const struct kn_attractions *a, struct kn_attraction_scratch *s,
			 struct kn_wire_attrs *at);

/* 1 when re (a pcre2_code) matches s[0..len) anywhere; used by filters. */
int kn_attraction_re_match(const void *re, struct kn_attraction_scratch *s, const char *str,
			   size_t len);
/* Compiles a pattern (NULL with err "<path>: invalid pattern ..." when bad). */
void *kn_attraction_re_compile(const char *pattern, const char *path, struct kn_err *err);
void kn_attraction_re_free(void *re);

#endif
