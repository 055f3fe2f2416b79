/* path.h — the path player: plays a joint-space path sampled once per tick (Cartesian
 * lines and arcs through IK, recorded teach-ins played back) into q_cmd/qd_cmd/qdd_cmd.
 * Two preallocated buffers: Python loads the idle one while the other plays, and a
 * command switches at a tick boundary. Placed after the trajectory block, it overrides
 * that block's output while it plays or holds; a latched stop hands control back. */
#ifndef EDGE_PATH_H
#define EDGE_PATH_H
#include "block.h"
#include "arm_model.h"

/* cffi:begin */
#define PATH_CMD_START 1     /* args[0]: buffer (0/1); plays it from its first sample */
#define PATH_CMD_RELEASE 2   /* stop overriding: the trajectory block has taken over */

/* Capacity in samples per buffer (each sample: q, qd, qdd for n_axes). NULL on bad input. */
edge_block *path_block_alloc(int n_axes, int64_t capacity);
/* Copy n samples (row-major n x n_axes arrays) into `buffer`; 0, or -1 if the buffer is
 * playing (or about to), too small or the index is bad. Call from the controlling thread.
 * Both calls return EDGE_ERR_KIND when b is not a path block. */
int path_block_load(edge_block *b, int buffer, const double *q, const double *qd,
                    const double *qdd, int64_t n);

/* Joint positions for n tool poses (n x 16 row-major), each solved from the previous
 * answer (q0 for the first), staying on one branch. Returns n when all are reached, or
 * the index of the first point that is not reached (*why = 1) or needs a step larger
 * than max_step rad on some joint (*why = 2). q_out: n x model->n. */
int64_t path_ik(const arm_model *m, const double *poses, int64_t n, const double *q0,
                const arm_ik_options *opt, double max_step, double *q_out, int *why);
/* cffi:end */

#endif
