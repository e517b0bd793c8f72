/* SPDX-License-Identifier: Apache-2.0
 * kn_sli_rules: the `sli` processor's Prometheus rules over a fleet
 * (`kansatsu slo-rules`, kn_component.prom_rules).
 *
 * kansatsu's own burn-rate gauges (kn_sli_render.c) see one process. A fleet
 * of collectors is judged in Prometheus instead, from the two counters every
 * collector exports, kansatsu_sli_events_total and
 * kansatsu_sli_good_events_total {sli, <one label per dimension>}: rate()
 * per series first (so a collector's restart is a counter reset, not a
 * drop), then sum by (sli, <dimensions>) over instances. Per SLI one rule
 * group (its objective and window are literals in it), evaluated in order:
 *   kansatsu:sli_objective:ratio                      vector(objective), label sli
 *   kansatsu:sli_error_ratio:rate<w>                  1 - good/total, w = 5m 30m 1h 2h 6h 1d 3d
 *   kansatsu:sli_burn_rate:rate<w>                    error ratio / (1 - objective)
 *   kansatsu:sli_error_budget_remaining:ratio         1 - burn over the SLO window (increase())
 *   alerts: the SRE workbook's multi-window, multi-burn-rate pairs
 *     page 1h & 5m > 14.4, page 6h & 30m > 6, ticket 1d & 2h > 3,
 *     ticket 3d & 6h > 1 (no `for:`), and the budget spent (< 0).
 * No events in a window means no series (the denominator is filtered with
 * `> 0`), never NaN; clamp_min keeps float noise from a negative ratio.
 *
 * Canary verdict: when a dimension's key is service.version (from resource
 * or head), the same SLI per version V (its label is the dimension's name)
 * against all the other versions, over 5m and 30m:
 *   kansatsu:sli_version_events:rate<w>, kansatsu:sli_version_good_events:rate<w>
 *   kansatsu:sli_canary_error_ratio:rate<w>, kansatsu:sli_canary_others_error_ratio:rate<w>
 *   kansatsu:sli_canary_burn_rate:rate<w>,   kansatsu:sli_canary_others_burn_rate:rate<w>
 *   kansatsu:sli_canary_error_ratio_excess:rate<w>, kansatsu:sli_canary_burn_rate_excess:rate<w>
 * "Others" is `sum by (sli) (X) - on (sli) group_right X`: the SLI's total
 * minus this version's. With one version alone there are no others and no
 * verdict series. deploy/canary/ fails a canary whose burn-rate excess is > 1.
 *
 * Runs once at startup of the subcommand; output only, no state. */
#include <stdio.h>
#include <string.h>

#include "kn_sli_int.h"

static const char *const kn_sli_rule_windows[] = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};
static const char *const kn_sli_canary_windows[] = {"5m", "30m"};

