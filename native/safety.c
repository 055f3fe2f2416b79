/* safety.c — see safety.h. The block's tick: queued configuration, faults latched by
 * others recorded, measured values checked against the limits, then either the stop ramp
 * of a latched stop or the upstream command limited (safety_motion.c), and the status
 * published under a seqlock. Setup and the readers Python calls. Stops brake along the
 * current joint-space direction with a scalar ramp (safety_geometry.h), so the stopping
 * path is exactly the path the motion check predicted. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "observer.h"
#include "safety_internal.h"


/* ---- faults ------------------------------------------------------------------------ */

static void publish_begin(safety *s)
{
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel);
}

static void publish_end(safety *s)
{
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
}

static void record(safety *s, const edge_image *img, uint32_t code, int32_t axis, double value)
{
    if (code < SAFETY_CODE_BITS) {
        if (s->recorded[code / 8] & (1u << (code % 8)))
            return;
        s->recorded[code / 8] |= (uint8_t)(1u << (code % 8));
    }
    safety_fault *f = &s->hist[s->n_hist % SAFETY_HISTORY];
    publish_begin(s);
    f->code = code;
    f->category = img->stop_category;
    f->tick = img->tick;
    f->axis = axis;
    f->value = value;
    s->n_hist++;
    publish_end(s);
}

static void trip(safety *s, edge_image *img, uint32_t code, int category, int32_t axis,
                 double value)
{
    edge_request_stop(img, (uint32_t)category, code);
    record(s, img, code, axis, value);
}

/* ---- the tick ---------------------------------------------------------------------- */

static void sync_to_measured(safety *s, const edge_image *img)
{
    for (int i = 0; i < s->n; i++) {
        s->qs[i] = img->q[i];
        s->vs[i] = s->as[i] = 0;
    }
    s->ramp_active = s->standstill = 0;
    s->initialised = 1;
}

static void check_measured(safety *s, edge_image *img, double *min_wall, double *tcp)
{
    const safety_config *c = &s->cfg;
    const double dt = img->period_s;
    int braked = img->stop_category == 0;
    for (int i = 0; i < s->n; i++) {
        double q = img->q[i], qd = img->qd[i];
        if (q < c->q_min[i] - c->position_tolerance || q > c->q_max[i] + c->position_tolerance)
            trip(s, img, SAFETY_FAULT_POSITION, c->fault_category, i, q);
        if (fabs(qd) > c->v_max[i] * (1 + c->velocity_tolerance))
            trip(s, img, SAFETY_FAULT_VELOCITY, c->fault_category, i, qd);
        if (fabs(img->tau[i]) > c->tau_max[i])
            trip(s, img, SAFETY_FAULT_TORQUE, c->fault_category, i, img->tau[i]);
        if (c->acceleration_tolerance > 0 && s->have_qd_prev && !braked) {
            double acc = (qd - s->qd_prev[i]) / dt;
            if (fabs(acc) > c->a_stop[i] * (1 + c->acceleration_tolerance))
                trip(s, img, SAFETY_FAULT_ACCELERATION, c->fault_category, i, acc);
        }
        if (c->following_error_max > 0 && s->enabled && !braked &&
            fabs(s->qs[i] - q) > c->following_error_max)
            trip(s, img, SAFETY_FAULT_FOLLOWING, c->following_category, i, s->qs[i] - q);
        s->qd_prev[i] = qd;
    }
    s->have_qd_prev = 1;
    *tcp = safety_tcp_speed(&s->geo, img->q, img->qd);
    int reduced_active = s->reduced &&
                         (img->tick - s->reduced_since) * dt >= c->reduced_transition_s;
    double limit = reduced_active ? c->tcp_speed_reduced : c->tcp_speed_max;
    if (*tcp > limit + c->tcp_speed_tolerance)
        trip(s, img, SAFETY_FAULT_TCP_SPEED, c->fault_category, -1, *tcp);
    double dist[SAFETY_MAX_SPHERES];
    *min_wall = safety_sphere_distances_at(&s->geo, img->q, dist);
    if (*min_wall < 0) {
        int worst = 0;
        for (int k = 1; k < c->n_spheres; k++)
            if (dist[k] < dist[worst])
                worst = k;
        trip(s, img, SAFETY_FAULT_WALL, c->fault_category, worst, *min_wall);
    }
}

