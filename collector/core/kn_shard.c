/* SPDX-License-Identifier: Apache-2.0 */
typedef int kn_placeholder_kn_shard;
