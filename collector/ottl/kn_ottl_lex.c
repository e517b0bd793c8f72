/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_lex: OTTL's lexer (see kn_ottl_lex.h). Runs at config time only;
 * decoded strings are allocated from the program's pool. */
#include "kn_ottl_lex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kn_ottl_int.h"

static int is_ident0(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t put_utf8(char *w, uint32_t cp)
{
	if (cp < 0x80) {
		w[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		w[0] = (char)(0xc0 | cp >> 6);
		w[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		w[0] = (char)(0xe0 | cp >> 12);
		w[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		w[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	w[0] = (char)(0xf0 | cp >> 18);
	w[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	w[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	w[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static void fail(struct kn_ottl_token *t, uint32_t pos, const char *msg)
{
	t->type = KN_T_ERR;
	t->pos = pos;
	t->msg = msg;
}

/* A string literal from lx->pos (at the opening quote). */
static void lex_string(struct kn_ottl_lexer *lx, struct kn_ottl_token *t)
{
	const char *s = lx->src;
	uint32_t i = lx->pos + 1, start = lx->pos;
	/* the decoded text is never longer than the source */
	char *out = kn_ottl_pool_alloc(lx->pool, (size_t)(lx->len - start) + 1);
	size_t n = 0;
	if (!out) {
		fail(t, start, "out of memory");
		return;
	}
	for (;;) {
		if (i >= lx->len) {
			fail(t, start, "unterminated string");
			return;
		}
		char c = s[i];
		if (c == '"') {
			i++;
			break;
		}
		if (c == '\n') {
			fail(t, i, "newline in a string (write \\n)");
			return;
		}
		if (c != '\\') {
			out[n++] = c;
			i++;
			continue;
		}
		uint32_t esc = i;
		if (i + 1 >= lx->len) {
			fail(t, start, "unterminated string");
			return;
		}
		c = s[i + 1];
		i += 2;
		switch (c) {
		case 'a': out[n++] = '\a'; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'v': out[n++] = '\v'; break;
		case '\\': out[n++] = '\\'; break;
		case '"': out[n++] = '"'; break;
		case 'x': {
			int h = i + 1 < lx->len ? hexval(s[i]) : -1, l = h >= 0 ? hexval(s[i + 1]) : -1;
			if (h < 0 || l < 0) {
				fail(t, esc, "invalid \\x escape (two hex digits expected)");
				return;
			}
			out[n++] = (char)(h << 4 | l);
			i += 2;
			break;
		}
		case 'u':
		case 'U': {
			uint32_t nd = c == 'u' ? 4 : 8, cp = 0;
			for (uint32_t k = 0; k < nd; k++) {
				int h = i + k < lx->len ? hexval(s[i + k]) : -1;
				if (h < 0) {
					fail(t, esc, c == 'u' ? "invalid \\u escape (four hex digits expected)"
								: "invalid \\U escape (eight hex digits expected)");
					return;
				}
				cp = cp << 4 | (uint32_t)h;
			}
			if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
				fail(t, esc, "escape is not a valid Unicode code point");
				return;
			}
			i += nd;
			n += put_utf8(out + n, cp);
			break;
		}
		default:
			if (c >= '0' && c <= '7') {
				uint32_t v = (uint32_t)(c - '0');
				for (int k = 0; k < 2; k++) {
					if (i >= lx->len || s[i] < '0' || s[i] > '7') {
						fail(t, esc, "invalid octal escape (three digits expected)");
						return;
					}
					v = v * 8 + (uint32_t)(s[i++] - '0');
				}
				if (v > 255) {
					fail(t, esc, "octal escape above \\377");
					return;
				}
				out[n++] = (char)v;
				break;
			}
			fail(t, esc, "unknown escape sequence (a backslash in a string is written \\\\)");
			return;
		}
	}
	out[n] = '\0';
	t->type = KN_T_STR;
	t->s = out;
	t->slen = (uint32_t)n;
	t->end = i;
	lx->pos = i;
}

static void lex_number(struct kn_ottl_lexer *lx, struct kn_ottl_token *t)
{
	const char *s = lx->src;
	uint32_t i = lx->pos, start = i;
	if (s[i] == '0' && i + 1 < lx->len && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
		uint32_t j = i + 2;
		while (j < lx->len && hexval(s[j]) >= 0)
			j++;
		uint32_t nd = j - (i + 2);
		if (nd == 0 || nd % 2) {
			fail(t, start, nd ? "a bytes literal needs an even number of hex digits" : "0x without hex digits");
			return;
		}
		uint8_t *b = kn_ottl_pool_alloc(lx->pool, nd / 2 + 1);
		if (!b) {
			fail(t, start, "out of memory");
			return;
		}
		for (uint32_t k = 0; k < nd / 2; k++)
			b[k] = (uint8_t)(hexval(s[i + 2 + 2 * k]) << 4 | hexval(s[i + 3 + 2 * k]));
		t->type = KN_T_BYTES;
		t->s = (char *)b;
		t->slen = nd / 2;
		t->end = j;
		lx->pos = j;
		return;
	}
	while (i < lx->len && is_digit(s[i]))
		i++;
	int is_float = 0;
	if (i < lx->len && s[i] == '.' && i + 1 < lx->len && is_digit(s[i + 1])) {
		is_float = 1;
		i++;
		while (i < lx->len && is_digit(s[i]))
			i++;
		if (i < lx->len && (s[i] == 'e' || s[i] == 'E')) {
			uint32_t j = i + 1;
			if (j < lx->len && (s[j] == '+' || s[j] == '-'))
				j++;
			if (j < lx->len && is_digit(s[j])) {
				while (j < lx->len && is_digit(s[j]))
					j++;
				i = j;
			}
		}
	}
	if (i < lx->len && (is_ident0(s[i]) || is_digit(s[i]))) {
		fail(t, start, "malformed number");
		return;
	}
	char buf[128];
	uint32_t n = i - start;
	if (n >= sizeof buf) {
		fail(t, start, "number too long");
		return;
	}
	memcpy(buf, s + start, n);
	buf[n] = '\0';
	errno = 0;
	if (is_float) {
		t->type = KN_T_FLOAT;
		t->d = strtod(buf, NULL);
		if (errno == ERANGE && (t->d > 1 || t->d < -1)) {
			fail(t, start, "float out of range");
			return;
		}
	} else {
		t->type = KN_T_INT;
		t->u = strtoull(buf, NULL, 10);
		if (errno == ERANGE || t->u > (uint64_t)INT64_MAX + 1) {
			fail(t, start, "integer out of the int64 range");
			return;
		}
	}
	t->end = i;
	lx->pos = i;
}

void kn_ottl_lex_next(struct kn_ottl_lexer *lx, struct kn_ottl_token *t)
{
	const char *s = lx->src;
	memset(t, 0, sizeof *t);
	while (lx->pos < lx->len && (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\n' ||
				     s[lx->pos] == '\r'))
		lx->pos++;
	t->pos = lx->pos;
	if (lx->pos >= lx->len) {
		t->type = KN_T_EOF;
		t->end = lx->pos;
		return;
	}
	char c = s[lx->pos], d = lx->pos + 1 < lx->len ? s[lx->pos + 1] : '\0';
	if (is_ident0(c)) {
		uint32_t i = lx->pos;
		while (i < lx->len && (is_ident0(s[i]) || is_digit(s[i])))
			i++;
		t->type = KN_T_IDENT;
		t->s = kn_ottl_pool_strndup(lx->pool, s + lx->pos, i - lx->pos);
		if (!t->s) {
			fail(t, lx->pos, "out of memory");
			return;
		}
		t->slen = i - lx->pos;
		t->end = i;
		lx->pos = i;
		return;
	}
	if (c == '"') {
		lex_string(lx, t);
		return;
	}
	if (is_digit(c) || (c == '.' && is_digit(d))) {
		lex_number(lx, t);
		return;
	}
	int two = 0;
	switch (c) {
	case '=':
		if (d == '=') {
			t->type = KN_T_EQ;
			two = 1;
		} else {
			t->type = KN_T_ASSIGN;
		}
		break;
	case '!':
		if (d != '=') {
			fail(t, lx->pos, "unexpected character '!' (not equal is written !=, negation is `not`)");
			return;
		}
		t->type = KN_T_NE;
		two = 1;
		break;
	case '<':
		t->type = d == '=' ? KN_T_LE : KN_T_LT;
		two = d == '=';
		break;
	case '>':
		t->type = d == '=' ? KN_T_GE : KN_T_GT;
		two = d == '=';
		break;
	case '+': t->type = KN_T_PLUS; break;
	case '-': t->type = KN_T_MINUS; break;
	case '*': t->type = KN_T_STAR; break;
	case '/': t->type = KN_T_SLASH; break;
	case '(': t->type = KN_T_LPAREN; break;
	case ')': t->type = KN_T_RPAREN; break;
	case '[': t->type = KN_T_LBRACK; break;
	case ']': t->type = KN_T_RBRACK; break;
	case '{': t->type = KN_T_LBRACE; break;
	case '}': t->type = KN_T_RBRACE; break;
	case ',': t->type = KN_T_COMMA; break;
	case '.': t->type = KN_T_DOT; break;
	case ':': t->type = KN_T_COLON; break;
	default:
		fail(t, lx->pos, (c == '\'') ? "unexpected character '\\'' (strings are written in double quotes)"
					       : "unexpected character");
		return;
	}
	lx->pos += two ? 2u : 1u;
	t->end = lx->pos;
}

const char *kn_ottl_tok_name(int type)
{
	switch (type) {
	case KN_T_EOF: return "end of input";
	case KN_T_IDENT: return "an identifier";
	case KN_T_STR: return "a string";
	case KN_T_INT: return "an int";
	case KN_T_FLOAT: return "a float";
	case KN_T_BYTES: return "a bytes literal";
	case KN_T_EQ: return "==";
	case KN_T_NE: return "!=";
	case KN_T_LT: return "<";
	case KN_T_LE: return "<=";
	case KN_T_GT: return ">";
	case KN_T_GE: return ">=";
	case KN_T_PLUS: return "+";
	case KN_T_MINUS: return "-";
	case KN_T_STAR: return "*";
	case KN_T_SLASH: return "/";
	case KN_T_LPAREN: return "(";
	case KN_T_RPAREN: return ")";
	case KN_T_LBRACK: return "[";
	case KN_T_RBRACK: return "]";
	case KN_T_LBRACE: return "{";
	case KN_T_RBRACE: return "}";
	case KN_T_COMMA: return ",";
	case KN_T_DOT: return ".";
	case KN_T_COLON: return ":";
	case KN_T_ASSIGN: return "=";
	default: return "an invalid token";
	}
}
