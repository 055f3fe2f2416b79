/* observer.c — see observer.h. C^T qd is computed as dT/dq with T = qd^T M(q) qd / 2
 * (Lagrange: p' = tau + tau_ext - g + dT/dq), by central differences of M(q) qd from the
 * RNEA, so the observer needs no Christoffel symbols and no measured acceleration. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "observer.h"

#define OBSERVER_DQ 1e-6   /* rad, central-difference step for dT/dq */

typedef struct observer {
    arm_model model;
    observer_config cfg;
    int n, active, reset_pending;
    int32_t signals_first;                    /* residual slots in the image, -1: none */
    double p0[EDGE_MAX_AXES], integral[EDGE_MAX_AXES], r[EDGE_MAX_AXES];
    observer_status status;
    _Atomic uint32_t seq;
    observer_config pending;                  /* written by observer_set_config ... */
    _Atomic int pending_state;                /* 0 free, 1 queued, 2 applied, -1 refused */
} observer;

/* p = M(q) qd (N*m*s): the RNEA with qdd = qd, no velocity terms and no gravity. */
static void momentum(const arm_model *m, const double *q, const double *qd, double *p)
{
    static const double no_gravity[3] = {0, 0, 0};
    double zero[ARM_MAX_LINKS] = {0};
    arm_rnea(m, q, zero, qd, no_gravity, p);
}

/* beta = dT/dq with T = qd^T M(q) qd / 2 (N*m), by central differences of M(q) qd. */
static void kinetic_gradient(const arm_model *m, int n, const double *q, const double *qd,
                             double *beta)
{
    double qh[EDGE_MAX_AXES], pp[EDGE_MAX_AXES], pm[EDGE_MAX_AXES];
    memcpy(qh, q, sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        qh[i] = q[i] + OBSERVER_DQ;
        momentum(m, qh, qd, pp);
        qh[i] = q[i] - OBSERVER_DQ;
        momentum(m, qh, qd, pm);
        qh[i] = q[i];
        double tp = 0, tm = 0;
        for (int k = 0; k < n; k++) {
            tp += qd[k] * pp[k];
            tm += qd[k] * pm[k];
        }
        beta[i] = (tp - tm) / (4 * OBSERVER_DQ);
    }
}

static void observer_init(observer *o, const edge_image *img)
{
    momentum(&o->model, img->q, img->qd, o->p0);
    memset(o->integral, 0, sizeof o->integral);
    memset(o->r, 0, sizeof o->r);
    o->active = 1;
}

void observer_take_pending(edge_block *b, int accept)
{
    if (!edge_block_is(b, EDGE_BLOCK_OBSERVER))
        return;
    observer *o = b->self;
    if (atomic_load_explicit(&o->pending_state, memory_order_acquire) != 1)
        return;
    if (accept) {
        o->cfg = o->pending;
        o->active = 0;      /* restart from the next tick: the integral used the old gains */
    }
    atomic_store_explicit(&o->pending_state, accept ? 2 : -1, memory_order_release);
}

