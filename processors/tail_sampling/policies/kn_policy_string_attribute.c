/* SPDX-License-Identifier: Apache-2.0
 * string_attribute: samples a trace when a resource or span attribute `key`
 * has a string value in `values` (exact), or matching one of them as a
 * regular expression (enabled_regex_matching). As in OTel: the value is read
 * with pdata's Str() (non-string values read as ""); an exact `values` entry
 * "" never matches; a span attribute whose string is empty is never tested
 * (a resource attribute is); invert_match turns any match into
 * InvertNotSampled and no match (or no such key) into InvertSampled.
 *
 * Regular expressions: OTel uses Go's RE2 (unanchored search, UTF-8); here
 * POSIX extended (regcomp REG_EXTENDED|REG_NOSUB, unanchored search, bytes in
 * the C locale) after a small translation of common RE2-only syntax: a
 * leading "(?i)" becomes REG_ICASE, \d and \D become [0-9] and [^0-9], and
 * inside a bracket expression \d, \s, \w become 0-9, [:space:], [:alnum:]_
 * and any other \x becomes x. Not supported (regcomp rejects them or reads
 * them differently): non-greedy quantifiers (*? +?), other (?flags), named
 * or non-capturing groups (?:...), \A \z, Unicode classes \pL. \s \S \w \W
 * \b outside brackets are glibc extensions and behave as in RE2 for ASCII.
 *
 * cache_max_size (default 128): OTel caches regex results per value in an
 * LRU; here a direct-mapped cache of that many entries per shard holds
 * results for values up to 96 bytes (longer values are always matched).
 * regexec needs a NUL-terminated string (REG_STARTEND would do without, but
 * sanitizers' regexec interceptor reads up to a NUL anyway): values are
 * copied into a per-shard scratch buffer, grown (rarely) when a longer value
 * shows up; a value it cannot hold (out of memory) does not match.
 * State per shard (compiled regexes are not shared: glibc's regexec locks). */
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_tail_policy_int.h"

#define KN_STR_CACHE_LEN 96
#define KN_STR_DEFAULT_CACHE 128

struct kn_str_conf {
	char *key;
	struct kn_strlist values;
	int enabled_regex_matching;
	int64_t cache_max_size;
	int invert_match;
};

static const struct kn_cfg_field kn_str_table[] = {
	{.key = "key", .type = KN_F_STR, .off = offsetof(struct kn_str_conf, key), .required = 1,
	 .help = "attribute key"},
	{.key = "values", .type = KN_F_STRLIST, .off = offsetof(struct kn_str_conf, values),
	 .help = "values (or regular expressions) that match"},
	{.key = "enabled_regex_matching", .type = KN_F_BOOL,
	 .off = offsetof(struct kn_str_conf, enabled_regex_matching),
	 .help = "values are regular expressions"},
	{.key = "cache_max_size", .type = KN_F_INT, .off = offsetof(struct kn_str_conf, cache_max_size),
	 .min = 0, .max = 1048576, .help = "regex result cache entries; 0 = 128"},
	{.key = "invert_match", .type = KN_F_BOOL, .off = offsetof(struct kn_str_conf, invert_match),
	 .help = "sample traces that do NOT match"},
	KN_CFG_END,
};

