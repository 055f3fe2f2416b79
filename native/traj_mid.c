/* traj_mid.c — the middle-state families of the trajectory planner (see traj.c and
 * docs/motion-trajectories.md): profiles without cruise whose duration the cruise family
 * cannot reach, traced as curves in a two-number parameter plane. Only synchronisation to
 * a fixed duration uses them, and only when the cheaper families miss.
 */
#include <math.h>

#include "traj_internal.h"

/* Two jerk ramps (with a hold at the limit) from (v0, a0) to (v1, a1): the faster of the
 * push-first and pull-first shapes. 0 if neither exists. |a0|, |a1| <= A. */
static int gen_change(double v0, double a0, double v1, double a1, double J, double A,
                      vchange *h)
{
    int found = 0;
    for (int k = 0; k < 2; k++) {
        double s = k ? -1.0 : 1.0, j = s * J;
        double X = 0.5 * (a0 * a0 + a1 * a1) + j * (v1 - v0);
        if (X < 0)
            continue;
        double r = sqrt(X), lo = s > 0 ? dmax(a0, a1) : dmin(a0, a1), ap;
        if (-r >= s * lo)
            ap = -s * r;
        else if (r >= s * lo)
            ap = s * r;
        else
            continue;
        vchange c;
        double th = 0;
        if (fabs(ap) > A) {
            ap = s * A;
            th = dmax((v1 - v0 - (2 * A * A - a0 * a0 - a1 * a1) / (2 * j)) / ap, 0.0);
        }
        c.t[0] = dmax((ap - a0) / j, 0.0), c.t[1] = th, c.t[2] = dmax((ap - a1) / j, 0.0);
        c.j[0] = j, c.j[1] = 0, c.j[2] = -j;
        double p = 0, v = v0, a = a0;
        for (int m = 0; m < 3; m++)
            integ(&p, &v, &a, c.j[m], c.t[m]);
        c.T = c.t[0] + c.t[1] + c.t[2];
        c.D = p;
        if (!found || c.T < h->T)
            *h = c;
        found = 1;
    }
    return found;
}

/* Families for fixed durations that the cruise family cannot reach (no cruise; a hold at
 * any acceleration, not only at the limit). Each is a function of two numbers (x, y):
 *   kind 0: two ramps to a middle state (v3 = x, a3 = y), the fastest change to (vf, 0)
 *           (up-down-up-down profiles);
 *   kind 1: two ramps to (v3 = x, a3 = y), a hold at a3, one ramp to 0;
 *   kind 2: one ramp to a1 = y, a hold of x seconds, the fastest change to (vf, 0).
 * The distance roots form curves in the (x, y) plane; they are traced on a grid in y
 * (and, swapped, in x, so that a fold in one direction is crossed in the other) and the
 * duration is matched along a branch by false position. */
int traj_mid_build(const axis_problem *pr, int kind, double x, double y, mid_profile *m)
{
    const double J = pr->jmax, A = pr->amax;
    vchange h;
    m->n = 0;
    if (kind == 2) {
        if (!(x >= 0) || fabs(y) > A)
            return 0;
        double v = pr->v0, a = pr->a0, p = 0, j1 = y >= pr->a0 ? J : -J;
        double t1 = fabs(y - pr->a0) / J;
        integ(&p, &v, &a, j1, t1);
        v += y * x;
        m->t[0] = t1, m->j[0] = j1, m->t[1] = x, m->j[1] = 0;
        vel_change(v, y, pr->vf, J, A, &h);
        for (int k = 0; k < 3; k++)
            m->t[2 + k] = h.t[k], m->j[2 + k] = h.j[k];
        m->n = 5;
        return 1;
    }
    if (!gen_change(pr->v0, pr->a0, x, y, J, A, &h))
        return 0;
    for (int k = 0; k < 3; k++)
        m->t[k] = h.t[k], m->j[k] = h.j[k];
    if (kind == 0) {
        vel_change(x, y, pr->vf, J, A, &h);
        for (int k = 0; k < 3; k++)
            m->t[3 + k] = h.t[k], m->j[3 + k] = h.j[k];
        m->n = 6;
        return 1;
    }
    if (y == 0)
        return 0;
    double th = (pr->vf - y * fabs(y) / (2 * J) - x) / y;
    if (!(th >= 0))
        return 0;
    m->t[3] = th, m->j[3] = 0, m->t[4] = fabs(y) / J, m->j[4] = y > 0 ? -J : J;
    m->n = 5;
    return 1;
}

