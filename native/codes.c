/* codes.c — the tables of codes.h, expanded from the same X-macro lists as its enums. */
#include "codes.h"

static const edge_code_info FAULTS[] = {
#define EDGE_FAULT(ident, code, name, message) {code, name, message},
#include "faults.def"
#undef EDGE_FAULT
};

static const edge_code_info BLOCK_KINDS[] = {
#define EDGE_BLOCK_KIND(ident, code, name, what) {code, name, what},
#include "block_kinds.def"
#undef EDGE_BLOCK_KIND
};

int edge_fault_table(const edge_code_info **out)
{
    *out = FAULTS;
    return (int)(sizeof FAULTS / sizeof FAULTS[0]);
}

int edge_block_kind_table(const edge_code_info **out)
{
    *out = BLOCK_KINDS;
    return (int)(sizeof BLOCK_KINDS / sizeof BLOCK_KINDS[0]);
}
