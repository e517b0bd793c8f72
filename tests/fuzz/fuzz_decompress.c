/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: arbitrary bytes as a gzip and as a zstd body with a small
 * output limit. Checks the decompressor's own promises: never more output
 * than the limit, output only on success, no crash, no leak. */
#include <stdint.h>
#include <stdlib.h>

#include "collector/http/kn_decompress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum kn_encoding encs[] = {KN_ENC_GZIP, KN_ENC_ZSTD};
	for (int i = 0; i < 2; i++) {
		uint8_t *out = NULL;
		size_t out_len = 0;
		struct kn_decomp_stats st;
		enum kn_decomp_rc rc = kn_decompress(encs[i], data, size, 65536, &out, &out_len, &st);
		if (st.out_peak > 65536 || out_len > 65536)
			abort();
		if (rc != KN_DECOMP_OK && (out || out_len))
			abort();
		free(out);
	}
	return 0;
}
