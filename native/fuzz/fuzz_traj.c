/* fuzz_traj.c — libFuzzer harness for the trajectory planner entry points (traj.h).
 *
 * The first byte picks the entry point and a mode; the rest is read as numbers.
 * Raw mode: arbitrary doubles (NaN, inf, denormals, huge) and axis counts; the planner
 * must answer with one of its codes and sampling must stay memory-safe.
 * Bounded mode: a state inside the limits (the regime tests/motion check against Ruckig);
 * the plan must succeed, and on a grid its samples must be finite, within the velocity
 * and acceleration limits and end at the target state.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "traj.h"

#define LIMIT_TOL 1e-9
#define END_TOL 1e-8
#define END_TOL_REL 1e-11     /* of the distance scale: round-off grows with the travel */
#define GRID 64

typedef struct reader {
    const uint8_t *data;
    size_t size, pos;
} reader;

static uint64_t take_u64(reader *r)
{
    uint64_t x = 0;
    size_t n = r->size - r->pos < 8 ? r->size - r->pos : 8;
    memcpy(&x, r->data + r->pos, n);
    r->pos += n;
    return x;
}

static double take_raw(reader *r)
{
    uint64_t x = take_u64(r);
    double d;
    memcpy(&d, &x, sizeof(d));
    return d;
}

/* A number in [lo, hi] from the next 4 bytes. */
static double take_in(reader *r, double lo, double hi)
{
    uint32_t x = (uint32_t)take_u64(r);
    return lo + (hi - lo) * ((double)x / 4294967295.0);
}

static int known_code(int err)
{
    return err == TRAJ_OK || err == TRAJ_ERR_INPUT || err == TRAJ_ERR_TARGET ||
           err == TRAJ_ERR_NO_SOLUTION;
}

static void sample_all(const traj *tr, double t_end)
{
    double p[EDGE_MAX_AXES], v[EDGE_MAX_AXES], a[EDGE_MAX_AXES];
    const double ts[] = {-1.0, 0.0, 0.5 * t_end, t_end, t_end + 1.0, NAN, INFINITY};
    for (size_t k = 0; k < sizeof(ts) / sizeof(ts[0]); k++)
        traj_at(tr, ts[k], p, v, a);
}

static void fuzz_raw(int entry, reader *r)
{
    /* axis counts around the valid range 1..EDGE_MAX_AXES, so the refusals are hit */
    int n = (int)(take_u64(r) % (EDGE_MAX_AXES + 3)) - 1;
    double x[8 * (EDGE_MAX_AXES + 2)];
    for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++)
        x[i] = take_raw(r);
    traj tr;
    int err;
    int m = n < 1 ? 1 : n > EDGE_MAX_AXES ? EDGE_MAX_AXES : n;
    switch (entry) {
    case 0:
        err = traj_plan_packed(&tr, n, x);
        break;
    case 1:
        err = traj_plan_stop(&tr, n, x, x + m, x + 2 * m, x + 3 * m, x + 4 * m);
        break;
    default:
        err = traj_plan_velocity(&tr, n, x, x + m, x + 2 * m, x + 3 * m, x + 4 * m, x + 5 * m);
        break;
    }
    if (!known_code(err))
        abort();
    if (err == TRAJ_OK)
        sample_all(&tr, tr.duration);
}

typedef struct bounded_case {
    int n;
    double p0[EDGE_MAX_AXES], v0[EDGE_MAX_AXES], a0[EDGE_MAX_AXES], pf[EDGE_MAX_AXES],
        vf[EDGE_MAX_AXES], vmax[EDGE_MAX_AXES], amax[EDGE_MAX_AXES], jmax[EDGE_MAX_AXES];
} bounded_case;

/* The ranges of tests/motion/test_trajectory.py random_case, low-jerk and huge-vmax
 * corners included; the acceleration is shrunk until braking it to 0 stays within vmax. */
