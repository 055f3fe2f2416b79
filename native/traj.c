/* traj.c — see traj.h. Time-optimal jerk-limited profiles, per axis and synchronised.
 *
 * The main family: [brake back into the limits] + a fastest velocity change from
 * (v0, a0) to a peak velocity vp with a = 0 + a cruise at vp + a fastest velocity change
 * from (vp, 0) to (vf, 0). A fastest velocity change is two jerk ramps with an optional
 * acceleration plateau at the limit, and is unique for each vp, so a profile is a
 * function of vp (plus the cruise time). The minimal duration is the best of: cruise at
 * +-vmax, no cruise with vp a root of D1(vp) + D2(vp) = dp, or a three-ramp profile whose
 * acceleration stays on one side of 0 (a second family, one parameter). A profile of a
 * given longer duration T (synchronisation) is a root vp of D1 + D2 + vp (T - T1 - T2) =
 * dp with T1 + T2 <= T, or, when none exists, a point of one of the two-parameter
 * middle-state families (no cruise, holds at any acceleration). Durations no family
 * reaches are the blocked intervals; the synchronised duration skips them.
 * docs/motion-trajectories.md explains each step. The middle-state families live in
 * traj_mid.c, the root finders in traj_roots.c, sampling and the velocity interface in
 * traj_profile.c; what these files share is in traj_internal.h.
 */
#include <math.h>
#include <string.h>

#include "traj_internal.h"

/* ---- one axis ---------------------------------------------------------------------- */

#define MAX_CAND 24
#define FAMILY_PEAK 0           /* peak velocity vp, cruise time tc */
#define FAMILY_ARC3 1           /* three ramps, first ramp to u */
#define FAMILY_MID 2            /* + kind: middle-state families */

/* A profile of one axis: its family and parameters (see the top of this file). */
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

/* Ramps an acceleration beyond amax back to the limit (the velocity return, if any,
 * follows in setup_axis). */
static void axis_setup(axis_problem *pr, double p0, double v0, double a0, double pf,
                       double vf, double vmax, double amax, double jmax)
{
    memset(pr, 0, sizeof(*pr));
    pr->p_start = p0, pr->v_start = v0, pr->a_start = a0;
    pr->pf = pf, pr->vf = vf, pr->vmax = vmax, pr->amax = amax, pr->jmax = jmax;
    double p = p0, v = v0, a = a0;
    if (fabs(a) > amax) {
        double j = a > 0 ? -jmax : jmax;
        double t = (fabs(a) - amax) / jmax;
        integ(&p, &v, &a, j, t);
        a = copysign(amax, a);
        pr->brake_t[pr->n_brake] = t, pr->brake_j[pr->n_brake++] = j;
    }
    pr->p0 = p, pr->v0 = v, pr->a0 = dmax(-amax, dmin(amax, a));
    pr->dp = pf - p;
}

static inline double f_dist(const axis_problem *pr, double vp, double *T12)
{
    vchange h1, h2;
    vel_change(pr->v0, pr->a0, vp, pr->jmax, pr->amax, &h1);
    vel_change(vp, 0, pr->vf, pr->jmax, pr->amax, &h2);
    *T12 = h1.T + h2.T;
    return h1.D + h2.D - pr->dp;
}

/* Residual of the fixed-duration equation; beyond the domain (T1 + T2 > T) it continues
 * as the no-cruise residual so it stays continuous. */
static inline double h_dist(const axis_problem *pr, double vp, double T)
{
    double T12;
    double f = f_dist(pr, vp, &T12);
    return f + vp * dmax(T - T12, 0.0);
}

/* The three-arc family without cruise: a first jerk ramp from a0 to a1 (held at the
 * limit for a while when a1 = +-amax), then the unique fastest change to (vf, 0). The
 * parameter u is a1 inside [-amax, amax]; beyond it, |u| - amax is jmax times the hold. */
typedef struct arc3 {
    double t1, j1, a1, tp;
    vchange rest;
    double T, D, v_extreme;
} arc3;

