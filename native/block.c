/* block.c — allocation helpers shared by all native blocks. */
#include <stdlib.h>

#include "block.h"

edge_block *edge_block_new(const char *name, void *self)
{
    edge_block *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->name = name;
    b->self = self;
    return b;
}

void edge_block_free(edge_block *b)
{
    if (!b)
        return;
    if (b->release)
        b->release(b->self);
    free(b);
}

uint32_t edge_block_kind(const edge_block *b)
{
    return b ? b->kind : EDGE_BLOCK_CUSTOM;
}