static void observer_step(void *self, edge_image *img)
{
    observer *o = self;
    const observer_config *c = &o->cfg;
    const int n = o->n;
    const double dt = img->period_s;
    observer_status *st = &o->status;
    atomic_fetch_add_explicit(&o->seq, 1, memory_order_acq_rel);
    st->tick = img->tick;
    /* The collision latch clears one tick after an accepted reset: a later block (the
     * safety monitor, while still braking) may undo the reset in the tick it happens. */
    if (o->reset_pending && img->stop_category == EDGE_NO_STOP) {
        st->collision = 0;
        st->collision_tick = -1;
        st->collision_axis = -1;
    }
    o->reset_pending = img->reset_request;
    if (img->reset_request)
        o->active = 0;
    /* brakes hold the arm (power off, or a drive not enabled): nothing to observe */
    if (img->stop_category == 0 || (img->inputs & EDGE_IN_DRIVE_OFF)) {
        o->active = 0;
        memset(o->r, 0, sizeof o->r);
    } else {
        if (!o->active) {
            /* start from here; the torque read this tick may predate the stop's end */
            observer_init(o, img);
            goto publish;
        }
        double p[EDGE_MAX_AXES], g[EDGE_MAX_AXES], beta[EDGE_MAX_AXES];
        momentum(&o->model, img->q, img->qd, p);
        arm_gravity(&o->model, img->q, g);
        kinetic_gradient(&o->model, n, img->q, img->qd, beta);
        double peak = 0;
        int contact = 0, axis = -1;
        for (int i = 0; i < n; i++) {
            double qd = img->qd[i], fc = c->coulomb[i];
            double friction = c->viscous[i] * qd +
                              (fabs(qd) >= c->coulomb_velocity ? copysign(fc, qd)
                                                               : fc * qd / c->coulomb_velocity);
            o->integral[i] += (img->tau[i] + beta[i] - g[i] - friction + o->r[i]) * dt;
            o->r[i] = c->gain[i] * (p[i] - o->p0[i] - o->integral[i]);
            double ratio = fabs(o->r[i]) / c->collision_threshold[i];
            if (ratio > peak) {
                peak = ratio;
                axis = i;
            }
            if (fabs(o->r[i]) > c->contact_threshold[i])
                contact = 1;
        }
        if (contact && !st->contact)
            st->contact_tick = img->tick;
        if (!contact)
            st->contact_tick = -1;
        st->contact = contact;
        st->peak_ratio = peak;
        if (peak > 1 && !st->collision) {
            st->collision = 1;
            st->collision_tick = img->tick;
            st->collision_axis = axis;
            edge_request_stop(img, (uint32_t)c->category, OBSERVER_FAULT_COLLISION);
        }
    }
publish:
    st->active = o->active;
    memcpy(st->residual, o->r, sizeof(double) * n);
    atomic_fetch_add_explicit(&o->seq, 1, memory_order_release);
    if (o->signals_first >= 0)
        memcpy(img->signals + o->signals_first, o->r, sizeof(double) * n);
}

static void observer_release(void *self)
{
    free(self);
}

int observer_config_valid(const arm_model *model, const observer_config *cfg)
{
    if (!cfg || cfg->n != model->n)
        return 0;
    if (cfg->category < 0 || cfg->category > 2 || !(cfg->coulomb_velocity > 0))
        return 0;
    for (int i = 0; i < cfg->n; i++)
        if (!(cfg->gain[i] > 0) || !(cfg->contact_threshold[i] > 0) ||
            !(cfg->collision_threshold[i] >= cfg->contact_threshold[i]) ||
            !(cfg->viscous[i] >= 0) || !(cfg->coulomb[i] >= 0) ||
            !isfinite(cfg->collision_threshold[i]))
            return 0;
    return 1;
}

edge_block *observer_block_alloc(const arm_model *model, const observer_config *cfg)
{
    if (!model || arm_model_check(model) || !observer_config_valid(model, cfg))
        return NULL;
    observer *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->model = *model;
    o->cfg = *cfg;
    o->n = cfg->n;
    o->status.contact_tick = o->status.collision_tick = -1;
    o->status.collision_axis = -1;
    o->signals_first = -1;
    edge_block *b = edge_block_new("observer", o);
    if (!b) {
        free(o);
        return NULL;
    }
    b->kind = EDGE_BLOCK_OBSERVER;
    b->step = observer_step;
    b->release = observer_release;
    return b;
}

int observer_get_status(const edge_block *b, observer_status *out)
{
    if (!edge_block_is(b, EDGE_BLOCK_OBSERVER))
        return EDGE_ERR_KIND;
    observer *o = b->self;
    uint32_t before, after;
    do {
        before = atomic_load_explicit(&o->seq, memory_order_acquire);
        *out = o->status;
        atomic_thread_fence(memory_order_acquire);
        after = atomic_load_explicit(&o->seq, memory_order_relaxed);
    } while ((before & 1) || before != after);
    return 0;
}

int observer_set_signals(edge_block *b, int32_t first)
{
    if (!edge_block_is(b, EDGE_BLOCK_OBSERVER))
        return EDGE_ERR_KIND;
    observer *o = b->self;
    if (first < 0 || first > EDGE_SIGNALS - o->n)
        return -1;
    o->signals_first = first;
    for (int i = 0; i < o->n; i++)      /* the state record publishes declared slots only */
        edge_block_writes_signal(b, first + i);
    return 0;
}

int observer_set_config(edge_block *b, const observer_config *cfg)
{
    if (!edge_block_is(b, EDGE_BLOCK_OBSERVER))
        return EDGE_ERR_KIND;
    observer *o = b->self;
    if (!observer_config_valid(&o->model, cfg))
        return -2;
    if (atomic_load_explicit(&o->pending_state, memory_order_acquire) == 1)
        return -3;
    o->pending = *cfg;
    atomic_store_explicit(&o->pending_state, 1, memory_order_release);
    return 0;
}
