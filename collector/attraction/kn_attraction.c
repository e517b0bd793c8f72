/* SPDX-License-Identifier: Apache-2.0
 * kn_attraction: parsing and applying OTel's attribute actions (see
 * kn_attraction.h). Parsing runs at config time (allocation is fine);
 * applying runs per span / resource on the shard worker and allocates
 * nothing once the scratch and the view are warm (hash and convert results
 * go into the view's string blocks). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "kn_attraction.h"

#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/kn_strconv.h"

#include <openssl/sha.h>

#include "../core/kn_hex.h"

struct kn_attraction_scratch {
	pcre2_match_data *md;
};

/* ---- regular expressions ---- */

void *kn_attraction_re_compile(const char *pattern, const char *path, struct kn_err *err)
{
	int ec;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
				       &ec, &eo, NULL);
	if (!re) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(ec, msg, sizeof msg);
		kn_errf(err, "%s: invalid pattern \"%s\": %s at offset %zu", path, pattern,
			(const char *)msg, (size_t)eo);
		return NULL;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* faster when available; optional */
	return re;
}

void kn_attraction_re_free(void *re)
{
	pcre2_code_free(re);
}

struct kn_attraction_scratch *kn_attraction_scratch_new(uint32_t ngroups)
{
	struct kn_attraction_scratch *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->md = pcre2_match_data_create(ngroups + 1, NULL);
	if (!s->md) {
		free(s);
		return NULL;
	}
	return s;
}

void kn_attraction_scratch_free(struct kn_attraction_scratch *s)
{
	if (!s)
		return;
	pcre2_match_data_free(s->md);
	free(s);
}

/* >= 0 on a match (the ovector holds min(groups, size) pairs), < 0 otherwise.
 * Invalid UTF-8 in the subject is no match, never an error. */
static int re_exec(const void *re, struct kn_attraction_scratch *s, const uint8_t *str, size_t len)
{
	return pcre2_match(re, (PCRE2_SPTR)(str ? str : (const uint8_t *)""), len, 0, 0, s->md, NULL);
}

int kn_attraction_re_match(const void *re, struct kn_attraction_scratch *s, const char *str,
			   size_t len)
{
	return re_exec(re, s, (const uint8_t *)str, len) >= 0;
}

/* ---- config ---- */

int kn_attraction_scalar(const struct kn_cnode *n, struct kn_av *v, struct kn_err *err)
{
	memset(v, 0, sizeof *v);
	if (n->type == KN_CNODE_MAP || n->type == KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a string, number or bool (maps and lists are not supported)",
			       n->path);
	const char *s = n->type == KN_CNODE_SCALAR && n->value ? n->value : "";
	v->type = KN_AV_STR;
	v->s = (const uint8_t *)s;
	v->len = (uint32_t)strlen(s);
	if (n->quoted || n->type != KN_CNODE_SCALAR)
		return KN_OK;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		v->type = KN_AV_BOOL;
		v->b = 1;
		return KN_OK;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		v->type = KN_AV_BOOL;
		v->b = 0;
		return KN_OK;
	}
	const char *d = s + (*s == '-' || *s == '+');
	size_t nd = strspn(d, "0123456789");
	if (nd > 0 && d[nd] == '\0') {
		errno = 0;
		long long x = strtoll(s, NULL, 10);
		if (errno == 0) {
			v->type = KN_AV_INT;
			v->i = x;
			return KN_OK;
		}
	}
	/* a float: digits with a point and/or an exponent */
	if (strspn(d, "0123456789.eE+-") == strlen(d) && strpbrk(d, "0123456789")) {
		char *end;
		errno = 0;
		double x = strtod(s, &end);
		if (*end == '\0' && errno == 0) {
			v->type = KN_AV_DOUBLE;
			v->d = x;
		}
	}
	return KN_OK;
}

static char *xstrdup(const char *s, struct kn_err *err, const char *path)
{
	char *r = strdup(s ? s : "");
	if (!r)
		kn_errf(err, "%s: out of memory", path);
	return r;
}