static void arc3_eval(const axis_problem *pr, double u, arc3 *r)
{
    const double A = pr->amax, J = pr->jmax;
    double a1 = dmax(-A, dmin(A, u));
    r->a1 = a1;
    r->tp = fabs(u) > A ? (fabs(u) - A) / J : 0.0;
    r->j1 = a1 >= pr->a0 ? J : -J;
    r->t1 = fabs(a1 - pr->a0) / J;
    double p = 0, v = pr->v0, a = pr->a0;
    double vx = fabs(v);
    /* velocity extreme inside the first ramp (where a crosses 0) */
    if ((pr->a0 > 0) != (a1 > 0) && pr->a0 != 0)
        vx = dmax(vx, fabs(pr->v0 - pr->a0 * pr->a0 / (2 * r->j1)));
    integ(&p, &v, &a, r->j1, r->t1);
    a = a1;
    integ(&p, &v, &a, 0, r->tp);
    vx = dmax(vx, fabs(v));
    vel_change(v, a, pr->vf, J, A, &r->rest);
    if ((a > 0) != (r->rest.j[0] > 0) && a != 0)
        vx = dmax(vx, fabs(v - a * a / (2 * r->rest.j[0])));
    if (r->rest.t[1] > 0 || r->rest.t[2] > 0) {
        double pp = p, vv = v, aa = a;
        integ(&pp, &vv, &aa, r->rest.j[0], r->rest.t[0]);
        vx = dmax(vx, fabs(vv));
    }
    r->T = r->t1 + r->tp + r->rest.T;
    r->D = p + r->rest.D;
    r->v_extreme = vx;
}

/* The distance residual of the three-arc family alone (the scan's hot path). */
static double fn_g(const void *ctx, double u, double T)
{
    const axis_problem *pr = ctx;
    const double A = pr->amax, J = pr->jmax, iJ = 1.0 / J;
    (void)T;
    const double a1 = dmax(-A, dmin(A, u));
    const double tp = fabs(u) > A ? (fabs(u) - A) * iJ : 0.0;
    const double j1 = a1 >= pr->a0 ? J : -J, t1 = fabs(a1 - pr->a0) * iJ;
    double p = 0, v = pr->v0, a = pr->a0;
    integ(&p, &v, &a, j1, t1);
    p += tp * (v + 0.5 * a1 * tp);
    v += a1 * tp;
    vchange rest;
    vel_change(v, a1, pr->vf, J, A, &rest);
    return p + rest.D - pr->dp;
}

static double fn_f(const void *ctx, double x, double T)
{
    double T12;
    (void)T;
    return f_dist(ctx, x, &T12);
}

static double fn_h(const void *ctx, double x, double T)
{
    return h_dist(ctx, x, T);
}

/* The segments of a solution after the brake, whatever its family. */
static void family_segments(const axis_problem *pr, const axis_solution *s, mid_profile *m)
{
    m->n = 0;
    if (s->family >= FAMILY_MID) {
        traj_mid_build(pr, s->family - FAMILY_MID, s->vp, s->u, m);
    } else if (s->family == FAMILY_ARC3) {
        arc3 r;
        arc3_eval(pr, s->u, &r);
        m->t[0] = r.t1, m->j[0] = r.j1, m->t[1] = r.tp, m->j[1] = 0;
        for (int k = 0; k < 3; k++)
            m->t[2 + k] = r.rest.t[k], m->j[2 + k] = r.rest.j[k];
        m->n = 5;
    } else {
        vchange h1, h2;
        vel_change(pr->v0, pr->a0, s->vp, pr->jmax, pr->amax, &h1);
        vel_change(s->vp, 0, pr->vf, pr->jmax, pr->amax, &h2);
        for (int k = 0; k < 3; k++)
            m->t[k] = h1.t[k], m->j[k] = h1.j[k], m->t[4 + k] = h2.t[k], m->j[4 + k] = h2.j[k];
        m->t[3] = s->tc, m->j[3] = 0;
        m->n = 7;
    }
}

/* Sorted breakpoints in [-vmax, vmax] where the residuals change form. */
static int breakpoints(const axis_problem *pr, double *bp)
{
    const double J = pr->jmax, A = pr->amax, vm = pr->vmax;
    double raw[9] = {
        -vm, vm, 0, pr->vf,
        pr->v0 + pr->a0 * fabs(pr->a0) / (2 * J),
        pr->v0 + (A * A - 0.5 * pr->a0 * pr->a0) / J,
        pr->v0 - (A * A - 0.5 * pr->a0 * pr->a0) / J,
        pr->vf + A * A / J, pr->vf - A * A / J,
    };
    int n = 0;
    for (int i = 0; i < 9; i++)
        if (raw[i] >= -vm && raw[i] <= vm)
            bp[n++] = raw[i];
    return roots_sort_unique(bp, n);
}