/* RE2 -> POSIX ERE (see the top of the file); 0, or -1 when out is too small. */
static int kn_re2_to_ere(const char *in, char *out, size_t cap, int *icase)
{
	size_t n = 0;
	int inbr = 0;
	*icase = 0;
	if (strncmp(in, "(?i)", 4) == 0) {
		*icase = 1;
		in += 4;
	}
#define PUT(str) do { size_t l_ = strlen(str); if (n + l_ >= cap) return -1; memcpy(out + n, str, l_); n += l_; } while (0)
	for (const char *p = in; *p; p++) {
		char one[2] = { *p, 0 };
		if (!inbr && *p == '[') {
			inbr = 1;
			PUT("[");
			if (p[1] == '^') {
				PUT("^");
				p++;
			}
			if (p[1] == ']') {
				PUT("]");
				p++;
			}
			continue;
		}
		if (inbr && *p == ']') {
			inbr = 0;
			PUT("]");
			continue;
		}
		if (*p == '\\' && p[1]) {
			char c = *++p;
			if (inbr) {
				if (c == 'd')
					PUT("0-9");
				else if (c == 's')
					PUT("[:space:]");
				else if (c == 'w')
					PUT("[:alnum:]_");
				else {
					one[0] = c;
					PUT(one);
				}
			} else if (c == 'd') {
				PUT("[0-9]");
			} else if (c == 'D') {
				PUT("[^0-9]");
			} else {
				char two[3] = { '\\', c, 0 };
				PUT(two);
			}
			continue;
		}
		PUT(one);
	}
#undef PUT
	out[n] = '\0';
	return 0;
}

