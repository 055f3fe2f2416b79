/* safety.c — see safety.h. The monitor keeps its own "safe command" state (qs, vs): each
 * tick the upstream command is turned into a candidate (rate-limited toward it, joint and
 * TCP speed scaled, acceleration clamped), and the candidate is only released if a
 * controlled stop started from it would stay inside every joint limit and keep every
 * sphere wall_margin away from every wall. Otherwise the largest blend between "brake
 * along the current direction" (always stoppable, by induction) and the candidate that is
 * still stoppable is released: speed is scaled by braking distance, so the arm stops
 * before a wall, never inside. Stops brake along the current joint-space direction with a
 * scalar ramp, so the stopping path is exactly the path the check predicted. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "observer.h"
#include "safety.h"

#define SAFETY_SAMPLE_RAD 0.06   /* joint travel (sum over joints) between wall samples */
#define SAFETY_MAX_SAMPLES 24
#define SAFETY_BISECT 7
#define SAFETY_CODE_BITS 512

typedef struct safety {
    arm_model model;
    safety_config cfg;
    int n, initialised, enabled, reduced_cmd, reduced, estop_prev;
    int pass_through;                  /* this tick's command is the upstream's, unchanged */
    int64_t resets_refused;
    double reach;                      /* m: bound on any sphere's distance from any axis */
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
    double frames[(ARM_MAX_LINKS + 2) * 16];
} safety;

static double arm_reach(const arm_model *m, const safety_config *c);

/* ---- stop ramp ------------------------------------------------------------------- */

/* Scalar ramp parameters for stopping from velocity v (the path is q + v phi). A and J
 * are scalar decelerations (1/s, 1/s^2) so that every joint stays within a_stop, j_stop. */
static void ramp_params(const safety *s, const double *v, double *A, double *J, double *T)
{
    double a = HUGE_VAL, j = HUGE_VAL;
    for (int i = 0; i < s->n; i++) {
        double av = fabs(v[i]);
        if (av > 0) {
            a = fmin(a, s->cfg.a_stop[i] / av);
            j = fmin(j, s->cfg.j_stop[i] / av);
        }
    }
    if (a == HUGE_VAL) {            /* standing still */
        *A = *J = HUGE_VAL;
        *T = 0;
        return;
    }
    if (s->cfg.stop_profile == SAFETY_STOP_JERK) {
        if (a * a / j > 1)           /* peak deceleration never reached: triangular */
            a = sqrt(j);
        *T = 1 / a + a / j;
    } else {
        j = HUGE_VAL;
        *T = 1 / a;
    }
    *A = a;
    *J = j;
}

/* s(t) (velocity fraction), s'(t) and phi(t) = integral of s. Symmetric, so phi(T) = T/2. */
static void ramp_eval(double A, double J, double T, double t, double *sv, double *sd,
                      double *phi)
{
    if (t >= T) {
        *sv = 0;
        *sd = 0;
        *phi = T / 2;
        return;
    }
    if (J == HUGE_VAL) {             /* acceleration-limited */
        *sv = 1 - A * t;
        *sd = -A;
        *phi = t - A * t * t / 2;
        return;
    }
    double t1 = A / J;
    if (t <= t1) {
        *sv = 1 - J * t * t / 2;
        *sd = -J * t;
        *phi = t - J * t * t * t / 6;
    } else if (t <= T - t1) {
        double s1 = 1 - J * t1 * t1 / 2, phi1 = t1 - J * t1 * t1 * t1 / 6, u = t - t1;
        *sv = s1 - A * u;
        *sd = -A;
        *phi = phi1 + s1 * u - A * u * u / 2;
    } else {
        double u = T - t;
        *sv = J * u * u / 2;
        *sd = -J * u;
        *phi = T / 2 - J * u * u * u / 6;
    }
}

/* ---- geometry ---------------------------------------------------------------------- */

static double wall_distance(const safety_wall *w, const double *x)
{
    switch (w->kind) {
    case SAFETY_WALL_PLANE:
        return w->normal[0] * x[0] + w->normal[1] * x[1] + w->normal[2] * x[2] - w->offset;
    case SAFETY_WALL_KEEP_OUT: {
        double out2 = 0, inside = HUGE_VAL;
        int outside = 0;
        for (int k = 0; k < 3; k++) {
            double d = fmax(w->lo[k] - x[k], x[k] - w->hi[k]);
            if (d > 0) {
                outside = 1;
                out2 += d * d;
            }
            inside = fmin(inside, -d);
        }
        return outside ? sqrt(out2) : -inside;
    }
    default: {                       /* keep in */
        double d = HUGE_VAL;
        for (int k = 0; k < 3; k++)
            d = fmin(d, fmin(x[k] - w->lo[k], w->hi[k] - x[k]));
        return d;
    }
    }
}

