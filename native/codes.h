/* codes.h — the named codes C and Python share, each defined once in an X-macro list:
 * fault codes (faults.def) and block kinds (block_kinds.def). C gets enums; Python reads
 * the tables through cffi at import (edge.rt.contract), so no number is typed twice. */
#ifndef EDGE_CODES_H
#define EDGE_CODES_H
#include <stdint.h>

/* cffi:begin */
typedef struct edge_code_info {
    int32_t code;
    const char *name;        /* lower_snake_case, stable: logs and bus messages carry it */
    const char *message;     /* one line for people */
} edge_code_info;

/* Each sets *out to its table (ascending codes) and returns the number of entries. */
int edge_fault_table(const edge_code_info **out);
int edge_block_kind_table(const edge_code_info **out);
/* cffi:end */

enum edge_fault_code {
#define EDGE_FAULT(ident, code, name, message) ident = code,
#include "faults.def"
#undef EDGE_FAULT
};

enum edge_block_kind {
#define EDGE_BLOCK_KIND(ident, code, name, what) ident = code,
#include "block_kinds.def"
#undef EDGE_BLOCK_KIND
};

#endif
