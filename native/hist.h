/* hist.h — latency histogram with nanosecond resolution: exact below 1024 ns, then 512
 * sub-buckets per power of two (0.2 % relative precision) up to about 68 s.
 * One writer; readers may read at any time (relaxed atomics, no lock). */
#ifndef EDGE_HIST_H
#define EDGE_HIST_H
#include <stdint.h>

/* cffi:begin */
typedef struct hist hist;

hist *hist_alloc(void);
void hist_free(hist *h);
void hist_reset(hist *h);
void hist_record(hist *h, int64_t value_ns);
int64_t hist_count(const hist *h);
int64_t hist_max(const hist *h);
int64_t hist_min(const hist *h);
/* Value at quantile q in [0, 1] (bucket midpoint, exact below 1024 ns); 0 when empty. */
double hist_quantile(const hist *h, double q);
/* cffi:end */

#endif