/* The SRE workbook's pairs: long and short window, threshold, severity. */
static const struct {
	const char *alert, *longw, *shortw, *threshold, *severity, *what;
} kn_sli_burn_alerts[] = {
	{"KansatsuSLOBurnPage1h", "1h", "5m", "14.4", "page", "2% of the budget in 1h"},
	{"KansatsuSLOBurnPage6h", "6h", "30m", "6", "page", "5% of the budget in 6h"},
	{"KansatsuSLOBurnTicket1d", "1d", "2h", "3", "ticket", "10% of the budget in 1d"},
	{"KansatsuSLOBurnTicket3d", "3d", "6h", "1", "ticket", "10% of the budget in 3d"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A Prometheus duration for the SLO window: whole days, hours, minutes,
 * seconds, else milliseconds. */
static void prom_duration(uint64_t ns, char *out, size_t cap)
{
	static const struct {
		uint64_t unit;
		const char *suffix;
	} units[] = {{24 * KN_NS_PER_HOUR, "d"}, {KN_NS_PER_HOUR, "h"}, {KN_NS_PER_MIN, "m"},
		     {1000000000ull, "s"}, {1000000ull, "ms"}};
	for (size_t i = 0; i < NELEM(units); i++)
		if (ns % units[i].unit == 0 || i + 1 == NELEM(units)) {
			snprintf(out, cap, "%llu%s", (unsigned long long)(ns / units[i].unit),
				 units[i].suffix);
			return;
		}
}

/* One SLI's rules. by: "sli" or "sli, <dims...>". */
struct rules_ctx {
	FILE *out;
	const struct kn_sli_def *d;
	char by[16 * 72 + 8];
	char sel[160];        /* {sli="<name>"} */
	char budget[32];      /* 1 - objective, e.g. 0.001 */
	char objective[32];   /* percent, e.g. 99.9 */
};

/* A recording rule: its expression follows; the static label sli keeps the
 * same record name in several SLIs' groups apart (promtool's lint rejects
 * identical name + labels in two groups). */
static void record_head(const struct rules_ctx *c, const char *name)
{
	fprintf(c->out, "      - record: %s\n        labels:\n          sli: \"%s\"\n"
			"        expr: |-\n          ", name, c->d->name);
}

static void alert_head(const struct rules_ctx *c, const char *name)
{
	fprintf(c->out, "      - alert: %s\n        expr: |-\n          ", name);
}

/* clamp_min(1 - sum(rate(good)) / (sum(rate(events)) > 0), 0) grouped by g. */
static void error_ratio_expr(const struct rules_ctx *c, const char *g, const char *fn,
			     const char *w)
{
	fprintf(c->out,
		"clamp_min(\n"
		"            1 - sum by (%s) (%s(kansatsu_sli_good_events_total%s[%s]))\n"
		"              / (sum by (%s) (%s(kansatsu_sli_events_total%s[%s])) > 0),\n"
		"            0)\n",
		g, fn, c->sel, w, g, fn, c->sel, w);
}

static void write_windows(const struct rules_ctx *c)
{
	for (size_t i = 0; i < NELEM(kn_sli_rule_windows); i++) {
		const char *w = kn_sli_rule_windows[i];
		char name[96];
		snprintf(name, sizeof name, "kansatsu:sli_error_ratio:rate%s", w);
		record_head(c, name);
		error_ratio_expr(c, c->by, "rate", w);
		snprintf(name, sizeof name, "kansatsu:sli_burn_rate:rate%s", w);
		record_head(c, name);
		fprintf(c->out, "kansatsu:sli_error_ratio:rate%s%s / %s\n", w, c->sel, c->budget);
	}
}

static void write_budget(const struct rules_ctx *c, const char *window)
{
	record_head(c, "kansatsu:sli_error_budget_remaining:ratio");
	fputs("1 - ", c->out);
	error_ratio_expr(c, c->by, "increase", window);
	fprintf(c->out, "            / %s\n", c->budget);
}

static void write_alerts(const struct rules_ctx *c, const char *window)
{
	const char *sli = c->d->name;
	for (size_t i = 0; i < NELEM(kn_sli_burn_alerts); i++) {
		const char *a = kn_sli_burn_alerts[i].alert, *lw = kn_sli_burn_alerts[i].longw,
			   *sw = kn_sli_burn_alerts[i].shortw, *th = kn_sli_burn_alerts[i].threshold;
		alert_head(c, a);
		fprintf(c->out,
			"kansatsu:sli_burn_rate:rate%s%s > %s\n"
			"            and\n"
			"          kansatsu:sli_burn_rate:rate%s%s > %s\n"
			"        labels:\n"
			"          severity: %s\n"
			"          objective: \"%s\"\n"
			"          long_window: %s\n"
			"          short_window: %s\n"
			"        annotations:\n"
			"          summary: \"SLI %s burns its error budget at more than %sx the sustainable rate (%s and %s): %s\"\n",
			lw, c->sel, th, sw, c->sel, th, kn_sli_burn_alerts[i].severity, c->objective,
			lw, sw, sli, th, lw, sw, kn_sli_burn_alerts[i].what);
	}
	alert_head(c, "KansatsuSLOErrorBudgetExhausted");
	fprintf(c->out,
		"kansatsu:sli_error_budget_remaining:ratio%s < 0\n"
		"        labels:\n"
		"          severity: ticket\n"
		"          objective: \"%s\"\n"
		"          slo_window: %s\n"
		"        annotations:\n"
		"          summary: \"SLI %s has spent its error budget for the %s SLO window\"\n",
		c->sel, c->objective, window, sli, window);
}

/* The canary records for version label v. */
static void write_canary(const struct rules_ctx *c, const char *v)
{
	char g[96];
	snprintf(g, sizeof g, "sli, %s", v);
	for (size_t i = 0; i < NELEM(kn_sli_canary_windows); i++) {
		const char *w = kn_sli_canary_windows[i];
		char ev[96], gd[96], name[128];
		snprintf(ev, sizeof ev, "kansatsu:sli_version_events:rate%s", w);
		snprintf(gd, sizeof gd, "kansatsu:sli_version_good_events:rate%s", w);
		record_head(c, ev);
		fprintf(c->out, "sum by (%s) (rate(kansatsu_sli_events_total%s[%s]))\n", g, c->sel, w);
		record_head(c, gd);
		fprintf(c->out, "sum by (%s) (rate(kansatsu_sli_good_events_total%s[%s]))\n", g, c->sel,
			w);
		snprintf(name, sizeof name, "kansatsu:sli_canary_error_ratio:rate%s", w);
		record_head(c, name);
		fprintf(c->out, "clamp_min(1 - %s%s / (%s%s > 0), 0)\n", gd, c->sel, ev, c->sel);
		/* all versions minus this one */
		snprintf(name, sizeof name, "kansatsu:sli_canary_others_error_ratio:rate%s", w);
		record_head(c, name);
		fprintf(c->out,
			"clamp_min(\n"
			"            1 - (sum by (sli) (%s%s) - on (sli) group_right %s%s)\n"
			"              / ((sum by (sli) (%s%s) - on (sli) group_right %s%s) > 0),\n"
			"            0)\n",
			gd, c->sel, gd, c->sel, ev, c->sel, ev, c->sel);
		snprintf(name, sizeof name, "kansatsu:sli_canary_burn_rate:rate%s", w);
		record_head(c, name);
		fprintf(c->out, "kansatsu:sli_canary_error_ratio:rate%s%s / %s\n", w, c->sel, c->budget);
		snprintf(name, sizeof name, "kansatsu:sli_canary_others_burn_rate:rate%s", w);
		record_head(c, name);
		fprintf(c->out, "kansatsu:sli_canary_others_error_ratio:rate%s%s / %s\n", w, c->sel,
			c->budget);
		snprintf(name, sizeof name, "kansatsu:sli_canary_error_ratio_excess:rate%s", w);
		record_head(c, name);
		fprintf(c->out,
			"kansatsu:sli_canary_error_ratio:rate%s%s\n"
			"            - kansatsu:sli_canary_others_error_ratio:rate%s%s\n",
			w, c->sel, w, c->sel);
		snprintf(name, sizeof name, "kansatsu:sli_canary_burn_rate_excess:rate%s", w);
		record_head(c, name);
		fprintf(c->out,
			"kansatsu:sli_canary_burn_rate:rate%s%s\n"
			"            - kansatsu:sli_canary_others_burn_rate:rate%s%s\n",
			w, c->sel, w, c->sel);
	}
}

/* The dimension holding service.version (resource or journey head), if any. */
static const struct kn_sli_dim *version_dim(const struct kn_sli_def *d)
{
	for (size_t k = 0; k < d->dims.n; k++)
		if ((d->dims.v[k].from_v == KN_SLI_FROM_RESOURCE ||
		     d->dims.v[k].from_v == KN_SLI_FROM_HEAD) &&
		    strcmp(d->dims.v[k].key, "service.version") == 0)
			return &d->dims.v[k];
	return NULL;
}

int kn_sli_prom_rules(const void *cfg, const char *id, FILE *out, struct kn_err *err)
{
	const struct kn_sli_cfg *cf = cfg;
	for (size_t i = 0; i < cf->slis.n; i++) {
		const struct kn_sli_def *d = &cf->slis.v[i];
		struct rules_ctx c = {.out = out, .d = d};
		size_t o = (size_t)snprintf(c.by, sizeof c.by, "sli");
		for (size_t k = 0; k < d->dims.n; k++)
			o += (size_t)snprintf(c.by + o, sizeof c.by - o, ", %s", d->dims.v[k].name);
		if (o >= sizeof c.by || strlen(d->name) > 64)
			return kn_errf(err, "slis[%zu]: names too long for the rules", i);
		snprintf(c.sel, sizeof c.sel, "{sli=\"%s\"}", d->name);
		snprintf(c.objective, sizeof c.objective, "%.12g", d->objective);
		snprintf(c.budget, sizeof c.budget, "%.12g", (100.0 - d->objective) / 100.0);
		char window[32], dims[16 * 72 + 8] = "none";
		prom_duration(d->window_ns, window, sizeof window);
		if (d->dims.n)
			snprintf(dims, sizeof dims, "%s", c.by + 5);
		const struct kn_sli_dim *vd = version_dim(d);

		fprintf(out,
			"  # SLI %s (processor %s): objective %s%%, SLO window %s, dimensions: %s%s%s\n"
			"  - name: kansatsu-slo/%s/%s\n"
			"    rules:\n",
			d->name, id, c.objective, window, dims,
			vd ? "; canary verdict by label " : "", vd ? vd->name : "", id, d->name);
		record_head(&c, "kansatsu:sli_objective:ratio");
		fprintf(out, "vector(%.12g)\n", d->objective / 100.0);
		write_windows(&c);
		write_budget(&c, window);
		if (vd)
			write_canary(&c, vd->name);
		write_alerts(&c, window);
	}
	if (ferror(out))
		return kn_errf(err, "cannot write the rules");
	return (int)cf->slis.n;
}
