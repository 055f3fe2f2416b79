/* hist.c — log-linear histogram; see hist.h for the bucket layout. */
#include <stdatomic.h>
#include <stdlib.h>

#include "hist.h"

#define EXACT 1024              /* values below this get one bucket each */
#define SUB_BITS 9              /* 512 sub-buckets per octave above EXACT */
#define SUB (1 << SUB_BITS)
#define TOP_BIT 36              /* largest value tracked: 2^36 ns */
#define N_BUCKETS (EXACT + (TOP_BIT - 10) * SUB)

struct hist {
    _Atomic int64_t counts[N_BUCKETS];
    _Atomic int64_t total;
    _Atomic int64_t max;
    _Atomic int64_t min;
};

static int bucket_of(int64_t v)
{
    if (v < EXACT)
        return (int)v;
    int e = 63 - __builtin_clzll((unsigned long long)v);   /* v in [2^e, 2^(e+1)) */
    if (e >= TOP_BIT)
        return N_BUCKETS - 1;
    int sub = (int)((v >> (e - SUB_BITS)) - SUB);
    return EXACT + (e - 10) * SUB + sub;
}

static double bucket_mid(int i)
{
    if (i < EXACT)
        return i;
    int e = (i - EXACT) / SUB + 10;
    int sub = (i - EXACT) % SUB;
    double width = (double)(1LL << (e - SUB_BITS));
    return (double)(1LL << e) + sub * width + width / 2;
}

hist *hist_alloc(void)
{
    hist *h = calloc(1, sizeof(hist));
    if (h)
        hist_reset(h);
    return h;
}

void hist_free(hist *h)
{
    free(h);
}

void hist_reset(hist *h)
{
    for (int i = 0; i < N_BUCKETS; i++)
        atomic_store_explicit(&h->counts[i], 0, memory_order_relaxed);
    atomic_store(&h->total, 0);
    atomic_store(&h->max, 0);
    atomic_store(&h->min, INT64_MAX);
}

/* Single writer: plain load + store keeps the hot path free of locked instructions. */
static void bump(_Atomic int64_t *x, int64_t by)
{
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

void hist_record(hist *h, int64_t v)
{
    if (v < 0)
        v = 0;
    bump(&h->counts[bucket_of(v)], 1);
    if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, v, memory_order_relaxed);
    if (v < atomic_load_explicit(&h->min, memory_order_relaxed))
        atomic_store_explicit(&h->min, v, memory_order_relaxed);
    atomic_store_explicit(&h->total, atomic_load_explicit(&h->total, memory_order_relaxed) + 1,
                          memory_order_release);
}

int64_t hist_count(const hist *h)
{
    return atomic_load_explicit(&((hist *)h)->total, memory_order_acquire);
}

int64_t hist_max(const hist *h)
{
    return atomic_load_explicit(&((hist *)h)->max, memory_order_relaxed);
}

int64_t hist_min(const hist *h)
{
    int64_t m = atomic_load_explicit(&((hist *)h)->min, memory_order_relaxed);
    return m == INT64_MAX ? 0 : m;
}

double hist_quantile(const hist *h, double q)
{
    hist *m = (hist *)h;
    int64_t n = 0;
    for (int i = 0; i < N_BUCKETS; i++)
        n += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
    if (n == 0)
        return 0.0;
    if (q <= 0)
        return (double)hist_min(h);
    if (q >= 1)
        return (double)hist_max(h);
    /* rank of the wanted sample, 1-based, nearest-rank definition */
    int64_t rank = (int64_t)(q * (double)n);
    if ((double)rank < q * (double)n)
        rank++;
    if (rank < 1)
        rank = 1;
    int64_t seen = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        seen += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
        if (seen >= rank) {
            double mid = bucket_mid(i);
            double mx = (double)hist_max(h);
            return mid > mx ? mx : mid;
        }
    }
    return (double)hist_max(h);
}
