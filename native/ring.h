/* ring.h — lock-free single-producer/single-consumer ring of fixed-size records.
 * One thread pushes, one thread pops; capacity is rounded up to a power of two.
 */
#ifndef EDGE_RING_H
#define EDGE_RING_H
#include <stddef.h>
#include <stdint.h>

typedef struct ring ring;

ring *ring_alloc(size_t elem_size, size_t capacity);
void ring_free(ring *r);
int ring_push(ring *r, const void *elem);   /* 1 pushed, 0 full */
/* Producer, in place: the slot the next push would fill (NULL when full), published by
 * ring_commit. A slot keeps what the last record written there left in it. */
void *ring_reserve(ring *r);
void ring_commit(ring *r);
int ring_pop(ring *r, void *elem);          /* 1 popped, 0 empty */
const void *ring_peek(const ring *r);       /* oldest element or NULL, not removed */

#endif