static void run_stop(safety *s, edge_image *img)
{
    const double dt = img->period_s;
    if (img->stop_category == 0) {      /* power off: hold where the arm is */
        for (int i = 0; i < s->n; i++) {
            s->qs[i] = img->q[i];
            s->vs[i] = s->as[i] = 0;
        }
        s->ramp_active = 0;
        s->standstill = 1;
        return;
    }
    if (!s->ramp_active) {
        memcpy(s->ramp_q0, s->qs, sizeof(double) * s->n);
        memcpy(s->ramp_v0, s->vs, sizeof(double) * s->n);
        safety_ramp_params(&s->cfg, s->vs, &s->ramp_A, &s->ramp_J, &s->ramp_T);
        s->ramp_t = 0;
        s->ramp_active = 1;
    }
    s->ramp_t += dt;
    double sv, sd, phi;
    safety_ramp_eval(s->ramp_A, s->ramp_J, s->ramp_T, s->ramp_t, &sv, &sd, &phi);
    for (int i = 0; i < s->n; i++) {
        s->qs[i] = s->ramp_q0[i] + s->ramp_v0[i] * phi;
        s->vs[i] = s->ramp_v0[i] * sv;
        s->as[i] = s->ramp_v0[i] * sd;
    }
    if (s->ramp_t >= s->ramp_T) {
        s->standstill = 1;
        if (img->stop_category == 1)    /* category 1: power is removed once stopped */
            edge_request_stop(img, 0, 0);
    }
}

static int safety_command(void *self, edge_image *img, const edge_command *cmd)
{
    safety *s = self;
    switch (cmd->kind) {
    case SAFETY_CMD_REDUCED:
        s->reduced_cmd = cmd->args[0] != 0;
        return 0;
    case SAFETY_CMD_ENABLE: {
        int want = cmd->args[0] != 0;
        if (!want && s->initialised)
            for (int i = 0; i < s->n; i++)
                if (s->vs[i] != 0)
                    return 3;          /* disable only at standstill */
        if (want && !s->enabled && s->initialised)
            sync_to_measured(s, img);
        s->enabled = want;
        return 0;
    }
    default:
        return 1;
    }
}

/* A queued configuration takes effect at a tick boundary, and only while disabled. */
static void apply_pending_config(safety *s)
{
    if (atomic_load_explicit(&s->pending_state, memory_order_acquire) != 1)
        return;
    if (s->enabled) {
        if (s->observer)
            observer_take_pending(s->observer, 0);
        atomic_store_explicit(&s->pending_state, -1, memory_order_release);
        return;
    }
    if (s->observer)
        observer_take_pending(s->observer, 1);
    publish_begin(s);
    s->cfg = s->pending;
    safety_geometry_init(&s->geo, &s->model, &s->cfg, s->frames);
    memcpy(s->status.checksum, s->cfg.checksum, 32);
    publish_end(s);
    atomic_store_explicit(&s->pending_state, 2, memory_order_release);
}

static void safety_step(void *self, edge_image *img)
{
    safety *s = self;
    apply_pending_config(s);
    const safety_config *c = &s->cfg;
    if (img->reset_request && s->ramp_active && !s->standstill) {
        /* A reset while the controlled stop is still braking would hand a moving arm back
         * to motion with a velocity step: keep the stop latched until standstill. */
        edge_request_stop(img, s->status.stop_category, s->status.fault_code);
        img->reset_request = 0;
        s->resets_refused++;
    }
    if (!s->initialised || img->reset_request) {
        sync_to_measured(s, img);
        memset(s->recorded, 0, sizeof s->recorded);
    }
    /* Faults latched by others (the cycle, the observer) go into the history too. */
    int estop = (img->inputs & EDGE_IN_ESTOP) != 0;
    if (estop && !s->estop_prev)
        record(s, img, EDGE_FAULT_ESTOP, -1, 0);
    s->estop_prev = estop;
    if (img->fault_code)
        record(s, img, img->fault_code, -1, 0);

    int reduced = s->reduced_cmd || (img->inputs & SAFETY_IN_REDUCED);
    if (reduced && !s->reduced)
        s->reduced_since = img->tick;
    s->reduced = reduced;

    double min_wall, tcp;
    check_measured(s, img, &min_wall, &tcp);

    int limiting = 0;
    double scale = 1;
    s->pass_through = 0;
    if (img->stop_category != EDGE_NO_STOP) {
        run_stop(s, img);
    } else if (!s->enabled) {
        for (int i = 0; i < s->n; i++)
            s->vs[i] = s->as[i] = 0;
    } else {
        s->standstill = 0;
        scale = safety_run_motion(s, img, &limiting);
    }
    for (int i = 0; i < s->n; i++) {
        double tau = img->tau_cmd[i];          /* commanded feed-forward torque */
        if (!(fabs(tau) <= c->tau_max[i])) {
            img->tau_cmd[i] = isnan(tau) ? 0 : copysign(c->tau_max[i], tau);
            limiting = 1;
        }
        img->q_cmd[i] = s->qs[i];
        if (!s->pass_through) {
            img->qd_cmd[i] = s->vs[i];
            img->qdd_cmd[i] = s->as[i];
        }
    }

    publish_begin(s);
    safety_status *st = &s->status;
    st->tick = img->tick;
    if (img->fault_code != st->fault_code) {
        st->fault_code = img->fault_code;
        st->fault_tick = img->tick;
    }
    st->stop_category = img->stop_category;
    st->enabled = s->enabled;
    st->reduced = s->reduced;
    st->stopping = s->ramp_active && !s->standstill;
    st->standstill = s->standstill;
    st->limiting = limiting;
    st->speed_scale = scale;
    st->tcp_speed_cmd = safety_tcp_speed(&s->geo, s->qs, s->vs);
    st->tcp_speed = tcp;
    st->min_wall_distance = min_wall;
    st->min_wall_distance_cmd =
        c->n_walls ? safety_sphere_distances_at(&s->geo, s->qs, NULL) : HUGE_VAL;
    st->n_faults = s->n_hist;
    st->resets_refused = s->resets_refused;
    publish_end(s);
    if (s->signals_first >= 0)
        img->signals[s->signals_first] = (double)s->n_hist;   /* exact below 2^53 */
}

