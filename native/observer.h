/* observer.h — collision detection with a generalised-momentum observer: the residual
 *   r = K (p - p0 - integral(tau + C^T qd - g - tau_friction + r) dt),  p = M(q) qd
 * estimates the external joint torque from measured q, qd and motor torque alone (no
 * acceleration). Above the contact threshold a contact is reported; above the collision
 * threshold the configured stop is requested and the collision latches until a reset. */
#ifndef EDGE_OBSERVER_H
#define EDGE_OBSERVER_H
#include "arm_model.h"
#include "block.h"

/* cffi:begin */
/* Fault code: OBSERVER_FAULT_COLLISION in faults.def. */

typedef struct observer_config {
    int32_t n;
    double gain[EDGE_MAX_AXES];                /* K, 1/s (K * period < 1) */
    double contact_threshold[EDGE_MAX_AXES];   /* N*m, |r| above: contact */
    double collision_threshold[EDGE_MAX_AXES]; /* N*m, |r| above: collision, stop */
    double viscous[EDGE_MAX_AXES];             /* friction model, N*m*s/rad */
    double coulomb[EDGE_MAX_AXES];             /* N*m */
    double coulomb_velocity;                   /* rad/s: Coulomb sign smoothed below this */
    int32_t category;                          /* stop category on a collision */
} observer_config;

typedef struct observer_status {
    int64_t tick;
    int32_t active;               /* 0 while the brakes hold (category 0) or before start */
    int32_t contact;              /* some |r_i| above its contact threshold this tick */
    int32_t collision;            /* latched until a reset */
    int32_t collision_axis;
    int64_t contact_tick;         /* first tick of the current contact, -1 if none */
    int64_t collision_tick;       /* -1 if none */
    double residual[EDGE_MAX_AXES];   /* N*m, estimated external joint torque */
    double peak_ratio;            /* max_i |r_i| / collision_threshold_i this tick */
} observer_status;

/* 1 when cfg suits the (checked) model, else 0. */
int observer_config_valid(const arm_model *model, const observer_config *cfg);
/* The model and config are copied; NULL on bad input. The calls below taking a block
 * return EDGE_ERR_KIND when it is not an observer block. */
edge_block *observer_block_alloc(const arm_model *model, const observer_config *cfg);
int observer_get_status(const edge_block *b, observer_status *out);
/* Queue a new configuration (same arm). It goes with the safety configuration queued
 * beside it: the linked safety block applies or refuses both at one tick boundary
 * (safety_link_observer). 0 queued, -2 invalid, -3 one is already queued. */
int observer_set_config(edge_block *b, const observer_config *cfg);
/* Write the residual (N*m, n values) to img->signals[first ..] every tick, so tasks read
 * it from the state record of their release tick. 0, or -1 if b is not an observer or
 * the slots do not fit in EDGE_SIGNALS. One call at setup, before the cycle runs. */
int observer_set_signals(edge_block *b, int32_t first);
/* cffi:end */

/* For the safety block: apply (the observer restarts) or refuse the queued config. */
void observer_take_pending(edge_block *b, int accept);

#endif
