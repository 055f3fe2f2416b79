/* traj_profile.c — see traj.h. A planned profile as data: sampling it at any time, and
 * the velocity interface, whose profile per axis is one fastest velocity change (after an
 * acceleration brought back within its limit) and so needs none of the planner's search.
 */
#include <math.h>
#include <string.h>

#include "traj_internal.h"

static void axis_at(const traj_axis *ax, double t, double *p, double *v, double *a)
{
    int n = ax->n_seg;
    if (t <= 0) {
        *p = ax->p[0], *v = ax->v[0], *a = ax->a[0];
        return;
    }
    if (t >= ax->duration || n == 0) {
        double dt = dmax(t - ax->duration, 0.0);
        *p = ax->p[n] + ax->v[n] * dt, *v = ax->v[n], *a = ax->a[n];
        return;
    }
    int k = n - 1;
    while (k > 0 && ax->t0[k] > t)
        k--;
    double pp = ax->p[k], vv = ax->v[k], aa = ax->a[k];
    integ(&pp, &vv, &aa, ax->jerk[k], t - ax->t0[k]);
    *p = pp, *v = vv, *a = aa;
}

void traj_at(const traj *tr, double t, double *p, double *v, double *a)
{
    for (int i = 0; i < tr->n_axes; i++)
        axis_at(&tr->axis[i], t, &p[i], &v[i], &a[i]);
}

void traj_sample(const traj *tr, const double *t, int n_t, double *p, double *v, double *a)
{
    const int n = tr->n_axes;
    for (int k = 0; k < n_t; k++)
        traj_at(tr, t[k], p + (size_t)k * n, v + (size_t)k * n, a + (size_t)k * n);
}

int traj_plan_stop(traj *out, int n, const double *p0, const double *v0, const double *a0,
                   const double *amax, const double *jmax)
{
    return traj_plan_velocity(out, n, p0, v0, a0, NULL, amax, jmax);
}

int traj_plan_velocity(traj *out, int n, const double *p0, const double *v0, const double *a0,
                       const double *vf, const double *amax, const double *jmax)
{
    if (n < 1 || n > EDGE_MAX_AXES)
        return TRAJ_ERR_INPUT;
    out->n_axes = n;
    out->duration = 0;
    for (int i = 0; i < n; i++) {
        double v = v0 ? v0[i] : 0, a = a0 ? a0[i] : 0;
        if (!isfinite(p0[i]) || !isfinite(v) || !isfinite(a) || !(amax[i] > 0) ||
            !(jmax[i] > 0))
            return TRAJ_ERR_INPUT;
        traj_axis *ax = &out->axis[i];
        memset(ax, 0, sizeof(*ax));
        ax->p[0] = p0[i], ax->v[0] = v, ax->a[0] = a;
        double t = 0;
        if (fabs(a) > amax[i]) {
            double j = a > 0 ? -jmax[i] : jmax[i];
            traj_seg_push(ax, &t, j, (fabs(a) - amax[i]) / jmax[i]);
            ax->a[ax->n_seg] = copysign(amax[i], a);
        }
        int k = ax->n_seg;
        double target = vf ? vf[i] : 0.0;
        if (!isfinite(target))
            return TRAJ_ERR_INPUT;
        vchange h;
        vel_change(ax->v[k], ax->a[k], target, jmax[i], amax[i], &h);
        for (int m = 0; m < 3; m++)
            traj_seg_push(ax, &t, h.j[m], h.t[m]);
        ax->v[ax->n_seg] = target, ax->a[ax->n_seg] = 0;
        ax->duration = ax->min_duration = t;
        out->duration = dmax(out->duration, t);
    }
    return TRAJ_OK;
}
