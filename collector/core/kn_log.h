/* SPDX-License-Identifier: Apache-2.0
 * kn_log: one-line log records on stderr, "kansatsu: <level>: <message>".
 * Lines that tests synchronise on are stable API:
 *   "kansatsu: listening <name> <host>:<port>"   (each bound socket)
 *   "kansatsu: ready"                            (everything started)
 *   "kansatsu: stopped"                          (clean shutdown done) */
#ifndef KN_LOG_H
#define KN_LOG_H

enum kn_log_level { KN_LOG_ERROR, KN_LOG_WARN, KN_LOG_INFO, KN_LOG_DEBUG };

void kn_log_set_level(enum kn_log_level lvl);
void kn_log(enum kn_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A stable line without a level: "kansatsu: <message>". */
void kn_log_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define kn_error(...) kn_log(KN_LOG_ERROR, __VA_ARGS__)
#define kn_warn(...) kn_log(KN_LOG_WARN, __VA_ARGS__)
#define kn_info(...) kn_log(KN_LOG_INFO, __VA_ARGS__)
#define kn_debug(...) kn_log(KN_LOG_DEBUG, __VA_ARGS__)

#endif