/* Samples per smooth piece of a residual (close root pairs between samples are caught
 * by split_extremum); the fixed-duration residual gets a coarse pass and, only if that
 * misses, a fine one. */
#define F_SAMPLES 2
#define FINE_SAMPLES 24
#define ARC3_SAMPLES 4       /* per amax of u */
#define SAMPLES_PER_PIECE 2

static void add_cand(axis_work *w, double vp, double tc, double T)
{
    if (w->n_cand < MAX_CAND)
        w->cand[w->n_cand++] = (axis_solution){T, vp, tc, 1, FAMILY_PEAK, 0};
}

/* Step 1: the time-optimal profile and the list of no-cruise / limit-cruise profiles. */
/* Sorted values of u strictly inside (lo, hi), a sub-interval of [-amax, amax], where the
 * three-arc residual changes form: where the final change flips push/pull or gains a
 * plateau. (With a hold at +-amax the breakpoints lie beyond amax, outside every
 * interval the scan uses.) */
static int arc3_breakpoints(const axis_problem *pr, double lo, double hi, double *bp)
{
    const double A = pr->amax, J = pr->jmax, a0 = pr->a0, dv = pr->vf - pr->v0;
    double raw[6];
    int n = 0;
    double q;
    if ((q = (2 * J * dv + a0 * a0) / 2) >= 0)          /* flip, ramp up to u >= 0 */
        raw[n++] = sqrt(q);
    if ((q = (a0 * a0 - 2 * J * dv) / 2) >= 0)          /* flip, ramp down to u < 0 */
        raw[n++] = -sqrt(q);
    for (int s = -1; s <= 1; s += 2)                     /* plateau in the final change */
        if ((q = A * A + 0.5 * a0 * a0 - s * J * dv) >= 0)
            raw[n++] = sqrt(q), raw[n++] = -sqrt(q);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (raw[i] > lo && raw[i] < hi)
            bp[m++] = raw[i];
    return roots_sort_unique(bp, m);
}

/* Every no-cruise profile (roots of both families); fills the candidate list. */
static void axis_scan(axis_work *w)
{
    const axis_problem *pr = &w->pr;
    if (w->scanned)
        return;
    w->scanned = 1;
    double roots[MAX_CAND], bp[9];
    int nbp = breakpoints(pr, bp);
    /* between its breakpoints this residual is monotone in every case we have seen */
    const residual rf = {fn_f, pr, pr->dscale}, rg = {fn_g, pr, pr->dscale};
    int nr = roots_find(&rf, 0, bp, nbp, roots, MAX_CAND, F_SAMPLES, 0, ROOTS_SPLIT);
    for (int i = 0; i < nr; i++) {
        double T12;
        f_dist(pr, roots[i], &T12);
        add_cand(w, roots[i], 0, pr->t_brake + T12);
    }
    /* Only a first ramp from a0 toward 0, not reaching it, followed by a push back away
     * from 0 gives a profile the peak-velocity family lacks: any other first ramp merges
     * with the next one, or crosses 0 where that family splits. So u runs over the open
     * interval between 0 and a0 (nothing when a0 = 0). */
    double ubp[8];
    int nu = 0;
    const double ulo = dmin(0.0, pr->a0), uhi = dmax(0.0, pr->a0);
    if (uhi > ulo) {
        ubp[nu++] = ulo;
        nu += arc3_breakpoints(pr, ulo, uhi, ubp + 1);
        ubp[nu++] = uhi;
    }
    /* this residual can turn twice inside one piece: sample it more densely */
    nr = nu ? roots_find(&rg, 0, ubp, nu, roots, MAX_CAND, 2, ARC3_SAMPLES / pr->amax,
                         ROOTS_SPLIT) : 0;
    for (int i = 0; i < nr; i++) {
        arc3 r;
        arc3_eval(pr, roots[i], &r);
        if (r.v_extreme <= pr->vmax * (1 + 1e-12) && w->n_cand < MAX_CAND)
            w->cand[w->n_cand++] = (axis_solution){pr->t_brake + r.T, 0, 0, 1, FAMILY_ARC3,
                                                    roots[i]};
    }
}

/* Step 1. A cruise at the velocity limit, when one fits, is the minimum (no profile
 * without cruise beats it: checked against ruckig over 10^4 random cases), so the root
 * scans run only when none fits, or later when a blocked duration needs the list. */
