/* SPDX-License-Identifier: Apache-2.0
 * kn_attributes_filter: the `include` / `exclude` blocks of the attributes
 * processor (OTel's filterconfig.MatchProperties for spans):
 *   match_type: strict | regexp          (required)
 *   regexp: {cacheenabled, cachemaxnumentries}   accepted; PCRE2 needs no
 *                                        result cache, matching is the same
 *   services: [..]     resource service.name (as a string; absent:
 *                      "<nil-service-name>") matches one of them
 *   span_names: [..]   span name matches one of them
 *   span_kinds: [..]   "SPAN_KIND_SERVER", ... matches one of them
 *   attributes: [{key, value}]   every one present on the span (and equal
 *                      to value when given; regexp: value is a pattern on
 *                      the value's string form)
 *   resources: [{key, value}]    the same on resource attributes
 *   libraries: [{name, version}] every one matches the scope (name, and
 *                      version when the key is given, even "")
 * Every listed property must match (OTel's code: the attribute, resource
 * and library lists need all their items, the name lists any one item).
 * At least one property is required. The logs / metrics keys
 * (log_bodies, log_severity_texts, log_severity_number, metric_names) are
 * refused, as OTel refuses them for spans. Regexps are unanchored (Go's
 * MatchString). */
#ifndef KN_ATTRIBUTES_FILTER_H
#define KN_ATTRIBUTES_FILTER_H

#include <stdint.h>

#include "../../collector/attraction/kn_attraction.h"

struct kn_af_names {       /* a name list: strings, or compiled patterns */
	char **v;
	void **re;
	size_t n;
};

struct kn_af_attr {
	char *key;
	int has_value;
	struct kn_av value;     /* strict */
	char *value_text;
	void *re;               /* regexp */
};

struct kn_af_lib {
	char *name;
	void *name_re;
	int has_version;
	char *version;
	void *version_re;
};

struct kn_af {
	int present;
	int regexp;
	struct kn_af_names services, span_names, span_kinds;
	struct kn_af_attr *attrs;
	size_t nattrs;
	struct kn_af_attr *res;
	size_t nres;
	struct kn_af_lib *libs;
	size_t nlibs;
};

int kn_af_parse(const struct kn_cnode *node, void *dst, struct kn_err *err);
void kn_af_free(void *dst);

/* What a span is matched against: its attributes (view), resource
 * attributes (view, may be empty), scope name / version, name and kind. */
struct kn_af_subject {
	const struct kn_wire_attrs *span_attrs;
	const struct kn_wire_attrs *res_attrs;
	const uint8_t *scope_name; uint32_t scope_name_len;
	const uint8_t *scope_version; uint32_t scope_version_len;
	const uint8_t *name; uint32_t name_len;
	int32_t kind;
};

/* 1 when the span matches f (which must be present). */
int kn_af_match(const struct kn_af *f, struct kn_attraction_scratch *sc, const struct kn_af_subject *s);

#endif