/* Distance of each sphere's surface to its nearest wall at q (out may be NULL); returns
 * the minimum over spheres (HUGE_VAL without walls). */
static double sphere_distances_with(const arm_model *model, const safety_config *c,
                                    double *frames, const double *q, double *out)
{
    if (c->n_walls == 0) {
        if (out)
            for (int k = 0; k < c->n_spheres; k++)
                out[k] = HUGE_VAL;
        return HUGE_VAL;
    }
    arm_fk_frames(model, q, frames);
    double best = HUGE_VAL;
    for (int k = 0; k < c->n_spheres; k++) {
        const safety_sphere *sp = &c->spheres[k];
        const double *F = frames + 16 * sp->frame;
        double x[3];
        for (int r = 0; r < 3; r++)
            x[r] = F[r * 4] * sp->center[0] + F[r * 4 + 1] * sp->center[1] +
                   F[r * 4 + 2] * sp->center[2] + F[r * 4 + 3];
        double d = HUGE_VAL;
        for (int w = 0; w < c->n_walls; w++)
            d = fmin(d, wall_distance(&c->walls[w], x) - sp->radius);
        if (out)
            out[k] = d;
        best = fmin(best, d);
    }
    return best;
}

static double sphere_distances(safety *s, const double *q, double *out)
{
    return sphere_distances_with(&s->model, &s->cfg, s->frames, q, out);
}

/* Linear tool speed |J_v(q) v| in m/s. */
static double tcp_speed(const safety *s, const double *q, const double *v)
{
    double jac[6 * ARM_MAX_LINKS];
    arm_jacobian(&s->model, q, jac);
    double sum = 0;
    for (int r = 0; r < 3; r++) {
        double u = 0;
        for (int i = 0; i < s->n; i++)
            u += jac[r * s->n + i] * v[i];
        sum += u * u;
    }
    return sqrt(sum);
}

/* Clearance of the stop that starts at (q, v): the smallest margin (m for walls beyond
 * wall_margin, rad for joint limits) along the predicted stopping path; >= 0 is safe. */
static double stop_clearance(safety *s, const double *q, const double *v)
{
    const safety_config *c = &s->cfg;
    double A, J, T;
    ramp_params(s, v, &A, &J, &T);
    double phi = T / 2, clear = HUGE_VAL, travel = 0;
    for (int i = 0; i < s->n; i++) {
        double end = q[i] + v[i] * phi;
        clear = fmin(clear, fmin(q[i] - c->q_min[i], c->q_max[i] - q[i]));
        clear = fmin(clear, fmin(end - c->q_min[i], c->q_max[i] - end));
        travel += fabs(v[i] * phi);
    }
    if (c->n_walls == 0)
        return clear;
    /* Any point of the arm moves at most reach * sum|dq| (dq: joint travel), so a start
     * that far from every wall needs no samples: the whole stop is clear. */
    double d0 = sphere_distances(s, q, NULL) - c->wall_margin;
    clear = fmin(clear, d0);
    if (d0 > s->reach * travel || phi == 0)
        return clear;
    int m = (int)ceil(travel / SAFETY_SAMPLE_RAD);
    if (m < 1)
        m = 1;
    if (m > SAFETY_MAX_SAMPLES)
        m = SAFETY_MAX_SAMPLES;
    /* Between samples a point leaves the chord by at most reach * (sum|dq|)^2 / 8 (the
     * second derivative of a point on revolute joints is bounded by reach * (sum|dq|)^2);
     * planes and keep-in faces are linear along the chord, so this bounds them exactly. */
    double seg = travel / m, bulge = s->reach * seg * seg / 8;
    double qk[EDGE_MAX_AXES];
    for (int k = 1; k <= m; k++) {
        for (int i = 0; i < s->n; i++)
            qk[i] = q[i] + v[i] * phi * k / m;
        clear = fmin(clear, sphere_distances(s, qk, NULL) - c->wall_margin - bulge);
    }
    if (m > 0)
        clear = fmin(clear, d0 - bulge);
    return clear;
}

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
    *tcp = tcp_speed(s, img->q, img->qd);
    int reduced_active = s->reduced &&
                         (img->tick - s->reduced_since) * dt >= c->reduced_transition_s;
    double limit = reduced_active ? c->tcp_speed_reduced : c->tcp_speed_max;
    if (*tcp > limit + c->tcp_speed_tolerance)
        trip(s, img, SAFETY_FAULT_TCP_SPEED, c->fault_category, -1, *tcp);
    double dist[SAFETY_MAX_SPHERES];
    *min_wall = sphere_distances(s, img->q, dist);
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
        ramp_params(s, s->vs, &s->ramp_A, &s->ramp_J, &s->ramp_T);
        s->ramp_t = 0;
        s->ramp_active = 1;
    }
    s->ramp_t += dt;
    double sv, sd, phi;
    ramp_eval(s->ramp_A, s->ramp_J, s->ramp_T, s->ramp_t, &sv, &sd, &phi);
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

