/* ring.c — SPSC ring: head written only by the producer, tail only by the consumer,
 * published with release stores and read with acquire loads. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

struct ring {
    _Alignas(64) _Atomic size_t head;   /* next slot to write */
    _Alignas(64) _Atomic size_t tail;   /* next slot to read */
    _Alignas(64) size_t mask;
    size_t elem_size;
    unsigned char *data;
};

ring *ring_alloc(size_t elem_size, size_t capacity)
{
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    ring *r = aligned_alloc(64, sizeof(ring));
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    /* malloc + memset, not calloc: every page is touched now, so the real-time thread
     * never takes a page fault on its first pass through the ring */
    r->data = cap <= SIZE_MAX / elem_size ? malloc(cap * elem_size) : NULL;
    if (!r->data) {
        free(r);
        return NULL;
    }
    memset(r->data, 0, cap * elem_size);
    r->mask = cap - 1;
    r->elem_size = elem_size;
    return r;
}

void ring_free(ring *r)
{
    if (!r)
        return;
    free(r->data);
    free(r);
}

int ring_push(ring *r, const void *elem)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head - tail > r->mask)
        return 0;
    memcpy(r->data + (head & r->mask) * r->elem_size, elem, r->elem_size);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return 1;
}

void *ring_reserve(ring *r)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    return head - tail > r->mask ? NULL : r->data + (head & r->mask) * r->elem_size;
}

void ring_commit(ring *r)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

int ring_pop(ring *r, void *elem)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail == head)
        return 0;
    memcpy(elem, r->data + (tail & r->mask) * r->elem_size, r->elem_size);
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return 1;
}

const void *ring_peek(const ring *r)
{
    size_t tail = atomic_load_explicit(&((ring *)r)->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&((ring *)r)->head, memory_order_acquire);
    return tail == head ? NULL : r->data + (tail & r->mask) * r->elem_size;
}