static double mid_dist(const axis_problem *pr, double x, double y, double *T)
{
    mid_profile m;
    if (!traj_mid_build(pr, pr->mid_kind, x, y, &m))
        return NAN;
    double p = 0, v = pr->v0, a = pr->a0, t = 0;
    for (int k = 0; k < m.n; k++) {
        integ(&p, &v, &a, m.j[k], m.t[k]);
        t += m.t[k];
    }
    *T = t;
    return p - pr->dp;
}

/* The family is scanned twice, once with y on the grid and x as the root, once the
 * other way round. */
static double mid_xy(const axis_problem *pr, double x, double y, double *T)
{
    return pr->mid_swap ? mid_dist(pr, y, x, T) : mid_dist(pr, x, y, T);
}

static double fn_mid(const void *ctx, double x, double y)
{
    double T;
    return mid_xy(ctx, x, y, &T);
}

/* Velocity and acceleration stay within the limits, also where a crosses 0. */
static int mid_within_limits(const axis_problem *pr, double x, double y)
{
    mid_profile m;
    if (!traj_mid_build(pr, pr->mid_kind, x, y, &m))
        return 0;
    double v = pr->v0, a = pr->a0, p = 0;
    const double vlim = pr->vmax * (1 + 1e-12), alim = pr->amax * (1 + 1e-12);
    for (int k = 0; k < m.n; k++) {
        double j = m.j[k], t = m.t[k];
        if (j != 0 && (a > 0) != (a + j * t > 0) && a != 0 &&
            fabs(v - a * a / (2 * j)) > vlim)
            return 0;
        integ(&p, &v, &a, j, t);
        if (fabs(v) > vlim || fabs(a) > alim)
            return 0;
    }
    return 1;
}

#define MID_GRID 17
#define MID_X 10
#define MID_ROOTS 8

/* Roots x in [xlo, xhi] of the distance residual for a given y. */
static int mid_roots(const axis_problem *pr, double y, double xlo, double xhi, double *roots)
{
    double bp[MID_X + 1];
    for (int i = 0; i <= MID_X; i++)
        bp[i] = xlo + (xhi - xlo) * i / MID_X;
    const residual r = {fn_mid, pr, pr->dscale};
    return roots_find(&r, y, bp, MID_X + 1, roots, MID_ROOTS, 1, 0, ROOTS_APPROX);
}

static double nearest(const double *r, int n, double x)
{
    double best = NAN;
    for (int i = 0; i < n; i++)
        if (isnan(best) || fabs(r[i] - x) < fabs(best - x))
            best = r[i];
    return best;
}

/* The root in x near x_est for this y: a bracket grown around the estimate, then Brent. */
static double local_root(const axis_problem *pr, double y, double x_est, double step,
                         double xlo, double xhi)
{
    double f0 = fn_mid(pr, x_est, y);
    if (f0 == 0)
        return x_est;
    if (isnan(f0))
        return NAN;
    int dead[2] = {0, 0};           /* a side that ran into the domain edge is done */
    for (int k = 0; k < 8 && !(dead[0] && dead[1]); k++, step *= 2) {
        for (int m = 0; m < 2; m++) {
            if (dead[m])
                continue;
            double x = dmax(xlo, dmin(xhi, m ? x_est + step : x_est - step));
            double f = fn_mid(pr, x, y);
            if (isnan(f)) {
                /* the root may sit between the estimate and the domain edge */
                double in = x_est, out = x;
                dead[m] = 1;
                for (int it = 0; it < 24 && isnan(f); it++) {
                    double mid = 0.5 * (in + out), fm = fn_mid(pr, mid, y);
                    if (isnan(fm)) {
                        out = mid;
                    } else if ((fm > 0) != (f0 > 0)) {
                        x = mid, f = fm;
                    } else {
                        in = mid;
                    }
                }
                if (isnan(f))
                    continue;
            }
            if ((f > 0) != (f0 > 0)) {
                double lo = m ? x_est : x, hi = m ? x : x_est;
                double flo = m ? f0 : f, fhi = m ? f : f0;
                const residual r = {fn_mid, pr, pr->dscale};
                double fr, root = roots_brent(&r, y, lo, hi, flo, fhi, &fr);
                return fabs(fr) <= 1e-9 * pr->dscale ? root : NAN;
            }
        }
    }
    return NAN;
}

/* The scan's parameter ranges: x is the root, y the grid coordinate. */
typedef struct mid_ranges {
    double xr[2], yr[2];
    double xspan, yspan;
} mid_ranges;

