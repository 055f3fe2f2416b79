/* safety_motion.c — the safety monitor's limiting of the upstream command, in named
 * steps. The monitor keeps its own "safe command" state (qs, vs): each tick the upstream
 * command becomes a candidate (rate-limited toward it, joint and TCP speed scaled,
 * acceleration clamped), released only if a controlled stop started from it would stay
 * inside every joint limit and keep every sphere wall_margin away from every wall.
 * Otherwise the largest blend between "brake along the current direction" (always
 * stoppable, by induction) and the candidate that is still stoppable is released: speed
 * is scaled by braking distance, so the arm stops before a wall, never inside. */
#include <math.h>

#include "safety_internal.h"

#define SAFETY_BISECT 7          /* halvings of the blend between braking and candidate */

/* The active TCP speed limit with 0.1 % headroom (checked with this tick's Jacobian). */
static double tool_limit(const safety *s)
{
    return (s->reduced ? s->cfg.tcp_speed_reduced : s->cfg.tcp_speed_max) * 0.999;
}

/* The velocity the upstream command asks for (v_des), its largest component (*request)
 * and the scale that keeps every joint within v_max (*scale). Follows the upstream
 * position exactly when one tick within the acceleration limit reaches it (returns 1,
 * "direct"); otherwise (after limiting) catches up on its velocity, braking-distance
 * limited so the lag closes without overshoot. */
static int requested_velocity(const safety *s, const edge_image *img, double *v_des,
                              double *request, double *scale)
{
    const safety_config *c = &s->cfg;
    const double dt = img->period_s;
    int direct = 1;
    for (int i = 0; i < s->n; i++) {
        double v_fd = (img->q_cmd[i] - s->qs[i]) / dt;
        if (!(fabs(v_fd - s->vs[i]) <= c->a_max[i] * dt))
            direct = 0;
    }
    for (int i = 0; i < s->n; i++) {
        if (direct) {
            v_des[i] = (img->q_cmd[i] - s->qs[i]) / dt;
        } else {
            double lag = img->q_cmd[i] - s->qs[i] - img->qd_cmd[i] * dt;
            double catch_up = fmin(fabs(lag) / dt, sqrt(2 * c->a_max[i] * fabs(lag)));
            v_des[i] = img->qd_cmd[i] + copysign(catch_up, lag);
        }
        if (!isfinite(v_des[i]))
            v_des[i] = 0;
        *request = fmax(*request, fabs(v_des[i]));
        if (fabs(v_des[i]) > c->v_max[i])
            *scale = fmin(*scale, c->v_max[i] / fabs(v_des[i]));
    }
    return direct;
}

/* `scale` lowered so the tool speed of scale * v_des at the next pose stays within the
 * active limit (the TCP speed that matters is the next pose's). */
static double scale_to_tool_limit(safety *s, const double *v_des, double scale, double dt)
{
    double q_next[EDGE_MAX_AXES] = {0};
    for (int i = 0; i < s->n; i++)
        q_next[i] = s->qs[i] + scale * v_des[i] * dt;
    double u = safety_tcp_speed(&s->geo, q_next, v_des) * scale;
    double limit = tool_limit(s);
    return u > limit ? scale * (limit / u) : scale;
}

/* The candidate velocity vc: from the monitor's velocity toward scale * v_des within the
 * acceleration limit. Returns the fraction r of the step taken (1 = all of it). */
static double limit_acceleration(const safety *s, const double *v_des, double scale,
                                 double dt, double *vc)
{
    double r = 1;
    for (int i = 0; i < s->n; i++) {
        double dv = scale * v_des[i] - s->vs[i];
        if (fabs(dv) > s->cfg.a_max[i] * dt)
            r = fmin(r, s->cfg.a_max[i] * dt / fabs(dv));
    }
    for (int i = 0; i < s->n; i++)
        vc[i] = s->vs[i] + r * (scale * v_des[i] - s->vs[i]);
    return r;
}

/* The acceleration clamp may keep the tool above its limit (joints the upstream
 * accelerates independently); the limit wins over the acceleration limit, except while
 * a reduced-mode transition is still allowed to brake gradually. Returns 1 when vc was
 * scaled down. */
