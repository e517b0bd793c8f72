/* SPDX-License-Identifier: Apache-2.0
 * kn_attributes_filter: parsing and evaluating include / exclude (see
 * kn_attributes_filter.h). Parsing at config time; matching per span reads
 * only the views the processor already loaded, nothing is allocated. */
#include "kn_attributes_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
	"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
	"SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};

static void names_free(struct kn_af_names *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v ? l->v[i] : NULL);
		if (l->re && l->re[i])
			kn_attraction_re_free(l->re[i]);
	}
	free(l->v);
	free(l->re);
	memset(l, 0, sizeof *l);
}

static void attr_free(struct kn_af_attr *a)
{
	free(a->key);
	free(a->value_text);
	if (a->re)
		kn_attraction_re_free(a->re);
}

void kn_af_free(void *dst)
{
	struct kn_af *f = dst;
	names_free(&f->services);
	names_free(&f->span_names);
	names_free(&f->span_kinds);
	for (size_t i = 0; i < f->nattrs; i++)
		attr_free(&f->attrs[i]);
	free(f->attrs);
	for (size_t i = 0; i < f->nres; i++)
		attr_free(&f->res[i]);
	free(f->res);
	for (size_t i = 0; i < f->nlibs; i++) {
		free(f->libs[i].name);
		free(f->libs[i].version);
		if (f->libs[i].name_re)
			kn_attraction_re_free(f->libs[i].name_re);
		if (f->libs[i].version_re)
			kn_attraction_re_free(f->libs[i].version_re);
	}
	free(f->libs);
	memset(f, 0, sizeof *f);
}