static int axis_min_time(axis_work *w)
{
    const axis_problem *pr = &w->pr;
    w->n_cand = 0;
    w->scanned = 0;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        double vl = sgn * pr->vmax, T12;
        double f = f_dist(pr, vl, &T12);
        double tc = -f / vl;
        if (tc >= 0)
            add_cand(w, vl, tc, pr->t_brake + T12 + tc);
    }
    if (w->n_cand == 0)
        axis_scan(w);
    w->best.ok = 0;
    for (int i = 0; i < w->n_cand; i++)
        if (!w->best.ok || w->cand[i].T < w->best.T)
            w->best = w->cand[i];
    return w->best.ok;
}

/* The direction a candidate profile moves in: the sign of its peak velocity, 0 when that
 * says nothing (another family, or a peak at rest). */
static int cand_direction(const axis_solution *c)
{
    return c->family != FAMILY_PEAK ? 0 : (c->vp > 0) - (c->vp < 0);
}

/* A fast proof that T is blocked, checked before the exhaustive search: T lies between
 * two candidate durations whose profiles move in opposite directions (every candidate at
 * the duration just below T one way, every one just above it the other way), both with a
 * substantial peak velocity. Going the other way round costs a finite detour, so the
 * durations in between belong to neither direction: the axis must wait for the reversing
 * profile. When the reversal is shallow (peak velocity near 0) the middle-state families
 * can linger near rest instead and fill the gap, so those keep the exhaustive search.
 * Empirical (see docs/motion-trajectories.md): over 1.2 x 10^5 random six-axis cases the
 * opposite-direction test without the peak-velocity bound was wrong 11 times, all with a
 * reversing peak below 0.04 vmax (and 0.04 of the other peak); the bound 0.2 keeps a
 * factor 5 margin and still proves about 95 % of the blocked cases. */
#define BLOCKED_MIN_PEAK 0.2

static int axis_blocked_between(axis_work *w, double T)
{
    axis_scan(w);
    const double rel = 1e-9;
    double below = -INFINITY, above = INFINITY;
    for (int i = 0; i < w->n_cand; i++) {
        double c = w->cand[i].T;
        if (c < T * (1 - rel) && c > below)
            below = c;
        if (c > T * (1 + rel) && c < above)
            above = c;
    }
    if (!isfinite(below) || !isfinite(above))
        return 0;
    int dir_below = 0, dir_above = 0;
    double peak_below = INFINITY, peak_above = INFINITY;
    for (int i = 0; i < w->n_cand; i++) {
        double c = w->cand[i].T;
        int near_below = fabs(c - below) <= rel * below;
        int near_above = fabs(c - above) <= rel * above;
        if (!near_below && !near_above)
            continue;
        int d = cand_direction(&w->cand[i]);
        int *dir = near_below ? &dir_below : &dir_above;
        if (d == 0 || (*dir != 0 && *dir != d) || (near_below && near_above))
            return 0;
        *dir = d;
        double *peak = near_below ? &peak_below : &peak_above;
        *peak = dmin(*peak, fabs(w->cand[i].vp));
    }
    const double floor_ = BLOCKED_MIN_PEAK * w->pr.vmax;
    return dir_below * dir_above < 0 && peak_below >= floor_ && peak_above >= floor_;
}

