/* traj_internal.h — what the files of the trajectory planner share: the profile building
 * blocks (constant-jerk integration, the fastest velocity change, appending a segment) and
 * one axis' problem. traj.c plans (per axis, then synchronised) and calls traj_mid.c,
 * which holds the middle-state families the synchronisation falls back to; both use the
 * root finders of traj_roots.c, which know nothing of either; traj_profile.c samples a
 * planned profile and plans the velocity interface. Not part of the Python interface (no
 * cffi section).
 */
#ifndef EDGE_TRAJ_INTERNAL_H
#define EDGE_TRAJ_INTERNAL_H
#include <math.h>

#include "traj.h"
#include "traj_roots.h"

/* fmax/fmin are library calls at -O2 without -ffast-math; these inline. */
static inline double dmax(double a, double b)
{
    return a > b ? a : b;
}

static inline double dmin(double a, double b)
{
    return a < b ? a : b;
}

/* ---- constant-jerk integration -------------------------------------------------- */

static inline void integ(double *p, double *v, double *a, double j, double t)
{
    *p += t * (*v + t * (*a * 0.5 + t * j / 6.0));
    *v += t * (*a + t * j * 0.5);
    *a += t * j;
}

/* ---- the fastest velocity change (v0, a0) -> (v1, 0), |a0| <= A ------------------- */

typedef struct vchange {
    double t[3], j[3];
    double T, D;
} vchange;

static inline __attribute__((always_inline)) void vel_change(double v0, double a0, double v1,
                                                           double J, double A, vchange *h)
{
    /* vb: the velocity where acceleration reaches 0 by the shortest jerk ramp. Above it
     * we must push (+J first), below it pull (-J first). */
    const double iJ = 1.0 / J;
    const double vb = v0 + 0.5 * a0 * fabs(a0) * iJ;
    const double s = v1 >= vb ? 1.0 : -1.0;
    const double j = s * J, ij = s * iJ;
    double ap = s * sqrt(dmax(0.5 * a0 * a0 + j * (v1 - v0), 0.0));
    if (s * ap < s * a0)    /* v1 rounds onto vb: the single ramp of a0 to 0 */
        ap = a0;
    double th = 0;
    if (fabs(ap) > A) {
        ap = s * A;
        th = dmax((v1 - v0 - (ap * ap - 0.5 * a0 * a0) * ij) / ap, 0.0);
    }
    const double ta = dmax((ap - a0) * ij, 0.0), tb = ap * ij;
    h->t[0] = ta, h->t[1] = th, h->t[2] = tb;
    h->j[0] = j, h->j[1] = 0, h->j[2] = -j;
    /* distance in closed form: ramp up, hold at ap, ramp down */
    const double v_a = v0 + ta * (a0 + 0.5 * j * ta);
    const double d_a = ta * (v0 + ta * (0.5 * a0 + j * ta * (1.0 / 6)));
    const double d_h = th * (v_a + 0.5 * ap * th);
    const double v_h = v_a + ap * th;
    const double d_b = tb * (v_h + tb * (0.5 * ap - j * tb * (1.0 / 6)));
    h->T = ta + th + tb;
    h->D = d_a + d_h + d_b;
}

/* Appends a segment of jerk j lasting dt at time *t (advanced); ignores dt <= 0. */
static inline void traj_seg_push(traj_axis *ax, double *t, double j, double dt)
{
    if (!(dt > 0) || ax->n_seg >= TRAJ_MAX_SEGMENTS)
        return;
    int k = ax->n_seg++;
    ax->t0[k] = *t;
    ax->jerk[k] = j;
    double p = ax->p[k], v = ax->v[k], a = ax->a[k];
    integ(&p, &v, &a, j, dt);
    ax->p[k + 1] = p, ax->v[k + 1] = v, ax->a[k + 1] = a;
    *t += dt;
}

typedef struct axis_problem {
    double p0, v0, a0;          /* after the brake segments */
    double pf, vf, vmax, amax, jmax;
    double dp, t_brake;
    double dscale;              /* the distances this problem involves, for tolerances */
    int n_brake;
    int mid_swap, mid_kind;     /* scan order and kind of the middle-state families */
    int mid_window;             /* 1: scan win = {x lo, x hi, y lo, y hi} only */
    double win[4];
    double brake_t[2], brake_j[2];
    double p_start, v_start, a_start;   /* before the brake */
} axis_problem;

/* The segments of a profile after the brake (at most 8 for any family). */
typedef struct mid_profile {
    int n;
    double t[8], j[8];
} mid_profile;

/* traj_mid.c: the middle-state families (kind 0, 1, 2; see there). */
int traj_mid_build(const axis_problem *pr, int kind, double x, double y, mid_profile *m);
/* A middle-state profile of duration Tm (after the brake): 1 and its kind and parameters,
 * or 0 when none of the families reaches Tm. best is the axis' time-optimal profile (after
 * the brake, duration best_Tm): just above best_Tm the search looks near it. */
int traj_mid_fixed_time(const axis_problem *pr, const mid_profile *best, double best_Tm,
                        double Tm, int *kind, double *x, double *y);

#endif