static int enforce_tool_limit(safety *s, const edge_image *img, double *vc)
{
    const safety_config *c = &s->cfg;
    const double dt = img->period_s;
    double q_next[EDGE_MAX_AXES] = {0};
    for (int i = 0; i < s->n; i++)
        q_next[i] = s->qs[i] + vc[i] * dt;
    int transition = s->reduced &&
                     (img->tick - s->reduced_since) * dt < c->reduced_transition_s;
    double hard = (transition ? c->tcp_speed_max : tool_limit(s) / 0.999) * 0.999;
    double u = safety_tcp_speed(&s->geo, q_next, vc);
    if (!(u > hard))
        return 0;
    for (int i = 0; i < s->n; i++)
        vc[i] *= hard / u;
    return 1;
}

/* The candidate (qc, vc) would not stop in time (clearance clear_c < 0): brake along the
 * current direction at the stop deceleration (the first step of the stop ramp, always
 * stoppable if the last tick was), then blend toward the candidate as far as the stop
 * check allows; (qc, vc) become the blend. */
static void brake_and_blend(safety *s, double dt, double clear_c, double *qc, double *vc)
{
    const safety_config *c = &s->cfg;
    const int n = s->n;
    double qf[EDGE_MAX_AXES], vf[EDGE_MAX_AXES], qb[EDGE_MAX_AXES], vb[EDGE_MAX_AXES];
    /* full deceleration (no jerk phase): the stop predicted from the next state then ends
     * no further along the line than the one predicted from this state */
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
     * conservative, says otherwise; blends must pass the check outright. Only when the
     * commanded pose itself is already inside a margin (a configuration change, an arm
     * moved by hand) are commands that do not make it worse let through, so the arm can
     * be driven out. */
    double v0[EDGE_MAX_AXES] = {0};
    int recovering = safety_stop_clearance(&s->geo, s->qs, v0) < 0;
    double clear_f = recovering ? safety_stop_clearance(&s->geo, qf, vf) : 0;
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
            double cl = safety_stop_clearance(&s->geo, qb, vb);
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
}

/* The monitor's own state becomes the velocity it checked (the position change), so
 * stops start from what the arm is really commanded to do even if the upstream's qd_cmd
 * disagrees. Returns the largest joint speed released. */
static double take_step(safety *s, const double *qc, const double *vc, double dt)
{
    double out = 0;
    for (int i = 0; i < s->n; i++) {
        s->as[i] = (vc[i] - s->vs[i]) / dt;
        s->vs[i] = vc[i];
        s->qs[i] = qc[i];
        out = fmax(out, fabs(vc[i]));
    }
    return out;
}

/* A command passed through unchanged (s->pass_through) leaves the upstream's qd_cmd and
 * qdd_cmd untouched (safety.c). */
double safety_run_motion(safety *s, edge_image *img, int *limiting)
{
    const double dt = img->period_s;
    double v_des[EDGE_MAX_AXES] = {0}, vc[EDGE_MAX_AXES] = {0}, qc[EDGE_MAX_AXES] = {0};
    double request = 0, scale = 1;
    int direct = requested_velocity(s, img, v_des, &request, &scale);
    scale = scale_to_tool_limit(s, v_des, scale, dt);
    double r = limit_acceleration(s, v_des, scale, dt, vc);
    int exact = scale == 1 && r == 1 && direct;
    if (enforce_tool_limit(s, img, vc)) {
        exact = 0;
        r = 0;
    }
    for (int i = 0; i < s->n; i++)
        qc[i] = exact ? img->q_cmd[i] : s->qs[i] + vc[i] * dt;
    double clear_c = safety_stop_clearance(&s->geo, qc, vc);
    if (clear_c < 0) {
        brake_and_blend(s, dt, clear_c, qc, vc);
        exact = 0;
        *limiting = 1;
    }
    if (!exact && (scale < 1 || r < 1))
        *limiting = 1;
    double out = take_step(s, qc, vc, dt);
    s->pass_through = exact;
    return request > 0 ? fmin(1.0, out / request) : 1.0;
}