/* Step 2: a profile of exactly duration T (brake included); 0 if T is blocked. */
static int axis_fixed_time(axis_work *w, double T, axis_solution *out)
{
    const axis_problem *pr = &w->pr;
    const residual rh = {fn_h, pr, pr->dscale};
    const double tol = 1e-12 * dmax(1.0, T);
    for (int i = 0; i < w->n_cand; i++)
        if (fabs(w->cand[i].T - T) <= tol) {
            *out = w->cand[i];
            return 1;
        }
    double Tm = T - pr->t_brake;
    if (Tm < 0)
        return 0;
    /* Usually the profile of a longer duration cruises slower on the same side as the
     * time-optimal one: try that bracket first. */
    if (w->best.family == FAMILY_PEAK && w->best.vp != 0) {
        double x0 = w->best.vp * 1e-9, x1 = w->best.vp;
        double f0 = fn_h(pr, x0, Tm), f1 = fn_h(pr, x1, Tm);
        if ((f0 > 0) != (f1 > 0)) {
            double fr, r = roots_brent(&rh, Tm, x0, x1, f0, f1, &fr), T12;
            f_dist(pr, r, &T12);
            if (T12 <= Tm + tol && fabs(fr) <= 1e-9 * pr->dscale) {
                *out = (axis_solution){T, r, dmax(Tm - T12, 0.0), 1, FAMILY_PEAK, 0};
                return 1;
            }
        }
    }
    double roots[MAX_CAND], bp[9];
    int nbp = breakpoints(pr, bp);
    /* a coarse scan first; a fine one only when the coarse one misses */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && axis_blocked_between(w, T))
            return 0;
        int nr = roots_find(&rh, Tm, bp, nbp, roots, MAX_CAND,
                            pass ? FINE_SAMPLES : SAMPLES_PER_PIECE, 0,
                            pass ? ROOTS_SPLIT : ROOTS_EXACT);
        for (int i = 0; i < nr; i++) {
            double T12;
            f_dist(pr, roots[i], &T12);
            if (T12 <= Tm + tol) {
                *out = (axis_solution){T, roots[i], dmax(Tm - T12, 0.0), 1, FAMILY_PEAK, 0};
                return 1;
            }
        }
    }
    double x, y;
    int kind;
    mid_profile best;
    family_segments(pr, &w->best, &best);
    if (traj_mid_fixed_time(pr, &best, w->best.T - pr->t_brake, Tm, &kind, &x, &y)) {
        *out = (axis_solution){T, x, 0, 1, FAMILY_MID + kind, y};
        return 1;
    }
    return 0;
}

/* ---- building --------------------------------------------------------------------- */

static void axis_build(traj_axis *ax, const axis_problem *pr, const axis_solution *s,
                       const vchange *pre, int n_pre)
{
    memset(ax, 0, sizeof(*ax));
    ax->p[0] = pr->p_start, ax->v[0] = pr->v_start, ax->a[0] = pr->a_start;
    double t = 0;
    for (int k = 0; k < pr->n_brake; k++)
        traj_seg_push(ax, &t, pr->brake_j[k], pr->brake_t[k]);
    for (int m = 0; m < n_pre; m++)
        for (int k = 0; k < 3; k++)
            traj_seg_push(ax, &t, pre[m].j[k], pre[m].t[k]);
    mid_profile m;
    family_segments(pr, s, &m);
    for (int k = 0; k < m.n; k++)
        traj_seg_push(ax, &t, m.j[k], m.t[k]);
    ax->duration = t;
    /* The end state is the target by construction; store it exactly. */
    ax->p[ax->n_seg] = pr->pf, ax->v[ax->n_seg] = pr->vf, ax->a[ax->n_seg] = 0;
}

/* ---- planning ---------------------------------------------------------------------- */

/* Brake-to-limit velocity change folded in before the main profile (see axis_setup). */
static int pre_change(const axis_problem *pr, double v, double a, vchange *pre)
{
    double vb = v + a * fabs(a) / (2 * pr->jmax);
    if (fabs(vb) > pr->vmax * (1 + 1e-12)) {
        vel_change(v, a, copysign(pr->vmax, vb), pr->jmax, pr->amax, pre);
        return 1;
    }
    return 0;
}

static int setup_axis(axis_work *w, double p0, double v0, double a0, double pf, double vf,
                      double vmax, double amax, double jmax, vchange *pre, int *n_pre)
{
    axis_setup(&w->pr, p0, v0, a0, pf, vf, vmax, amax, jmax);
    axis_problem *pr = &w->pr;
    /* Recompute the brake so the samples replay it: a-limit ramp then velocity return. */
    double p = p0, v = v0, a = a0, t = 0;
    for (int k = 0; k < pr->n_brake; k++) {
        integ(&p, &v, &a, pr->brake_j[k], pr->brake_t[k]);
        t += pr->brake_t[k];
    }
    *n_pre = pre_change(pr, v, dmax(-amax, dmin(amax, a)), pre);
    if (*n_pre) {
        double a_in = dmax(-amax, dmin(amax, a));
        double pp = p, vv = v, aa = a_in;
        for (int k = 0; k < 3; k++) {
            integ(&pp, &vv, &aa, pre->j[k], pre->t[k]);
            t += pre->t[k];
        }
        pr->p0 = pp, pr->v0 = copysign(vmax, vv), pr->a0 = 0;
        pr->dp = pf - pp;
    }
    pr->t_brake = t;
    /* distances of a velocity change: v^2 / amax with a plateau, |v|^1.5 / sqrt(jmax)
     * without; 1e-30 is far below any physical distance */
    const double sj = sqrt(jmax), av0 = fabs(pr->v0), avf = fabs(vf);
    pr->dscale = fabs(pr->dp) + (av0 * av0 + avf * avf) / amax +
                 (av0 * sqrt(av0) + avf * sqrt(avf)) / sj +
                 fabs(pr->a0 * pr->a0 * pr->a0) / (jmax * jmax) + 1e-30;
    return axis_min_time(w);
}

