/* SPDX-License-Identifier: Apache-2.0
 * kn_config_int: helpers shared by the files of collector/config only (not a
 * public interface). The tree builder can root a tree at a base path so that
 * table defaults written as YAML text ("[a, b]") get the field's path in
 * their messages. */
#ifndef KN_CONFIG_INT_H
#define KN_CONFIG_INT_H

#include "kn_config.h"

/* Limits that keep hostile input (and alias bombs) bounded. */
#define KN_CFG_MAX_DEPTH 64
#define KN_CFG_MAX_NODES 100000
#define KN_CFG_MAX_FILE (16u << 20)

/* kn_config_parse with the root's path set to `base` ("" for a file). */
int kn_config_parse_at(const char *text, size_t len, const char *name, const char *base,
		       struct kn_cnode **root, struct kn_err *err);

/* "a map", "a list", "null" or the quoted (and shortened) scalar: for "got ..." */
const char *kn_cnode_describe(const struct kn_cnode *n, char *buf, size_t cap);

/* Quotes s for a message, shortening long values: "\"abc\"". */
const char *kn_cfg_quote(const char *s, char *buf, size_t cap);

#endif