static void safety_release(void *self)
{
    free(self);
}

/* ---- setup and readers --------------------------------------------------------------- */

int safety_config_check(const arm_model *model, const safety_config *c)
{
    if (!model || !c || arm_model_check(model))
        return -1;
    if (c->n != model->n || c->n < 1 || c->n > EDGE_MAX_AXES)
        return -2;
    for (int i = 0; i < c->n; i++) {
        if (!(c->q_min[i] < c->q_max[i]) || !(c->v_max[i] > 0) || !(c->a_max[i] > 0) ||
            !(c->a_stop[i] > 0) || !(c->j_stop[i] > 0) || !(c->tau_max[i] > 0) ||
            !isfinite(c->v_max[i]) || !isfinite(c->a_max[i]) || !isfinite(c->a_stop[i]))
            return -3;
    }
    if (!(c->tcp_speed_max > 0) || !(c->tcp_speed_reduced > 0) ||
        c->tcp_speed_reduced > c->tcp_speed_max || !(c->reduced_transition_s >= 0) ||
        !(c->position_tolerance >= 0) || !(c->velocity_tolerance >= 0) ||
        !(c->tcp_speed_tolerance >= 0) || !(c->wall_margin >= 0) ||
        !isfinite(c->acceleration_tolerance) || !isfinite(c->following_error_max))
        return -4;
    if (c->stop_profile != SAFETY_STOP_ACCEL && c->stop_profile != SAFETY_STOP_JERK)
        return -5;
    if (c->fault_category < 0 || c->fault_category > 2 || c->following_category < 0 ||
        c->following_category > 2)
        return -6;
    if (c->n_walls < 0 || c->n_walls > SAFETY_MAX_WALLS || c->n_spheres < 0 ||
        c->n_spheres > SAFETY_MAX_SPHERES || (c->n_walls > 0 && c->n_spheres == 0))
        return -7;
    for (int w = 0; w < c->n_walls; w++) {
        const safety_wall *wl = &c->walls[w];
        if (wl->kind == SAFETY_WALL_PLANE) {
            double nn = wl->normal[0] * wl->normal[0] + wl->normal[1] * wl->normal[1] +
                        wl->normal[2] * wl->normal[2];
            if (!(fabs(nn - 1) < 1e-9) || !isfinite(wl->offset))
                return -8;
        } else if (wl->kind == SAFETY_WALL_KEEP_OUT || wl->kind == SAFETY_WALL_KEEP_IN) {
            for (int k = 0; k < 3; k++)
                if (!(wl->lo[k] < wl->hi[k]) || !isfinite(wl->lo[k]) || !isfinite(wl->hi[k]))
                    return -8;
        } else {
            return -8;
        }
    }
    for (int k = 0; k < c->n_spheres; k++) {
        const safety_sphere *sp = &c->spheres[k];
        if (sp->frame < 0 || sp->frame > c->n + 1 || !(sp->radius >= 0) ||
            !isfinite(sp->center[0]) || !isfinite(sp->center[1]) || !isfinite(sp->center[2]))
            return -9;
    }
    return 0;
}