static int check_inputs(int n, const double *p0, const double *v0, const double *a0,
                        const double *pf, const double *vf, const double *vmax,
                        const double *amax, const double *jmax)
{
    if (n < 1 || n > EDGE_MAX_AXES)
        return TRAJ_ERR_INPUT;
    for (int i = 0; i < n; i++) {
        if (!isfinite(p0[i]) || (v0 && !isfinite(v0[i])) || (a0 && !isfinite(a0[i])) ||
            !isfinite(pf[i]) || (vf && !isfinite(vf[i])))
            return TRAJ_ERR_INPUT;
        if (!(vmax[i] > 0) || !(amax[i] > 0) || !(jmax[i] > 0) || !isfinite(vmax[i]) ||
            !isfinite(amax[i]) || !isfinite(jmax[i]))
            return TRAJ_ERR_INPUT;
        if (vf && fabs(vf[i]) > vmax[i])
            return TRAJ_ERR_TARGET;
    }
    return TRAJ_OK;
}

int traj_plan(traj *out, int n, const double *p0, const double *v0, const double *a0,
              const double *pf, const double *vf, const double *vmax, const double *amax,
              const double *jmax)
{
    int err = check_inputs(n, p0, v0, a0, pf, vf, vmax, amax, jmax);
    if (err)
        return err;
    axis_work w[EDGE_MAX_AXES];
    vchange pre[EDGE_MAX_AXES];
    int n_pre[EDGE_MAX_AXES];
    double T = 0;
    for (int i = 0; i < n; i++) {
        if (!setup_axis(&w[i], p0[i], v0 ? v0[i] : 0, a0 ? a0[i] : 0, pf[i], vf ? vf[i] : 0,
                        vmax[i], amax[i], jmax[i], &pre[i], &n_pre[i]))
            return TRAJ_ERR_NO_SOLUTION;
        T = dmax(T, w[i].best.T);
    }
    axis_solution sol[EDGE_MAX_AXES];
    for (int guard = 0; guard < 64; guard++) {
        int failed = -1;
        for (int i = 0; i < n && failed < 0; i++)
            if (!axis_fixed_time(&w[i], T, &sol[i]))
                failed = i;
        if (failed < 0)
            goto done;
        /* T lies in a blocked interval of that axis; reachability only changes at its
         * candidate durations, so the interval ends at its next one above T. */
        axis_scan(&w[failed]);
        double next = INFINITY;
        for (int c = 0; c < w[failed].n_cand; c++)
            if (w[failed].cand[c].T > T * (1 + 1e-12) && w[failed].cand[c].T < next)
                next = w[failed].cand[c].T;
        if (!isfinite(next)) {
            /* should not happen (a candidate missed): the next of any axis */
            for (int i = 0; i < n; i++) {
                axis_scan(&w[i]);
                for (int c = 0; c < w[i].n_cand; c++)
                    if (w[i].cand[c].T > T * (1 + 1e-12) && w[i].cand[c].T < next)
                        next = w[i].cand[c].T;
            }
        }
        if (!isfinite(next))
            return TRAJ_ERR_NO_SOLUTION;
        T = next;
    }
    return TRAJ_ERR_NO_SOLUTION;
done:
    out->n_axes = n;
    out->duration = T;
    for (int i = 0; i < n; i++) {
        axis_build(&out->axis[i], &w[i].pr, &sol[i], &pre[i], n_pre[i]);
        out->axis[i].min_duration = w[i].best.T;
    }
    return TRAJ_OK;
}

int traj_plan_packed(traj *out, int n, const double *x)
{
    if (n < 1 || n > EDGE_MAX_AXES)
        return TRAJ_ERR_INPUT;
    return traj_plan(out, n, x, x + n, x + 2 * n, x + 3 * n, x + 4 * n, x + 5 * n, x + 6 * n,
                     x + 7 * n);
}
