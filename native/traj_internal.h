/* traj_internal.h — what the two halves of the trajectory planner share: the profile
 * building blocks (constant-jerk integration, the fastest velocity change), one axis'
 * problem and solutions, and the root finders. traj.c plans (per axis, then synchronised);
 * traj_mid.c holds the middle-state families the synchronisation falls back to. Not part
 * of the Python interface (no cffi section).
 */
#ifndef EDGE_TRAJ_INTERNAL_H
#define EDGE_TRAJ_INTERNAL_H
#include <math.h>

#include "traj.h"

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

#define MAX_CAND 24
#define FAMILY_PEAK 0           /* peak velocity vp, cruise time tc */
#define FAMILY_ARC3 1           /* three ramps, first ramp to u */
#define FAMILY_MID 2            /* + kind: middle-state families */

typedef struct axis_solution {
    double T;                   /* total (brake included) */
    double vp, tc;              /* peak-velocity family: peak/cruise velocity, cruise time */
    int ok;
    int family;                 /* FAMILY_*; the middle-state kinds are FAMILY_MID + kind
                                   with vp = x, u = y */
    double u;
} axis_solution;

typedef struct axis_work {
    axis_problem pr;
    axis_solution best;         /* time-optimal */
    int n_cand, scanned;
    axis_solution cand[MAX_CAND];  /* every profile with tc = 0 or cruise at the limit */
} axis_work;

typedef double (*scalar_fn)(const axis_problem *pr, double x, double T);

#define ROOTS_EXACT 0           /* Brent on every bracket */
#define ROOTS_SPLIT 1           /* and look for root pairs between samples */
#define ROOTS_APPROX 2          /* one secant step per bracket (a grid for tracing) */

/* The segments of a profile after the brake (at most 8 for any family). */
typedef struct mid_profile {
    int n;
    double t[8], j[8];
} mid_profile;

/* Brent's method on a bracket [a, b] with f(a), f(b) of opposite signs; *f_root receives
 * the residual at the returned root. */
double traj_brent(scalar_fn f, const axis_problem *pr, double T, double a, double b,
                  double fa, double fb, double *f_root);
/* Roots of f(., T) between the sorted breakpoints bp[0..nbp-1], `samples` per piece
 * (denser inside [-amax, amax] with per_unit > 0); split is one of ROOTS_*. */
int traj_find_roots(scalar_fn f, const axis_problem *pr, double T, const double *bp, int nbp,
                    double *roots, int max, int samples, double per_unit, int split);
/* The segments of a solution after the brake, whatever its family. */
void traj_family_segments(const axis_problem *pr, const axis_solution *s, mid_profile *m);

/* traj_mid.c: the middle-state families (kind 0, 1, 2; see there). */
int traj_mid_build(const axis_problem *pr, int kind, double x, double y, mid_profile *m);
/* A middle-state profile of duration Tm (after the brake): 1 and its kind and parameters,
 * or 0 when none of the families reaches Tm. */
int traj_mid_fixed_time(const axis_work *w, double Tm, int *kind, double *x, double *y);

#endif