static int names_parse(const struct kn_cnode *n, int regexp, struct kn_af_names *l, struct kn_err *err)
{
	if (n->type == KN_CNODE_NULL)
		return KN_OK;
	if (n->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of strings", n->path);
	if (n->n == 0)
		return KN_OK;
	l->v = calloc(n->n, sizeof *l->v);
	l->re = calloc(n->n, sizeof *l->re);
	if (!l->v || !l->re)
		return kn_errf(err, "%s: out of memory", n->path);
	for (size_t i = 0; i < n->n; i++) {
		const struct kn_cnode *c = &n->children[i];
		l->n = i + 1;
		if (c->type != KN_CNODE_SCALAR)
			return kn_errf(err, "%s: expected a string", c->path);
		if (!(l->v[i] = strdup(c->value)))
			return kn_errf(err, "%s: out of memory", c->path);
		if (regexp && !(l->re[i] = kn_attraction_re_compile(c->value, c->path, err)))
			return KN_ERR;
	}
	return KN_OK;
}

static int attrs_parse(const struct kn_cnode *n, int regexp, struct kn_af_attr **out, size_t *nout,
		       struct kn_err *err)
{
	if (n->type == KN_CNODE_NULL)
		return KN_OK;
	if (n->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of {key, value}", n->path);
	if (n->n == 0)
		return KN_OK;
	*out = calloc(n->n, sizeof **out);
	if (!*out)
		return kn_errf(err, "%s: out of memory", n->path);
	for (size_t i = 0; i < n->n; i++) {
		const struct kn_cnode *c = &n->children[i];
		struct kn_af_attr *a = &(*out)[i];
		*nout = i + 1;
		if (c->type != KN_CNODE_MAP)
			return kn_errf(err, "%s: expected a map {key, value}", c->path);
		const struct kn_cnode *value = NULL;
		for (size_t k = 0; k < c->n; k++) {
			const struct kn_cnode *e = &c->children[k];
			if (!strcmp(e->key, "key")) {
				if (e->type != KN_CNODE_SCALAR || !e->value[0])
					return kn_errf(err, "%s: expected a non-empty string", e->path);
				if (!(a->key = strdup(e->value)))
					return kn_errf(err, "%s: out of memory", e->path);
			} else if (!strcmp(e->key, "value")) {
				value = e->type == KN_CNODE_NULL ? NULL : e;
			} else {
				return kn_errf(err, "%s: unknown key (supported: key, value)", e->path);
			}
		}
		if (!a->key)
			return kn_errf(err, "%s.key: missing", c->path);
		if (!value)
			continue;
		struct kn_av v;
		if (kn_attraction_scalar(value, &v, err) != KN_OK)
			return KN_ERR;
		if (!(a->value_text = strdup(value->value)))
			return kn_errf(err, "%s: out of memory", value->path);
		a->has_value = 1;
		if (regexp) {
			if (v.type != KN_AV_STR)
				return kn_errf(err, "%s: match_type regexp takes a string pattern here (quote it)",
					       value->path);
			if (!(a->re = kn_attraction_re_compile(a->value_text, value->path, err)))
				return KN_ERR;
		} else {
			a->value = v;
			if (v.type == KN_AV_STR)
				a->value.s = (const uint8_t *)a->value_text;
		}
	}
	return KN_OK;
}

static int libs_parse(const struct kn_cnode *n, int regexp, struct kn_af *f, struct kn_err *err)
{
	if (n->type == KN_CNODE_NULL)
		return KN_OK;
	if (n->type != KN_CNODE_SEQ)
		return kn_errf(err, "%s: expected a list of {name, version}", n->path);
	if (n->n == 0)
		return KN_OK;
	f->libs = calloc(n->n, sizeof *f->libs);
	if (!f->libs)
		return kn_errf(err, "%s: out of memory", n->path);
	for (size_t i = 0; i < n->n; i++) {
		const struct kn_cnode *c = &n->children[i];
		struct kn_af_lib *l = &f->libs[i];
		f->nlibs = i + 1;
		if (c->type != KN_CNODE_MAP)
			return kn_errf(err, "%s: expected a map {name, version}", c->path);
		for (size_t k = 0; k < c->n; k++) {
			const struct kn_cnode *e = &c->children[k];
			const char *txt = e->type == KN_CNODE_SCALAR ? e->value : e->type == KN_CNODE_NULL ? "" : NULL;
			if (!txt)
				return kn_errf(err, "%s: expected a string", e->path);
			if (!strcmp(e->key, "name")) {
				if (!(l->name = strdup(txt)))
					return kn_errf(err, "%s: out of memory", e->path);
				if (regexp && !(l->name_re = kn_attraction_re_compile(txt, e->path, err)))
					return KN_ERR;
			} else if (!strcmp(e->key, "version")) {
				l->has_version = 1;
				if (!(l->version = strdup(txt)))
					return kn_errf(err, "%s: out of memory", e->path);
				if (regexp && !(l->version_re = kn_attraction_re_compile(txt, e->path, err)))
					return KN_ERR;
			} else {
				return kn_errf(err, "%s: unknown key (supported: name, version)", e->path);
			}
		}
		if (!l->name)
			return kn_errf(err, "%s.name: missing", c->path);
	}
	return KN_OK;
}

int kn_af_parse(const struct kn_cnode *node, void *dst, struct kn_err *err)
{
	struct kn_af *f = dst;
	if (node->type == KN_CNODE_NULL)
		return KN_OK;
	if (node->type != KN_CNODE_MAP)
		return kn_errf(err, "%s: expected a map", node->path);
	const struct kn_cnode *mt = kn_cnode_get(node, "match_type");
	if (!mt || mt->type != KN_CNODE_SCALAR)
		return kn_errf(err, "%s.match_type: missing (strict or regexp)", node->path);
	if (!strcmp(mt->value, "regexp"))
		f->regexp = 1;
	else if (strcmp(mt->value, "strict"))
		return kn_errf(err, "%s: unknown match_type \"%s\" (strict or regexp)", mt->path, mt->value);
	f->present = 1;
	int any = 0;
	for (size_t i = 0; i < node->n; i++) {
		const struct kn_cnode *c = &node->children[i];
		int rc = KN_OK;
		if (!strcmp(c->key, "match_type")) {
			continue;
		} else if (!strcmp(c->key, "regexp")) {
			static const struct kn_cfg_field re_fields[] = {
				{.key = "cacheenabled", .type = KN_F_BOOL, .off = 0,
				 .help = "accepted; kansatsu keeps no match cache"},
				{.key = "cachemaxnumentries", .type = KN_F_UINT, .off = sizeof(int64_t),
				 .help = "accepted; kansatsu keeps no match cache"},
				KN_CFG_END,
			};
			int64_t tmp[2] = {0, 0};
			if (!f->regexp)
				return kn_errf(err, "%s: only with match_type regexp", c->path);
			rc = kn_cfg_apply(re_fields, c, tmp, err);
		} else if (!strcmp(c->key, "services")) {
			rc = names_parse(c, f->regexp, &f->services, err);
			any |= f->services.n > 0;
		} else if (!strcmp(c->key, "span_names")) {
			rc = names_parse(c, f->regexp, &f->span_names, err);
			any |= f->span_names.n > 0;
		} else if (!strcmp(c->key, "span_kinds")) {
			rc = names_parse(c, f->regexp, &f->span_kinds, err);
			any |= f->span_kinds.n > 0;
		} else if (!strcmp(c->key, "attributes")) {
			rc = attrs_parse(c, f->regexp, &f->attrs, &f->nattrs, err);
			any |= f->nattrs > 0;
		} else if (!strcmp(c->key, "resources")) {
			rc = attrs_parse(c, f->regexp, &f->res, &f->nres, err);
			any |= f->nres > 0;
		} else if (!strcmp(c->key, "libraries")) {
			rc = libs_parse(c, f->regexp, f, err);
			any |= f->nlibs > 0;
		} else if (!strcmp(c->key, "log_bodies") || !strcmp(c->key, "log_severity_texts") ||
			   !strcmp(c->key, "log_severity_number") || !strcmp(c->key, "metric_names")) {
			return kn_errf(err, "%s: not valid for spans (kansatsu handles traces only)", c->path);
		} else {
			return kn_errf(err, "%s: unknown key (supported: match_type, regexp, services, span_names, "
				       "span_kinds, attributes, resources, libraries)", c->path);
		}
		if (rc != KN_OK)
			return rc;
	}
	if (!any)
		return kn_errf(err, "%s: needs at least one of services, span_names, span_kinds, attributes, "
			       "resources or libraries (not empty)", node->path);
	return KN_OK;
}

static int names_match(const struct kn_af *f, const struct kn_af_names *l,
		       struct kn_attraction_scratch *sc, const char *s, size_t len)
{
	for (size_t i = 0; i < l->n; i++) {
		if (f->regexp) {
			if (kn_attraction_re_match(l->re[i], sc, s, len))
				return 1;
		} else if (strlen(l->v[i]) == len && (len == 0 || memcmp(l->v[i], s, len) == 0)) {
			return 1;
		}
	}
	return 0;
}

static int one_match(const struct kn_af *f, struct kn_attraction_scratch *sc, const void *re,
		     const char *lit, const uint8_t *s, uint32_t len)
{
	if (f->regexp)
		return kn_attraction_re_match(re, sc, (const char *)s, len);
	return strlen(lit) == len && (len == 0 || memcmp(lit, s, len) == 0);
}

static int attrs_match(const struct kn_af *f, struct kn_attraction_scratch *sc,
		       const struct kn_af_attr *m, size_t n, const struct kn_wire_attrs *at)
{
	if (n == 0)
		return 1;
	if (!at || at->nlive == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int k = kn_wire_attrs_find(at, m[i].key, strlen(m[i].key));
		if (k < 0)
			return 0;
		if (!m[i].has_value)
			continue;
		const struct kn_av *v = &at->a[k].v;
		if (f->regexp) {
			char buf[64];
			const char *txt;
			int l = kn_av_string(v, buf, &txt);
			if (l < 0 || !kn_attraction_re_match(m[i].re, sc, txt, (size_t)l))
				return 0;
		} else if (!kn_av_equal(&m[i].value, v)) {
			return 0;
		}
	}
	return 1;
}

int kn_af_match(const struct kn_af *f, struct kn_attraction_scratch *sc, const struct kn_af_subject *s)
{
	if (f->services.n) {
		char buf[64];
		const char *txt = "<nil-service-name>";
		int l = (int)strlen(txt);
		int k = s->res_attrs ? kn_wire_attrs_find(s->res_attrs, "service.name", 12) : -1;
		if (k >= 0) {
			l = kn_av_string(&s->res_attrs->a[k].v, buf, &txt);
			if (l < 0) {   /* a non-scalar service.name: its string form is not "" */
				txt = "";
				l = 0;
			}
		}
		if (!names_match(f, &f->services, sc, txt, (size_t)l))
			return 0;
	}
	if (f->span_names.n && !names_match(f, &f->span_names, sc, (const char *)s->name, s->name_len))
		return 0;
	if (f->span_kinds.n) {
		const char *k = s->kind >= 0 && s->kind <= 5 ? kind_names[s->kind] : "";
		if (!names_match(f, &f->span_kinds, sc, k, strlen(k)))
			return 0;
	}
	for (size_t i = 0; i < f->nlibs; i++) {
		const struct kn_af_lib *l = &f->libs[i];
		if (!one_match(f, sc, l->name_re, l->name, s->scope_name, s->scope_name_len))
			return 0;
		if (l->has_version &&
		    !one_match(f, sc, l->version_re, l->version, s->scope_version, s->scope_version_len))
			return 0;
	}
	if (!attrs_match(f, sc, f->res, f->nres, s->res_attrs))
		return 0;
	return attrs_match(f, sc, f->attrs, f->nattrs, s->span_attrs);
}