edge_block *safety_block_alloc(const arm_model *model, const safety_config *cfg)
{
    if (safety_config_check(model, cfg))
        return NULL;
    safety *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->model = *model;
    s->cfg = *cfg;
    s->n = cfg->n;
    s->enabled = 1;
    safety_geometry_init(&s->geo, &s->model, &s->cfg, s->frames);
    memcpy(s->status.checksum, cfg->checksum, 32);
    s->status.stop_category = EDGE_NO_STOP;
    s->status.speed_scale = 1;
    s->status.min_wall_distance = s->status.min_wall_distance_cmd = HUGE_VAL;
    s->status.enabled = 1;
    s->signals_first = -1;
    edge_block *b = edge_block_new("safety", s);
    if (!b) {
        free(s);
        return NULL;
    }
    b->kind = EDGE_BLOCK_SAFETY;
    b->command = safety_command;
    b->step = safety_step;
    b->release = safety_release;
    return b;
}

int safety_set_config(edge_block *b, const safety_config *cfg)
{
    if (!edge_block_is(b, EDGE_BLOCK_SAFETY))
        return EDGE_ERR_KIND;
    safety *s = b->self;
    if (s->enabled)
        return -1;
    if (safety_config_check(&s->model, cfg))
        return -2;
    if (atomic_load_explicit(&s->pending_state, memory_order_acquire) == 1)
        return -3;
    s->pending = *cfg;
    atomic_store_explicit(&s->pending_state, 1, memory_order_release);
    return 0;
}

int safety_link_observer(edge_block *b, edge_block *observer)
{
    if (!edge_block_is(b, EDGE_BLOCK_SAFETY) ||
        (observer && !edge_block_is(observer, EDGE_BLOCK_OBSERVER)))
        return EDGE_ERR_KIND;
    ((safety *)b->self)->observer = observer;
    return 0;
}

int safety_config_state(const edge_block *b)
{
    if (!edge_block_is(b, EDGE_BLOCK_SAFETY))
        return EDGE_ERR_KIND;
    safety *s = b->self;
    return atomic_load_explicit(&s->pending_state, memory_order_acquire);
}

int safety_get_status(const edge_block *b, safety_status *out)
{
    if (!edge_block_is(b, EDGE_BLOCK_SAFETY))
        return EDGE_ERR_KIND;
    safety *s = b->self;
    uint32_t before, after;
    do {
        before = atomic_load_explicit(&s->seq, memory_order_acquire);
        *out = s->status;
        atomic_thread_fence(memory_order_acquire);
        after = atomic_load_explicit(&s->seq, memory_order_relaxed);
    } while ((before & 1) || before != after);
    return 0;
}

int safety_fault_history_until(const edge_block *b, int64_t total, safety_fault *out,
                               int max)
{
    if (!edge_block_is(b, EDGE_BLOCK_SAFETY))
        return EDGE_ERR_KIND;
    safety *s = b->self;
    uint32_t before, after;
    int count;
    do {
        before = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t recorded = s->n_hist;
        int64_t end = total < recorded ? total : recorded;
        int64_t first = recorded - SAFETY_HISTORY;     /* oldest record still held */
        if (first < end - max)
            first = end - max;
        if (first < 0)
            first = 0;
        count = end > first ? (int)(end - first) : 0;
        for (int k = 0; k < count; k++)
            out[k] = s->hist[(first + k) % SAFETY_HISTORY];
        atomic_thread_fence(memory_order_acquire);
        after = atomic_load_explicit(&s->seq, memory_order_relaxed);
    } while ((before & 1) || before != after);
    return count;
}

int safety_fault_history(const edge_block *b, safety_fault *out, int max)
{
    return safety_fault_history_until(b, INT64_MAX, out, max);
}

int safety_set_signals(edge_block *b, int32_t first)
{
    if (!edge_block_is(b, EDGE_BLOCK_SAFETY))
        return EDGE_ERR_KIND;
    if (first < 0 || first >= EDGE_SIGNALS)
        return -1;
    ((safety *)b->self)->signals_first = first;
    edge_block_writes_signal(b, first);   /* the state record publishes declared slots only */
    return 0;
}

int safety_sphere_distances(const edge_block *b, const double *q, double *out)
{
    if (!edge_block_is(b, EDGE_BLOCK_SAFETY))
        return EDGE_ERR_KIND;
    /* own FK buffer: callable while the cycle thread runs (the config only changes at a
     * tick boundary, from the pending copy, while the arm is disabled) */
    const safety *s = b->self;
    double frames[(ARM_MAX_LINKS + 2) * 16];
    safety_geometry g = s->geo;
    g.frames = frames;
    safety_sphere_distances_at(&g, q, out);
    return 0;
}
