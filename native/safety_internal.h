/* safety_internal.h — the safety block's state, shared by its two halves: safety.c (the
 * tick, faults, stops, setup, readers) and safety_motion.c (the upstream command limited
 * and checked). Not part of the Python interface (no cffi section). */
#ifndef EDGE_SAFETY_INTERNAL_H
#define EDGE_SAFETY_INTERNAL_H
#include <stdatomic.h>

#include "safety.h"
#include "safety_geometry.h"

#define SAFETY_CODE_BITS 512

typedef struct safety {
    arm_model model;
    safety_config cfg;
    int n, initialised, enabled, reduced_cmd, reduced, estop_prev;
    int pass_through;                  /* this tick's command is the upstream's, unchanged */
    int64_t resets_refused;
    edge_block *observer;              /* its queued config goes with ours, or NULL */
    int32_t signals_first;             /* fault count slot in the image, -1: none */
    int64_t reduced_since;
    double qs[EDGE_MAX_AXES], vs[EDGE_MAX_AXES], as[EDGE_MAX_AXES];
    double qd_prev[EDGE_MAX_AXES];
    int have_qd_prev;
    /* stop ramp: q = q0 + v0 phi(t), v = v0 s(t), a = v0 s'(t) */
    int ramp_active, standstill;
    double ramp_q0[EDGE_MAX_AXES], ramp_v0[EDGE_MAX_AXES];
    double ramp_t, ramp_A, ramp_J, ramp_T;
    uint8_t recorded[SAFETY_CODE_BITS / 8];   /* codes recorded since the last reset */
    safety_fault hist[SAFETY_HISTORY];
    int64_t n_hist;
    safety_status status;
    _Atomic uint32_t seq;                     /* seqlock over status and hist */
    safety_config pending;                    /* written by safety_set_config ... */
    _Atomic int pending_state;                /* 0 free, 1 queued, 2 applied, -1 refused */
    safety_geometry geo;                      /* model, cfg, reach, frames */
    double frames[(ARM_MAX_LINKS + 2) * 16];
} safety;

/* Limit the upstream command (img->q_cmd, qd_cmd) into the monitor's safe state (qs, vs,
 * as); returns the speed scale actually applied (1 = none) and sets *limiting when the
 * command was changed. s->pass_through says the upstream command went through as is. */
double safety_run_motion(safety *s, edge_image *img, int *limiting);

#endif