static void action_free(struct kn_attraction *a)
{
	free(a->key);
	free(a->value_text);
	free(a->default_text);
	free(a->from_attribute);
	free(a->pattern);
	if (a->re)
		pcre2_code_free(a->re);
	for (uint32_t i = 0; i < a->ngroups; i++)
		free(a->groups[i].name);
	free(a->groups);
	memset(a, 0, sizeof *a);
}

void kn_attractions_free(void *dst)
{
	struct kn_attractions *l = dst;
	for (size_t i = 0; i < l->n; i++)
		action_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static const char *const op_names[] = {
	"insert", "update", "upsert", "delete", "hash", "extract", "convert", NULL,
};

static int scalar_text(const struct kn_cnode *c, const char **out, struct kn_err *err)
{
	if (c->type == KN_CNODE_NULL) {
		*out = NULL;
		return KN_OK;
	}
	if (c->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s: expected a string", c->path);
	*out = c->value;
	return KN_OK;
}

/* A value node -> owned copy of its text + typed value pointing into it. */
static int value_of(const struct kn_cnode *c, struct kn_av *v, char **text, struct kn_err *err)
{
	struct kn_av tmp;
	if (kn_attraction_scalar(c, &tmp, err) != KN_OK)
		return KN_ERR;
	*text = xstrdup(c->value, err, c->path);
	if (!*text)
		return KN_ERR;
	*v = tmp;
	if (v->type == KN_AV_STR)
		v->s = (const uint8_t *)*text;
	return KN_OK;
}

static int extract_groups(struct kn_attraction *a, const char *path, struct kn_err *err)
{
	uint32_t ncap = 0, nname = 0, esz = 0;
	PCRE2_SPTR table;
	pcre2_pattern_info(a->re, PCRE2_INFO_CAPTURECOUNT, &ncap);
	pcre2_pattern_info(a->re, PCRE2_INFO_NAMECOUNT, &nname);
	pcre2_pattern_info(a->re, PCRE2_INFO_NAMEENTRYSIZE, &esz);
	pcre2_pattern_info(a->re, PCRE2_INFO_NAMETABLE, &table);
	if (ncap == 0)
		return kn_errf(err, "%s: pattern \"%s\" contains no named groups (extract needs (?P<name>...))",
			       path, a->pattern);
	a->groups = calloc(ncap, sizeof *a->groups);
	if (!a->groups)
		return kn_errf(err, "%s: out of memory", path);
	a->ngroups = ncap;
	for (uint32_t i = 0; i < nname; i++) {
		const uint8_t *e = table + (size_t)i * esz;
		uint32_t num = (uint32_t)e[0] << 8 | e[1];
		if (num >= 1 && num <= ncap && !a->groups[num - 1].name) {
			a->groups[num - 1].name = strdup((const char *)e + 2);
			if (!a->groups[num - 1].name)
				return kn_errf(err, "%s: out of memory", path);
			a->groups[num - 1].num = num;
		}
	}
	for (uint32_t i = 0; i < ncap; i++)
		if (!a->groups[i].name)
			return kn_errf(err, "%s: pattern \"%s\" contains an unnamed group (group %u); "
				       "extract needs every group named (use (?:...) for the others)",
				       path, a->pattern, i + 1);
	return KN_OK;
}

static int action_parse(const struct kn_cnode *n, struct kn_attraction *a, uint32_t *max_groups,
			struct kn_err *err)
{
	if (n->type != KN_CNODE_MAP)
		return kn_errf(err, "%s: expected a map {key, action, ...}", n->path);
	const struct kn_cnode *action = NULL, *value = NULL, *def = NULL;
	const char *key = NULL, *from_attr = NULL, *from_ctx = NULL, *pattern = NULL, *conv = NULL;
	const struct kn_cnode *ctx_node = NULL;
	for (size_t i = 0; i < n->n; i++) {
		const struct kn_cnode *c = &n->children[i];
		int rc = KN_OK;
		if (!strcmp(c->key, "key"))
			rc = scalar_text(c, &key, err);
		else if (!strcmp(c->key, "action"))
			action = c;
		else if (!strcmp(c->key, "value"))
			value = c->type == KN_CNODE_NULL ? NULL : c;
		else if (!strcmp(c->key, "default_value"))
			def = c->type == KN_CNODE_NULL ? NULL : c;
		else if (!strcmp(c->key, "from_attribute"))
			rc = scalar_text(c, &from_attr, err);
		else if (!strcmp(c->key, "from_context")) {
			rc = scalar_text(c, &from_ctx, err);
			ctx_node = c;
		} else if (!strcmp(c->key, "pattern"))
			rc = scalar_text(c, &pattern, err);
		else if (!strcmp(c->key, "converted_type"))
			rc = scalar_text(c, &conv, err);
		else
			return kn_errf(err, "%s: unknown key (supported: key, action, value, from_attribute, "
				       "from_context, default_value, pattern, converted_type)", c->path);
		if (rc != KN_OK)
			return rc;
	}
	if (key && !*key)
		key = NULL;
	if (from_attr && !*from_attr)
		from_attr = NULL;
	if (from_ctx && !*from_ctx)
		from_ctx = NULL;
	if (pattern && !*pattern)
		pattern = NULL;
	if (conv && !*conv)
		conv = NULL;
	if (!action || action->type == KN_CNODE_NULL)
		return kn_errf(err, "%s.action: missing (one of insert, update, upsert, delete, hash, extract, convert)",
			       n->path);
	if (action->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s: expected a string", action->path);
	int op = -1;
	for (int k = 0; op_names[k]; k++)
		if (!strcasecmp(action->value, op_names[k]))
			op = k;
	if (op < 0)
		return kn_errf(err, "%s: unknown action \"%s\" (one of insert, update, upsert, delete, hash, extract, convert)",
			       action->path, action->value);
	a->op = (enum kn_attraction_op)op;
	const char *opn = op_names[op];
	int sources = (value != NULL) + (from_attr != NULL) + (from_ctx != NULL);
	switch (a->op) {
	case KN_ACT_DELETE:
	case KN_ACT_HASH:
		if (!key && !pattern)
			return kn_errf(err, "%s: action %s needs \"key\" and/or \"pattern\"", n->path, opn);
		if (value || from_attr || from_ctx || def)
			return kn_errf(err, "%s: action %s does not use value, from_attribute, from_context or default_value",
				       n->path, opn);
		if (conv)
			return kn_errf(err, "%s.converted_type: not used by action %s", n->path, opn);
		break;
	case KN_ACT_INSERT:
	case KN_ACT_UPDATE:
	case KN_ACT_UPSERT:
		if (!key)
			return kn_errf(err, "%s.key: missing", n->path);
		if (sources == 0 && !def)
			return kn_errf(err, "%s: action %s needs one of value, from_attribute, from_context or default_value",
				       n->path, opn);
		if (sources > 1)
			return kn_errf(err, "%s: action %s takes only one of value, from_attribute, from_context",
				       n->path, opn);
		if (pattern)
			return kn_errf(err, "%s.pattern: not used by action %s", n->path, opn);
		if (conv)
			return kn_errf(err, "%s.converted_type: not used by action %s", n->path, opn);
		if (from_ctx)
			return kn_errf(err, "%s: \"%s\" is not supported: kansatsu does not carry "
				       "client metadata, auth data or the client address into the pipeline, "
				       "so the action could never fire (use value or from_attribute)",
				       ctx_node->path, from_ctx);
		break;
	case KN_ACT_EXTRACT:
		if (!key)
			return kn_errf(err, "%s.key: missing", n->path);
		if (sources || def)
			return kn_errf(err, "%s: action extract does not use value, from_attribute, from_context or default_value",
				       n->path);
		if (!pattern)
			return kn_errf(err, "%s.pattern: missing (action extract)", n->path);
		if (conv)
			return kn_errf(err, "%s.converted_type: not used by action extract", n->path);
		break;
	case KN_ACT_CONVERT:
		if (!key)
			return kn_errf(err, "%s.key: missing", n->path);
		if (sources || def || pattern)
			return kn_errf(err, "%s: action convert does not use value sources or pattern", n->path);
		if (!conv)
			return kn_errf(err, "%s.converted_type: missing (one of int, double, string)", n->path);
		if (!strcmp(conv, "int"))
			a->conv = KN_CONV_INT;
		else if (!strcmp(conv, "double"))
			a->conv = KN_CONV_DOUBLE;
		else if (!strcmp(conv, "string"))
			a->conv = KN_CONV_STRING;
		else
			return kn_errf(err, "%s.converted_type: unknown type \"%s\" (one of int, double, string)",
				       n->path, conv);
		break;
	}
	if (key) {
		if (!(a->key = xstrdup(key, err, n->path)))
			return KN_ERR;
		a->key_len = strlen(key);
	}
	if (from_attr && !(a->from_attribute = xstrdup(from_attr, err, n->path)))
		return KN_ERR;
	if (value) {
		if (value_of(value, &a->value, &a->value_text, err) != KN_OK)
			return KN_ERR;
		a->has_value = 1;
	}
	if (def) {
		if (value_of(def, &a->def, &a->default_text, err) != KN_OK)
			return KN_ERR;
		a->has_default = 1;
	}
	if (pattern) {
		char ppath[600];
		snprintf(ppath, sizeof ppath, "%s.pattern", n->path);
		if (!(a->pattern = xstrdup(pattern, err, n->path)))
			return KN_ERR;
		if (!(a->re = kn_attraction_re_compile(pattern, ppath, err)))
			return KN_ERR;
		uint32_t ncap = 0;
		pcre2_pattern_info(a->re, PCRE2_INFO_CAPTURECOUNT, &ncap);
		if (ncap > *max_groups)
			*max_groups = ncap;
		if (a->op == KN_ACT_EXTRACT && extract_groups(a, ppath, err) != KN_OK)
			return KN_ERR;
	}
	return KN_OK;
}

int kn_attractions_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_attractions *l = dst;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of actions", node->path);
	if (node->n == 0)
		return KN_OK;
	l->v = calloc(node->n, sizeof *l->v);
	if (!l->v)
		return kn_errf(err, "%s: out of memory", node->path);
	for (size_t i = 0; i < node->n; i++) {
		l->n = i + 1;
		if (action_parse(&node->children[i], &l->v[i], &l->max_groups, err) != KN_OK)
			return KN_ERR;
	}
	return KN_OK;
}

/* ---- applying ---- */

static int source_value(const struct kn_attraction *a, const struct kn_wire_attrs *at,
			struct kn_av *v)
{
	if (a->has_value) {
		*v = a->value;
		return 1;
	}
	if (a->from_attribute) {
		int i = kn_wire_attrs_find(at, a->from_attribute, strlen(a->from_attribute));
		if (i >= 0) {
			*v = at->a[i].v;
			return 1;
		}
	}
	if (a->has_default) {
		*v = a->def;
		return 1;
	}
	return 0;
}

static int hash_entry(struct kn_wire_attrs *at, uint32_t i)
{
	const struct kn_av *v = &at->a[i].v;
	uint8_t buf[8];
	const uint8_t *in = NULL;
	size_t n = 0;
	uint64_t u;
	switch (v->type) {
	case KN_AV_STR:
		in = v->s;
		n = v->len;
		break;
	case KN_AV_BOOL:
		buf[0] = v->b ? 1 : 0;
		in = buf;
		n = 1;
		break;
	case KN_AV_INT:
	case KN_AV_DOUBLE:
		if (v->type == KN_AV_INT)
			u = (uint64_t)v->i;
		else
			memcpy(&u, &v->d, sizeof u);
		for (int k = 0; k < 8; k++)
			buf[k] = (uint8_t)(u >> (8 * k));
		in = buf;
		n = 8;
		break;
	default:
		break;
	}
	struct kn_av out = {.type = KN_AV_STR, .s = (const uint8_t *)"", .len = 0};
	/* OTel hashes nothing for other types (and an empty string's hash is
	 * still a hash: only the non-scalar types become ""). */
	if (in) {
		uint8_t md[SHA256_DIGEST_LENGTH];
		SHA256(n ? in : (const uint8_t *)"", n, md);
		char *hex = (char *)kn_wire_attrs_alloc(at, 2 * SHA256_DIGEST_LENGTH);
		if (!hex)
			return -1;
		kn_hex_encode(md, SHA256_DIGEST_LENGTH, hex);
		out.s = (const uint8_t *)hex;
		out.len = 2 * SHA256_DIGEST_LENGTH;
	}
	kn_wire_attrs_set(at, i, &out);
	return 0;
}

/* OTel's sha2Hasher on strings hashes even "" (len(val) > 0 is false for an
 * empty string, so an empty string becomes ""): mirror that exactly. */
static int hash_key(struct kn_wire_attrs *at, uint32_t i)
{
	const struct kn_av *v = &at->a[i].v;
	if (v->type == KN_AV_STR && v->len == 0) {
		struct kn_av e = {.type = KN_AV_STR, .s = (const uint8_t *)"", .len = 0};
		kn_wire_attrs_set(at, i, &e);
		return 0;
	}
	return hash_entry(at, i);
}

static int parse_double(const uint8_t *s, uint32_t len, double *out)
{
	char buf[128];
	if (len == 0 || len >= sizeof buf || s[0] == ' ' || s[0] == '\t' || s[0] == '\n')
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (strchr(buf, '_'))
		return -1;
	char *end;
	errno = 0;
	double x = strtod(buf, &end);
	if (*end != '\0' || (errno == ERANGE && isinf(x)))
		return -1;
	*out = x;
	return 0;
}

static int convert(struct kn_wire_attrs *at, uint32_t i, enum kn_attraction_conv to)
{
	struct kn_av v = at->a[i].v, n = {0};
	switch (to) {
	case KN_CONV_STRING: {
		if (v.type == KN_AV_STR)
			return 0;
		if (v.type == KN_AV_RAW)
			return 0;   /* bytes / array / map: left as they are (documented) */
		char tmp[64];
		const char *txt;
		int l = kn_av_string(&v, tmp, &txt);
		if (l < 0)
			l = 0;
		char *s = (char *)kn_wire_attrs_alloc(at, (size_t)l + 1);
		if (!s)
			return -1;
		memcpy(s, txt, (size_t)l);
		n.type = KN_AV_STR;
		n.s = (const uint8_t *)s;
		n.len = (uint32_t)l;
		break;
	}
	case KN_CONV_INT:
		n.type = KN_AV_INT;
		if (v.type == KN_AV_INT)
			return 0;
		if (v.type == KN_AV_DOUBLE) {
			/* Go's int64(f): truncation; out of range and NaN saturate here */
			if (isnan(v.d))
				n.i = INT64_MIN;
			else if (v.d >= 9223372036854775807.0)
				n.i = INT64_MAX;
			else if (v.d <= -9223372036854775808.0)
				n.i = INT64_MIN;
			else
				n.i = (int64_t)v.d;
		} else if (v.type == KN_AV_BOOL) {
			n.i = v.b;
		} else if (v.type == KN_AV_STR) {
			if (kn_strconv_int(v.s, v.len, &n.i) < 0)
				return 0;
		} else {
			return 0;
		}
		break;
	case KN_CONV_DOUBLE:
		n.type = KN_AV_DOUBLE;
		if (v.type == KN_AV_DOUBLE)
			return 0;
		if (v.type == KN_AV_INT)
			n.d = (double)v.i;
		else if (v.type == KN_AV_BOOL)
			n.d = v.b;
		else if (v.type == KN_AV_STR) {
			if (parse_double(v.s, v.len, &n.d) < 0)
				return 0;
		} else
			return 0;
		break;
	default:
		return 0;
	}
	kn_wire_attrs_set(at, i, &n);
	return 0;
}

static int extract(const struct kn_attraction *a, struct kn_attraction_scratch *s,
		   struct kn_wire_attrs *at)
{
	int i = kn_wire_attrs_find(at, a->key, a->key_len);
	if (i < 0 || at->a[i].v.type != KN_AV_STR)
		return 0;
	const uint8_t *str = at->a[i].v.s;
	uint32_t len = at->a[i].v.len;
	if (re_exec(a->re, s, str, len) < 0)
		return 0;
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
	uint32_t nov = pcre2_get_ovector_count(s->md);
	for (uint32_t g = 0; g < a->ngroups; g++) {
		uint32_t num = a->groups[g].num;
		struct kn_av v = {.type = KN_AV_STR, .s = (const uint8_t *)"", .len = 0};
		if (num < nov && ov[2 * num] != PCRE2_UNSET) {
			v.s = str + ov[2 * num];
			v.len = (uint32_t)(ov[2 * num + 1] - ov[2 * num]);
		}
		if (kn_wire_attrs_put(at, a->groups[g].name, strlen(a->groups[g].name), &v) < 0)
			return -1;
	}
	return 0;
}

/* Every live entry whose key the pattern matches, hashed / deleted. The
 * keys are collected first (OTel collects them, then acts). */
static int by_pattern(const struct kn_attraction *a, struct kn_attraction_scratch *s,
		      struct kn_wire_attrs *at)
{
	uint32_t n = at->n;
	for (uint32_t i = 0; i < n; i++) {
		if (at->a[i].state == KN_WA_DELETED)
			continue;
		if (re_exec(a->re, s, at->a[i].key, at->a[i].key_len) < 0)
			continue;
		if (a->op == KN_ACT_DELETE) {
			kn_wire_attrs_del(at, i);
		} else {
			int j = kn_wire_attrs_find(at, (const char *)at->a[i].key, at->a[i].key_len);
			if (j >= 0 && hash_key(at, (uint32_t)j) < 0)
				return -1;
		}
	}
	return 0;
}

int kn_attractions_apply(const struct kn_attractions *l, struct kn_attraction_scratch *s,
			 struct kn_wire_attrs *at)
{
	for (size_t k = 0; k < l->n; k++) {
		const struct kn_attraction *a = &l->v[k];
		struct kn_av v;
		int i;
		switch (a->op) {
		case KN_ACT_DELETE:
			if (a->key)
				while ((i = kn_wire_attrs_find(at, a->key, a->key_len)) >= 0)
					kn_wire_attrs_del(at, (uint32_t)i);
			if (a->re && by_pattern(a, s, at) < 0)
				return -1;
			break;
		case KN_ACT_HASH:
			if (a->key && (i = kn_wire_attrs_find(at, a->key, a->key_len)) >= 0 &&
			    hash_key(at, (uint32_t)i) < 0)
				return -1;
			if (a->re && by_pattern(a, s, at) < 0)
				return -1;
			break;
		case KN_ACT_INSERT:
			if (!source_value(a, at, &v) || kn_wire_attrs_find(at, a->key, a->key_len) >= 0)
				break;
			if (kn_wire_attrs_add(at, a->key, a->key_len, &v) < 0)
				return -1;
			break;
		case KN_ACT_UPDATE:
			if (!source_value(a, at, &v) || (i = kn_wire_attrs_find(at, a->key, a->key_len)) < 0)
				break;
			kn_wire_attrs_set(at, (uint32_t)i, &v);
			break;
		case KN_ACT_UPSERT:
			if (source_value(a, at, &v) && kn_wire_attrs_put(at, a->key, a->key_len, &v) < 0)
				return -1;
			break;
		case KN_ACT_EXTRACT:
			if (extract(a, s, at) < 0)
				return -1;
			break;
		case KN_ACT_CONVERT:
			if ((i = kn_wire_attrs_find(at, a->key, a->key_len)) >= 0 &&
			    convert(at, (uint32_t)i, a->conv) < 0)
				return -1;
			break;
		}
	}
	return 0;
}
