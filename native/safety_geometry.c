/* safety_geometry.c — see safety_geometry.h. A stop brakes along the current joint-space
 * direction with a scalar ramp, so the stopping path is exactly the path the clearance
 * check predicts; walls are checked at samples along it, with a bound on how far the arm
 * can bulge from the chord between two samples. */
#include <math.h>
#include <stddef.h>

#include "safety_geometry.h"

#define SAFETY_SAMPLE_RAD 0.06   /* joint travel (sum over joints) between wall samples */
#define SAFETY_MAX_SAMPLES 24

/* ---- stop ramp ------------------------------------------------------------------- */

void safety_ramp_params(const safety_config *c, const double *v, double *A, double *J,
                        double *T)
{
    double a = HUGE_VAL, j = HUGE_VAL;
    for (int i = 0; i < c->n; i++) {
        double av = fabs(v[i]);
        if (av > 0) {
            a = fmin(a, c->a_stop[i] / av);
            j = fmin(j, c->j_stop[i] / av);
        }
    }
    if (a == HUGE_VAL) {            /* standing still */
        *A = *J = HUGE_VAL;
        *T = 0;
        return;
    }
    if (c->stop_profile == SAFETY_STOP_JERK) {
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

void safety_ramp_eval(double A, double J, double T, double t, double *sv, double *sd,
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

/* ---- walls, spheres, tool speed, stop clearance ------------------------------------ */

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

double safety_sphere_distances_at(const safety_geometry *g, const double *q, double *out)
{
    const safety_config *c = g->cfg;
    if (c->n_walls == 0) {
        if (out)
            for (int k = 0; k < c->n_spheres; k++)
                out[k] = HUGE_VAL;
        return HUGE_VAL;
    }
    arm_fk_frames(g->model, q, g->frames);
    double best = HUGE_VAL;
    for (int k = 0; k < c->n_spheres; k++) {
        const safety_sphere *sp = &c->spheres[k];
        const double *F = g->frames + 16 * sp->frame;
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

double safety_tcp_speed(const safety_geometry *g, const double *q, const double *v)
{
    const int n = g->model->n;
    double jac[6 * ARM_MAX_LINKS];
    arm_jacobian(g->model, q, jac);
    double sum = 0;
    for (int r = 0; r < 3; r++) {
        double u = 0;
        for (int i = 0; i < n; i++)
            u += jac[r * n + i] * v[i];
        sum += u * u;
    }
    return sqrt(sum);
}

double safety_stop_clearance(const safety_geometry *g, const double *q, const double *v)
{
    const safety_config *c = g->cfg;
    const int n = c->n;
    double A, J, T;
    safety_ramp_params(c, v, &A, &J, &T);
    double phi = T / 2, clear = HUGE_VAL, travel = 0;
    for (int i = 0; i < n; i++) {
        double end = q[i] + v[i] * phi;
        clear = fmin(clear, fmin(q[i] - c->q_min[i], c->q_max[i] - q[i]));
        clear = fmin(clear, fmin(end - c->q_min[i], c->q_max[i] - end));
        travel += fabs(v[i] * phi);
    }
    if (c->n_walls == 0)
        return clear;
    /* Any point of the arm moves at most reach * sum|dq| (dq: joint travel), so a start
     * that far from every wall needs no samples: the whole stop is clear. */
    double d0 = safety_sphere_distances_at(g, q, NULL) - c->wall_margin;
    clear = fmin(clear, d0);
    if (d0 > g->reach * travel || phi == 0)
        return clear;
    int m = (int)ceil(travel / SAFETY_SAMPLE_RAD);
    if (m < 1)
        m = 1;
    if (m > SAFETY_MAX_SAMPLES)
        m = SAFETY_MAX_SAMPLES;
    /* Between samples a point leaves the chord by at most reach * (sum|dq|)^2 / 8 (the
     * second derivative of a point on revolute joints is bounded by reach * (sum|dq|)^2);
     * planes and keep-in faces are linear along the chord, so this bounds them exactly. */
    double seg = travel / m, bulge = g->reach * seg * seg / 8;
    double qk[EDGE_MAX_AXES];
    for (int k = 1; k <= m; k++) {
        for (int i = 0; i < n; i++)
            qk[i] = q[i] + v[i] * phi * k / m;
        clear = fmin(clear, safety_sphere_distances_at(g, qk, NULL) - c->wall_margin - bulge);
    }
    if (m > 0)
        clear = fmin(clear, d0 - bulge);
    return clear;
}

/* Sum of the link lengths, the tool offset and the largest sphere centre: no sphere
 * centre is farther than this from any joint axis. */
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

void safety_geometry_init(safety_geometry *g, const arm_model *model, const safety_config *cfg,
                          double *frames)
{
    g->model = model;
    g->cfg = cfg;
    g->frames = frames;
    g->reach = arm_reach(model, cfg);
}
