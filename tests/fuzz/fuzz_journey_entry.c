/* SPDX-License-Identifier: Apache-2.0
 * fuzz_journey_entry: arbitrary bytes as a journey entry read back from the
 * shared registry (Redis: any client may have written the key). The decoder
 * must reject or accept without reading past the input (copied to an
 * exact-size allocation so sanitizers see overreads); an accepted entry must
 * encode back to the same bytes, and its attributes must be usable as they
 * are by the span rewrite (the plan built from them stays in bounds). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "processors/journey/kn_journey_entry.h"
#include "processors/journey/kn_journey_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *in = malloc(size ? size : 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	struct kn_journey_head h;
	if (kn_journey_entry_decode(in, size, &h) == 0) {
		uint8_t out[KN_JOURNEY_ENTRY_MAX];
		size_t n = kn_journey_entry_encode(&h, out);
		if (n != size || memcmp(out, in, size) != 0)
			abort();
		struct kn_journey_plan *pl = malloc(sizeof *pl);
		if (pl) {
			kn_journey_plan_build(pl, &h, 1, "journey.id");
			if (pl->n > KN_JOURNEY_MAX_PLAN)
				abort();
			free(pl);
		}
	}
	free(in);
	return 0;
}