/* Limit the upstream command; returns the speed scale actually applied (1 = none). */
static double run_motion(safety *s, edge_image *img, int *limiting)
{
    const safety_config *c = &s->cfg;
    const int n = s->n;
    const double dt = img->period_s;
    double v_des[EDGE_MAX_AXES] = {0}, vc[EDGE_MAX_AXES] = {0}, qc[EDGE_MAX_AXES] = {0};
    double request = 0, scale = 1;
    /* Follow the upstream position exactly when one tick within the acceleration limit
     * reaches it; otherwise (after limiting) catch up on its velocity, braking-distance
     * limited so the lag closes without overshoot. */
    int direct = 1;
    for (int i = 0; i < n; i++) {
        double v_fd = (img->q_cmd[i] - s->qs[i]) / dt;
        if (!(fabs(v_fd - s->vs[i]) <= c->a_max[i] * dt))
            direct = 0;
    }
    for (int i = 0; i < n; i++) {
        if (direct) {
            v_des[i] = (img->q_cmd[i] - s->qs[i]) / dt;
        } else {
            double lag = img->q_cmd[i] - s->qs[i] - img->qd_cmd[i] * dt;
            double catch_up = fmin(fabs(lag) / dt, sqrt(2 * c->a_max[i] * fabs(lag)));
            v_des[i] = img->qd_cmd[i] + copysign(catch_up, lag);
        }
        if (!isfinite(v_des[i]))
            v_des[i] = 0;
        request = fmax(request, fabs(v_des[i]));
        if (fabs(v_des[i]) > c->v_max[i])
            scale = fmin(scale, c->v_max[i] / fabs(v_des[i]));
    }
    /* 0.1 % headroom: the limit is checked with the Jacobian of this tick's pose */
    double tcp_limit = (s->reduced ? c->tcp_speed_reduced : c->tcp_speed_max) * 0.999;
    double q_next[EDGE_MAX_AXES] = {0}; /* the TCP speed that matters is at the next pose */
    for (int i = 0; i < n; i++)
        q_next[i] = s->qs[i] + scale * v_des[i] * dt;
    double u = tcp_speed(s, q_next, v_des) * scale;
    if (u > tcp_limit)
        scale *= tcp_limit / u;
    double r = 1;
    for (int i = 0; i < n; i++) {
        double dv = scale * v_des[i] - s->vs[i];
        if (fabs(dv) > c->a_max[i] * dt)
            r = fmin(r, c->a_max[i] * dt / fabs(dv));
    }
    int exact = scale == 1 && r == 1 && direct;
    for (int i = 0; i < n; i++) {
        vc[i] = s->vs[i] + r * (scale * v_des[i] - s->vs[i]);
        q_next[i] = s->qs[i] + vc[i] * dt;
    }
    /* The acceleration clamp may keep the tool above its limit (joints the upstream
     * accelerates independently); the limit wins over the acceleration limit, except
     * while a reduced-mode transition is still allowed to brake gradually. */
    int transition = s->reduced &&
                     (img->tick - s->reduced_since) * dt < c->reduced_transition_s;
    double hard = (transition ? c->tcp_speed_max : tcp_limit / 0.999) * 0.999;
    u = tcp_speed(s, q_next, vc);
    if (u > hard) {
        for (int i = 0; i < n; i++)
            vc[i] *= hard / u;
        exact = 0;
        r = 0;
    }
    for (int i = 0; i < n; i++)
        qc[i] = exact ? img->q_cmd[i] : s->qs[i] + vc[i] * dt;
    double clear_c = stop_clearance(s, qc, vc);
    if (clear_c < 0) {
        /* Brake along the current direction at the stop deceleration (the first step of
         * the stop ramp, always stoppable if the last tick was), then blend toward the
         * candidate as far as the stop check allows. */
        double qf[EDGE_MAX_AXES], vf[EDGE_MAX_AXES], qb[EDGE_MAX_AXES], vb[EDGE_MAX_AXES];
        /* full deceleration (no jerk phase): the stop predicted from the next state then
         * ends no further along the line than the one predicted from this state */
        double A = HUGE_VAL;
        for (int i = 0; i < n; i++)
            if (s->vs[i] != 0)
                A = fmin(A, c->a_stop[i] / fabs(s->vs[i]));
        double k = A * dt >= 1 ? 0 : 1 - A * dt;
        double adv = A * dt >= 1 ? 1 / (2 * A) : dt - A * dt * dt / 2;
        for (int i = 0; i < n; i++) {
            vf[i] = s->vs[i] * k;
            qf[i] = s->qs[i] + s->vs[i] * adv;
        }
        /* The fallback is stoppable by induction even where the sampled check, which is
         * conservative, says otherwise; blends must pass the check outright. Only when
         * the commanded pose itself is already inside a margin (a configuration change,
         * an arm moved by hand) are commands that do not make it worse let through, so
         * the arm can be driven out. */
        double v0[EDGE_MAX_AXES] = {0};
        int recovering = stop_clearance(s, s->qs, v0) < 0;
        double clear_f = recovering ? stop_clearance(s, qf, vf) : 0;
        double lo = 0, hi = 1;
        if (recovering && clear_c >= clear_f) {
            lo = 1;
        } else {
            for (int it = 0; it < SAFETY_BISECT; it++) {
                double mid = (lo + hi) / 2;
                for (int i = 0; i < n; i++) {
                    vb[i] = vf[i] + mid * (vc[i] - vf[i]);
                    qb[i] = qf[i] + mid * (qc[i] - qf[i]);
                }
                double cl = stop_clearance(s, qb, vb);
                if (cl >= 0 || (recovering && cl >= clear_f))
                    lo = mid;
                else
                    hi = mid;
            }
        }
        for (int i = 0; i < n; i++) {
            vc[i] = vf[i] + lo * (vc[i] - vf[i]);
            qc[i] = qf[i] + lo * (qc[i] - qf[i]);
        }
        exact = 0;
        *limiting = 1;
    }
    if (!exact && (scale < 1 || r < 1))
        *limiting = 1;
    /* The monitor's own state is always the velocity it checked (the position change),
     * so stops start from what the arm is really commanded to do even if the upstream's
     * qd_cmd disagrees; a pass-through leaves the upstream's qd_cmd/qdd_cmd untouched. */
    double out = 0;
    for (int i = 0; i < n; i++) {
        s->as[i] = (vc[i] - s->vs[i]) / dt;
        s->vs[i] = vc[i];
        s->qs[i] = qc[i];
        out = fmax(out, fabs(vc[i]));
    }
    s->pass_through = exact;
    return request > 0 ? fmin(1.0, out / request) : 1.0;
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
    s->reach = arm_reach(&s->model, &s->cfg);
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
        scale = run_motion(s, img, &limiting);
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
    st->tcp_speed_cmd = tcp_speed(s, s->qs, s->vs);
    st->tcp_speed = tcp;
    st->min_wall_distance = min_wall;
    st->min_wall_distance_cmd = c->n_walls ? sphere_distances(s, s->qs, NULL) : HUGE_VAL;
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

/* Sum of the link lengths, the tool offset and the largest sphere (centre + radius):
 * no sphere centre is farther than this from any joint axis. */
static double arm_reach(const arm_model *m, const safety_config *c)
{
    double r = sqrt(m->tool[3] * m->tool[3] + m->tool[7] * m->tool[7] +
                    m->tool[11] * m->tool[11]);
    for (int i = 0; i < m->n; i++)
        r += sqrt(m->a[i] * m->a[i] + m->d[i] * m->d[i]);
    double extra = 0;
    for (int k = 0; k < c->n_spheres; k++) {
        const double *x = c->spheres[k].center;
        extra = fmax(extra, sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]));
    }
    return r + extra;
}

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
    s->reach = arm_reach(model, cfg);
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
    b->command = safety_command;
    b->step = safety_step;
    b->release = safety_release;
    return b;
}

