/* SPDX-License-Identifier: Apache-2.0
 * kn_tail_bytrace: grouping a chunk's spans by trace (see kn_tail_bytrace.h). */
#include "kn_tail_bytrace.h"

#include <stdlib.h>
#include <string.h>

#include "kn_tail_hash.h"

void kn_tail_bytrace_free(struct kn_tail_bytrace *gr)
{
	free(gr->order);
	free(gr->start);
	free(gr->g);
	free(gr->grp);
	free(gr->first);
	free(gr->tab);
	memset(gr, 0, sizeof *gr);
}

static int reserve(struct kn_tail_bytrace *gr, uint32_t n)
{
	if (n > gr->cap_spans) {
		uint32_t nc = gr->cap_spans ? gr->cap_spans : 64;
		while (nc < n)
			nc *= 2;
		uint32_t **arr[] = {&gr->grp, &gr->order, &gr->first, &gr->start};
		for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++) {
			uint32_t *q = realloc(*arr[i], ((size_t)nc + 1) * sizeof *q);
			if (!q)
				return -1;
			*arr[i] = q;
		}
		uint32_t *q = realloc(gr->g, 2 * (size_t)nc * sizeof *q);
		if (!q)
			return -1;
		gr->g = q;
		gr->cap_spans = nc;
	}
	uint32_t want = 16;
	while (want < 2 * n)
		want *= 2;
	if (want > gr->cap_tab) {
		uint32_t *q = realloc(gr->tab, (size_t)want * sizeof *q);
		if (!q)
			return -1;
		gr->tab = q;
		gr->cap_tab = want;
	}
	return 0;
}

uint32_t kn_tail_bytrace_chunk(struct kn_tail_bytrace *gr, const struct kn_chunk *c)
{
	uint32_t n = c->nspans, ng = 0, tsize = 16;
	if (reserve(gr, n))
		return UINT32_MAX;
	while (tsize < 2 * n)
		tsize *= 2;
	uint32_t mask = tsize - 1;
	memset(gr->tab, 0, (size_t)tsize * sizeof *gr->tab);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *id = c->spans[i].trace_id;
		uint32_t j = (uint32_t)kn_tail_id_hash(id) & mask;
		for (;; j = (j + 1) & mask) {
			if (!gr->tab[j]) {
				gr->tab[j] = ng + 1;
				gr->first[ng] = i;
				gr->grp[i] = ng++;
				break;
			}
			uint32_t k = gr->tab[j] - 1;
			if (memcmp(c->spans[gr->first[k]].trace_id, id, 16) == 0) {
				gr->grp[i] = k;
				break;
			}
		}
	}
	memset(gr->start, 0, ((size_t)ng + 1) * sizeof *gr->start);
	for (uint32_t i = 0; i < n; i++)
		gr->start[gr->grp[i] + 1]++;
	for (uint32_t k = 0; k < ng; k++)
		gr->start[k + 1] += gr->start[k];
	/* place with a moving cursor per group (first[] is free again) */
	for (uint32_t k = 0; k < ng; k++)
		gr->first[k] = gr->start[k];
	for (uint32_t i = 0; i < n; i++)
		gr->order[gr->first[gr->grp[i]]++] = i;
	return ng;
}