static int kn_str_compile(regex_t *re, const char *expr, const char *path, size_t i,
			  struct kn_err *err)
{
	char buf[1024], msg[200];
	int icase, rc;
	if (kn_re2_to_ere(expr, buf, sizeof buf, &icase) < 0)
		return kn_errf(err, "%s.values[%zu]: regular expression too long", path, i);
	rc = regcomp(re, buf, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
	if (rc != 0) {
		regerror(rc, re, msg, sizeof msg);
		return kn_errf(err, "%s.values[%zu]: invalid regular expression \"%s\": %s", path, i,
			       expr, msg);
	}
	return KN_OK;
}

static int kn_str_check(void *conf, const char *path, struct kn_err *err)
{
	struct kn_str_conf *c = conf;
	if (!c->key || !c->key[0])
		return kn_errf(err, "%s.key: must not be empty", path);
	for (size_t i = 0; c->enabled_regex_matching && i < c->values.n; i++) {
		regex_t re;
		if (kn_str_compile(&re, c->values.v[i], path, i, err) != KN_OK)
			return KN_ERR;
		regfree(&re);
	}
	return KN_OK;
}

struct kn_str_cache_ent {
	uint64_t h;
	uint32_t len;
	uint8_t used, result;
	char s[KN_STR_CACHE_LEN];
};

struct kn_str {
	const char *key;
	size_t keylen;
	int invert, regex;
	/* regex mode */
	regex_t *re;
	size_t nre;
	struct kn_str_cache_ent *cache;
	size_t ncache;
	char *scratch;
	size_t scratch_cap;
	/* exact mode: open addressing over the non-empty values */
	const char **slot;
	uint32_t *slot_len;
	size_t nslot;            /* power of two */
};

static void kn_str_destroy(void *state)
{
	struct kn_str *s = state;
	if (!s)
		return;
	for (size_t i = 0; i < s->nre; i++)
		regfree(&s->re[i]);
	free(s->re);
	free(s->cache);
	free(s->scratch);
	free(s->slot);
	free(s->slot_len);
	free(s);
}

static int kn_str_create(const struct kn_tail_pcfg *pc, uint32_t nshards, void **state,
			 struct kn_err *err)
{
	const struct kn_str_conf *c = pc->conf;
	struct kn_str *s = calloc(1, sizeof *s);
	char path[600];
	(void)nshards;
	if (!s)
		goto oom;
	s->key = c->key;
	s->keylen = strlen(c->key);
	s->invert = c->invert_match;
	s->regex = c->enabled_regex_matching;
	if (s->regex) {
		snprintf(path, sizeof path, "%s.string_attribute", pc->path);
		if (c->values.n && !(s->re = calloc(c->values.n, sizeof *s->re)))
			goto oom;
		for (size_t i = 0; i < c->values.n; i++) {
			if (kn_str_compile(&s->re[i], c->values.v[i], path, i, err) != KN_OK)
				goto fail;
			s->nre = i + 1;
		}
		s->ncache = c->cache_max_size > 0 ? (size_t)c->cache_max_size : KN_STR_DEFAULT_CACHE;
		s->scratch_cap = 1024;
		if (!(s->cache = calloc(s->ncache, sizeof *s->cache)) ||
		    !(s->scratch = malloc(s->scratch_cap)))
			goto oom;
	} else {
		s->nslot = 8;
		while (s->nslot < 2 * c->values.n)
			s->nslot *= 2;
		if (!(s->slot = calloc(s->nslot, sizeof *s->slot)) ||
		    !(s->slot_len = calloc(s->nslot, sizeof *s->slot_len)))
			goto oom;
		for (size_t i = 0; i < c->values.n; i++) {
			size_t len = strlen(c->values.v[i]);
			if (len == 0)
				continue;
			size_t j = kn_tail_fnv1a(KN_TAIL_FNV_OFFSET, c->values.v[i], len) & (s->nslot - 1);
			while (s->slot[j] && !(s->slot_len[j] == len && memcmp(s->slot[j], c->values.v[i], len) == 0))
				j = (j + 1) & (s->nslot - 1);
			s->slot[j] = c->values.v[i];
			s->slot_len[j] = (uint32_t)len;
		}
	}
	*state = s;
	return KN_OK;
oom:
	kn_errf(err, "out of memory");
fail:
	kn_str_destroy(s);
	return KN_ERR;
}

static int kn_str_exact(const struct kn_str *s, const char *v, uint32_t len)
{
	if (len == 0)
		return 0;
	size_t j = kn_tail_fnv1a(KN_TAIL_FNV_OFFSET, v, len) & (s->nslot - 1);
	while (s->slot[j]) {
		if (s->slot_len[j] == len && memcmp(s->slot[j], v, len) == 0)
			return 1;
		j = (j + 1) & (s->nslot - 1);
	}
	return 0;
}

static int kn_str_regex(struct kn_str *s, const char *v, uint32_t len)
{
	struct kn_str_cache_ent *e = NULL;
	uint64_t h = 0;
	int result = 0;
	if (len <= KN_STR_CACHE_LEN) {
		h = kn_tail_fnv1a(KN_TAIL_FNV_OFFSET, v, len);
		e = &s->cache[h % s->ncache];
		if (e->used && e->h == h && e->len == len && memcmp(e->s, v, len) == 0)
			return e->result;
	}
	if (len >= s->scratch_cap) {
		size_t cap = s->scratch_cap;
		while (cap <= len)
			cap *= 2;
		char *p = realloc(s->scratch, cap);
		if (!p)
			return 0;
		s->scratch = p;
		s->scratch_cap = cap;
	}
	memcpy(s->scratch, v, len);
	s->scratch[len] = '\0';
	for (size_t i = 0; i < s->nre && !result; i++)
		result = regexec(&s->re[i], s->scratch, 0, NULL, 0) == 0;
	if (e) {
		e->used = 1;
		e->h = h;
		e->len = len;
		memcpy(e->s, v, len);
		e->result = (uint8_t)result;
	}
	return result;
}

static int kn_str_match(void *ctx, const struct kn_tail_value *v, int is_span)
{
	struct kn_str *s = ctx;
	const char *str;
	uint32_t len = kn_tail_value_str(v, &str);
	if (is_span && len == 0)
		return 0;
	return s->regex ? kn_str_regex(s, str, len) : kn_str_exact(s, str, len);
}

static enum kn_tail_decision kn_str_eval(void *state, struct kn_tail_eval *ev)
{
	struct kn_str *s = state;
	return kn_tail_match_attr(ev, s->key, s->keylen, kn_str_match, s, s->invert);
}

const struct kn_tail_policy_ops kn_policy_string_attribute_ops = {
	.type = "string_attribute",
	.table = kn_str_table,
	.conf_size = sizeof(struct kn_str_conf),
	.block_required = 1,
	.check = kn_str_check,
	.create = kn_str_create,
	.eval = kn_str_eval,
	.destroy = kn_str_destroy,
};