static void mid_scan_ranges(const axis_problem *pr, double Tm, mid_ranges *g)
{
    /* a middle acceleration needs |a|^2 / (2 jmax) of velocity to return to 0 */
    const double A = dmin(pr->amax, dmax(fabs(pr->a0), sqrt(4 * pr->jmax * pr->vmax)));
    double r0[2] = {-pr->vmax, pr->vmax}, r1[2] = {-A, A};
    if (pr->mid_kind == 2)
        r0[0] = 0, r0[1] = Tm;           /* x is a hold time */
    if (pr->mid_window)
        r0[0] = pr->win[0], r0[1] = pr->win[1], r1[0] = pr->win[2], r1[1] = pr->win[3];
    const double *xr = pr->mid_swap ? r1 : r0, *yr = pr->mid_swap ? r0 : r1;
    g->xr[0] = xr[0], g->xr[1] = xr[1], g->yr[0] = yr[0], g->yr[1] = yr[1];
    g->xspan = xr[1] - xr[0], g->yspan = yr[1] - yr[0];
}

/* A point of a branch where the duration is g = T - Tm. */
typedef struct mid_point {
    double x, y, g;
} mid_point;

/* Illinois false position on the duration along the branch from lo to hi (g of opposite
 * signs or 0), each point's x the exact root near the straight line between the ends;
 * narrows lo and hi in place. */
static void mid_false_position(const axis_problem *pr, const mid_ranges *g, double Tm,
                               mid_point *lo, mid_point *hi)
{
    int side = 0;
    for (int it = 0; it < 60 && hi->y - lo->y > 1e-15 * g->yspan; it++) {
        double ym = (lo->g * hi->y - hi->g * lo->y) / (lo->g - hi->g);
        if (!(ym > lo->y && ym < hi->y))
            ym = 0.5 * (lo->y + hi->y);
        double w_ = (ym - lo->y) / (hi->y - lo->y), Tmid;
        double xm = local_root(pr, ym, lo->x + w_ * (hi->x - lo->x),
                               dmax(fabs(hi->x - lo->x), 1e-9 * g->xspan), g->xr[0], g->xr[1]);
        if (isnan(xm))
            break;
        mid_xy(pr, xm, ym, &Tmid);
        double gm = Tmid - Tm;
        if (gm == 0) {
            lo->y = hi->y = ym, lo->x = hi->x = xm;
            break;
        }
        if ((gm > 0) == (lo->g > 0)) {
            lo->y = ym, lo->x = xm, lo->g = gm;
            if (side == -1)
                hi->g *= 0.5;
            side = -1;
        } else {
            hi->y = ym, hi->x = xm, hi->g = gm;
            if (side == 1)
                lo->g *= 0.5;
            side = 1;
        }
        if (fabs(gm) <= 1e-13 * dmax(1.0, Tm))
            break;
    }
}

/* The branch through the grid roots (xlo, ylo) and (xhi, yhi): 1 and its point of
 * duration Tm (in the family's own (x, y) order) when that lies between them, within
 * tolerance and the limits. */
static int mid_branch(const axis_problem *pr, const mid_ranges *g, double Tm, double xlo,
                      double ylo, double xhi, double yhi, double *x_out, double *y_out)
{
    double Tlo, Thi;
    mid_xy(pr, xlo, ylo, &Tlo);
    mid_xy(pr, xhi, yhi, &Thi);
    double glo = Tlo - Tm, ghi = Thi - Tm;
    /* the grid roots are one secant step: decide on exact ones near a crossing */
    const double near_t = 0.25 * Tm + 0.05;
    if ((glo > 0) == (ghi > 0) && fabs(glo) > near_t && fabs(ghi) > near_t)
        return 0;
    const double step = 1e-3 * g->xspan;
    xlo = local_root(pr, ylo, xlo, step, g->xr[0], g->xr[1]);
    xhi = local_root(pr, yhi, xhi, step, g->xr[0], g->xr[1]);
    if (isnan(xlo) || isnan(xhi))
        return 0;
    mid_xy(pr, xlo, ylo, &Tlo);
    mid_xy(pr, xhi, yhi, &Thi);
    glo = Tlo - Tm, ghi = Thi - Tm;
    if ((glo > 0) == (ghi > 0) && glo != 0 && ghi != 0)
        return 0;
    mid_point lo = {xlo, ylo, glo}, hi = {xhi, yhi, ghi};
    mid_false_position(pr, g, Tm, &lo, &hi);
    double T1, T2;
    double f1 = mid_xy(pr, lo.x, lo.y, &T1), f2 = mid_xy(pr, hi.x, hi.y, &T2);
    int lo_better = fabs(T1 - Tm) < fabs(T2 - Tm);
    double x = lo_better ? lo.x : hi.x, y = lo_better ? lo.y : hi.y;
    double f = lo_better ? f1 : f2;
    double nx = pr->mid_swap ? y : x, ny = pr->mid_swap ? x : y;
    if (dmin(fabs(T1 - Tm), fabs(T2 - Tm)) <= 1e-9 * dmax(1.0, Tm) &&
        fabs(f) <= 1e-9 * pr->dscale && mid_within_limits(pr, nx, ny)) {
        *x_out = nx, *y_out = ny;
        return 1;
    }
    return 0;
}