static void take_case(reader *r, bounded_case *c)
{
    c->n = 1 + (int)(take_u64(r) % 6);
    for (int i = 0; i < c->n; i++) {
        c->vmax[i] = take_in(r, 0.2, 100.0);
        c->amax[i] = take_in(r, 0.2, 10.0);
        c->jmax[i] = take_in(r, 0.05, 20.0);
        c->p0[i] = take_in(r, -3, 3);
        c->pf[i] = take_in(r, -3, 3);
        c->v0[i] = take_in(r, -1, 1) * c->vmax[i];
        c->a0[i] = take_in(r, -1, 1) * c->amax[i];
        c->vf[i] = take_in(r, -1, 1) * c->vmax[i];
        for (int k = 0; k < 80; k++) {
            double vb = c->v0[i] + c->a0[i] * fabs(c->a0[i]) / (2 * c->jmax[i]);
            if (fabs(vb) <= c->vmax[i])
                break;
            c->a0[i] *= 0.8;
        }
    }
}

static int within(double x, double limit)
{
    return isfinite(x) && fabs(x) <= limit * (1 + LIMIT_TOL) + LIMIT_TOL;
}

/* Samples on a grid within the limits (vmax NULL: no velocity check), end state as given. */
static void check_plan(const traj *tr, const bounded_case *c, const double *vmax,
                       const double *pf, const double *vf)
{
    if (!isfinite(tr->duration) || tr->duration < 0)
        abort();
    double p[EDGE_MAX_AXES], v[EDGE_MAX_AXES], a[EDGE_MAX_AXES];
    for (int k = 0; k <= GRID; k++) {
        traj_at(tr, tr->duration * k / GRID, p, v, a);
        for (int i = 0; i < c->n; i++) {
            if (!isfinite(p[i]) || !within(a[i], c->amax[i]))
                abort();
            if (vmax ? !within(v[i], vmax[i]) : !isfinite(v[i]))
                abort();
        }
    }
    traj_at(tr, tr->duration, p, v, a);
    for (int i = 0; i < c->n; i++) {
        /* e.g. a reversal from +100 to -100 units/s travels ~1000 units: 1e-8 absolute is
         * then 1e-11 relative, round-off; the scale bounds the distance covered */
        double v_scale = fabs(c->v0[i]) + fabs(vf[i]) + c->amax[i] * tr->duration;
        double p_scale = fabs(c->p0[i]) + v_scale * tr->duration;
        if (pf && !(fabs(p[i] - pf[i]) <= END_TOL + END_TOL_REL * p_scale))
            abort();
        if (!(fabs(v[i] - vf[i]) <= END_TOL + END_TOL_REL * v_scale) ||
            !(fabs(a[i]) <= END_TOL))
            abort();
    }
}

static void fuzz_bounded(int entry, reader *r)
{
    bounded_case c;
    take_case(r, &c);
    traj tr;
    static const double zeros[EDGE_MAX_AXES];
    switch (entry) {
    case 0: {
        const double *vf = (take_u64(r) & 1) ? c.vf : zeros;
        if (traj_plan(&tr, c.n, c.p0, c.v0, c.a0, c.pf, vf, c.vmax, c.amax, c.jmax) != TRAJ_OK)
            abort();
        check_plan(&tr, &c, c.vmax, c.pf, vf);
        break;
    }
    case 1:
        if (traj_plan_stop(&tr, c.n, c.p0, c.v0, c.a0, c.amax, c.jmax) != TRAJ_OK)
            abort();
        check_plan(&tr, &c, NULL, NULL, zeros);
        break;
    default:
        if (traj_plan_velocity(&tr, c.n, c.p0, c.v0, c.a0, c.vf, c.amax, c.jmax) != TRAJ_OK)
            abort();
        check_plan(&tr, &c, NULL, NULL, c.vf);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    reader r = {data, size, 1};
    int entry = data[0] & 3, bounded = (data[0] >> 2) & 1;
    if (bounded)
        fuzz_bounded(entry, &r);
    else
        fuzz_raw(entry, &r);
    return 0;
}