int safety_set_config(edge_block *b, const safety_config *cfg)
{
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

void safety_link_observer(edge_block *b, edge_block *observer)
{
    ((safety *)b->self)->observer = observer;
}

int safety_config_state(const edge_block *b)
{
    safety *s = b->self;
    return atomic_load_explicit(&s->pending_state, memory_order_acquire);
}

void safety_get_status(const edge_block *b, safety_status *out)
{
    safety *s = b->self;
    uint32_t before, after;
    do {
        before = atomic_load_explicit(&s->seq, memory_order_acquire);
        *out = s->status;
        atomic_thread_fence(memory_order_acquire);
        after = atomic_load_explicit(&s->seq, memory_order_relaxed);
    } while ((before & 1) || before != after);
}

int safety_fault_history_until(const edge_block *b, int64_t total, safety_fault *out,
                               int max)
{
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
    if (!b || b->step != safety_step || first < 0 || first >= EDGE_SIGNALS)
        return -1;
    ((safety *)b->self)->signals_first = first;
    return 0;
}

void safety_sphere_distances(const edge_block *b, const double *q, double *out)
{
    /* own FK buffer: callable while the cycle thread runs (the config only changes at a
     * tick boundary, from the pending copy, while the arm is disabled) */
    const safety *s = b->self;
    double frames[(ARM_MAX_LINKS + 2) * 16];
    sphere_distances_with(&s->model, &s->cfg, frames, q, out);
}