/* Roots in x on a grid in y, joined into branches between neighbouring grid lines; the
 * first branch that reaches duration Tm gives the answer. */
static int mid_scan(const axis_problem *pr, double Tm, double *x_out, double *y_out)
{
    mid_ranges g;
    mid_scan_ranges(pr, Tm, &g);
    double roots[MID_GRID][MID_ROOTS], grid[MID_GRID];
    int nr[MID_GRID];
    for (int k = 0; k < MID_GRID; k++) {
        grid[k] = g.yr[0] + g.yspan * k / (MID_GRID - 1);
        nr[k] = mid_roots(pr, grid[k], g.xr[0], g.xr[1], roots[k]);
    }
    const double match = 0.125 * g.xspan;
    for (int k = 0; k + 1 < MID_GRID; k++)
        for (int i = 0; i < nr[k]; i++) {
            double xlo = roots[k][i], xhi = nearest(roots[k + 1], nr[k + 1], xlo);
            if (isnan(xhi) || fabs(xhi - xlo) > match)
                continue;
            if (mid_branch(pr, &g, Tm, xlo, grid[k], xhi, grid[k + 1], x_out, y_out))
                return 1;
        }
    return 0;
}

static int mid_scans(axis_problem *q, double Tm, int *kind, double *x, double *y)
{
    for (q->mid_kind = 0; q->mid_kind < 3; q->mid_kind++)
        for (q->mid_swap = 0; q->mid_swap < 2; q->mid_swap++)
            if (mid_scan(q, Tm, x, y)) {
                *kind = q->mid_kind;
                return 1;
            }
    return 0;
}

/* Just above an axis' own minimum the profiles are small perturbations of its
 * time-optimal one, on branches too short for the global grid: scan windows around the
 * parameters of that profile (the state after its first and second jerk ramps). */
static int mid_near_optimum(const axis_problem *pr, const mid_profile *m, double Tm,
                            int *kind, double *x, double *y)
{
    double p = 0, v = pr->v0, a = pr->a0, st[2][2] = {{v, a}, {v, a}};
    for (int k = 0, ramps = 0; k < m->n && ramps < 2; k++) {
        integ(&p, &v, &a, m->j[k], m->t[k]);
        if (m->j[k] != 0 && m->t[k] > 0) {
            st[ramps][0] = v, st[ramps][1] = a;
            ramps++;
        }
    }
    axis_problem q = *pr;
    q.mid_window = 1;
    const double dv = 0.1 * q.vmax, da = 0.1 * q.amax;
    for (q.mid_kind = 0; q.mid_kind < 3; q.mid_kind++) {
        if (q.mid_kind < 2) {
            q.win[0] = st[1][0] - dv, q.win[1] = st[1][0] + dv;
            q.win[2] = st[1][1] - da, q.win[3] = st[1][1] + da;
        } else {
            q.win[0] = 0, q.win[1] = 0.1 * Tm;
            q.win[2] = st[0][1] - da, q.win[3] = st[0][1] + da;
        }
        for (q.mid_swap = 0; q.mid_swap < 2; q.mid_swap++)
            if (mid_scan(&q, Tm, x, y)) {
                *kind = q.mid_kind;
                return 1;
            }
    }
    return 0;
}

int traj_mid_fixed_time(const axis_problem *pr, const mid_profile *best, double best_Tm,
                        double Tm, int *kind, double *x, double *y)
{
    axis_problem q = *pr;
    if (mid_scans(&q, Tm, kind, x, y))
        return 1;
    return Tm <= best_Tm * 1.05 && mid_near_optimum(pr, best, Tm, kind, x, y);
}

