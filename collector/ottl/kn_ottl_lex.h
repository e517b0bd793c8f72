/* SPDX-License-Identifier: Apache-2.0
 * kn_ottl_lex: OTTL's tokens, read one at a time from a statement's text
 * (the parser asks for the next one; nothing is buffered).
 *
 *   identifiers  [A-Za-z_][A-Za-z0-9_]*  (keywords where/and/or/not/true/
 *                false/nil are identifiers the parser recognises)
 *   strings      "..." with Go's escapes (\" \\ \n \t \r \a \b \f \v \xhh
 *                \ooo \uhhhh \Uhhhhhhhh), as OTTL unquotes them; an unknown
 *                escape or a raw newline is an error
 *   ints         digits (the sign is the parser's: `-1` is a literal, `a - 1`
 *                is math)
 *   floats       digits? '.' digits ([eE] sign? digits)?
 *   bytes        0x followed by an even number of hex digits
 *   operators    == != < <= > >= + - * / ( ) [ ] { } , . : =
 * Positions are byte offsets into the text. */
#ifndef KN_OTTL_LEX_H
#define KN_OTTL_LEX_H

#include <stddef.h>
#include <stdint.h>

enum kn_ottl_tok {
	KN_T_EOF = 0,
	KN_T_IDENT,
	KN_T_STR,
	KN_T_INT,
	KN_T_FLOAT,
	KN_T_BYTES,
	KN_T_EQ, KN_T_NE, KN_T_LT, KN_T_LE, KN_T_GT, KN_T_GE,
	KN_T_PLUS, KN_T_MINUS, KN_T_STAR, KN_T_SLASH,
	KN_T_LPAREN, KN_T_RPAREN, KN_T_LBRACK, KN_T_RBRACK, KN_T_LBRACE, KN_T_RBRACE,
	KN_T_COMMA, KN_T_DOT, KN_T_COLON, KN_T_ASSIGN,
	KN_T_ERR,
};

struct kn_ottl_token {
	int type;
	uint32_t pos, end;         /* [pos, end) in the text */
	uint64_t u;                /* INT: the magnitude */
	double d;                  /* FLOAT */
	char *s;                   /* STR: decoded bytes (NUL-terminated); BYTES: the bytes */
	uint32_t slen;
	const char *msg;           /* ERR: what is wrong (static text) */
};

struct kn_ottl_pool;

struct kn_ottl_lexer {
	const char *src;
	uint32_t len, pos;
	struct kn_ottl_pool *pool; /* decoded strings live here */
};

/* Reads the next token into *t (type KN_T_ERR with msg and pos on error). */
void kn_ottl_lex_next(struct kn_ottl_lexer *lx, struct kn_ottl_token *t);
/* A token type's text for messages ("==", "a string", "end of input"). */
const char *kn_ottl_tok_name(int type);

#endif
