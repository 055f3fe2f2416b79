/* traj_roots.c — see traj_roots.h. The planner's residuals are piecewise smooth with
 * known breakpoints: each smooth piece is sampled, sign changes are refined with Brent,
 * and a root pair hiding between two samples is found through the extremum between them.
 */
#include <math.h>

#include "traj_roots.h"

/* fmin is a library call at -O2 without -ffast-math; this inlines. */
static inline double rmin(double a, double b)
{
    return a < b ? a : b;
}

double roots_brent(const residual *r, double T, double a, double b, double fa, double fb,
                   double *f_root)
{
    double c = a, fc = fa, d = b - a, e = d;
    const double ftol = 1e-13 * r->scale;
    for (int iter = 0; iter < 200; iter++) {
        if ((fb > 0) == (fc > 0)) {
            c = a, fc = fa;
            d = e = b - a;
        }
        if (fabs(fc) < fabs(fb)) {
            a = b, b = c, c = a;
            fa = fb, fb = fc, fc = fa;
        }
        double tol = 2 * 2.220446049250313e-16 * fabs(b) + 1e-300;
        double m = 0.5 * (c - b);
        /* every residual here is a distance: 1e-13 of the problem's scale is far below use */
        if (fabs(m) <= tol || fabs(fb) <= ftol) {
            *f_root = fb;
            return b;
        }
        if (fabs(e) >= tol && fabs(fa) > fabs(fb)) {
            double s = fb / fa, p, q;
            if (a == c) {
                p = 2 * m * s;
                q = 1 - s;
            } else {
                double qq = fa / fc, rr = fb / fc;
                p = s * (2 * m * qq * (qq - rr) - (b - a) * (rr - 1));
                q = (qq - 1) * (rr - 1) * (s - 1);
            }
            if (p > 0)
                q = -q;
            else
                p = -p;
            if (2 * p < rmin(3 * m * q - fabs(tol * q), fabs(e * q))) {
                e = d;
                d = p / q;
            } else {
                d = m;
                e = m;
            }
        } else {
            d = m;
            e = m;
        }
        a = b, fa = fb;
        b += fabs(d) > tol ? d : copysign(tol, m);
        fb = r->f(r->ctx, b, T);
    }
    *f_root = fb;
    return b;
}

/* Insertion sort: a handful of values. */
int roots_sort_unique(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        double x = v[i];
        int k = i - 1;
        while (k >= 0 && v[k] > x) {
            v[k + 1] = v[k];
            k--;
        }
        v[k + 1] = x;
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || v[i] > v[m - 1])
            v[m++] = v[i];
    return m;
}

/* Two close roots between samples show as a local extremum of f that does not reach
 * zero at the samples. When the parabola through three same-signed samples bends back
 * at least halfway to zero inside them, golden-section search finds the extremum; if
 * f changes sign there, both roots are bracketed. Returns the number of roots added. */
static int split_extremum(const residual *r, double T, double x0, double f0, double x1,
                          double f1, double x2, double f2, double *roots, int max, double ftol)
{
    const double d01 = (f1 - f0) / (x1 - x0), d12 = (f2 - f1) / (x2 - x1);
    const double c = (d12 - d01) / (x2 - x0);           /* half the second derivative */
    const double sg = f1 > 0 ? 1.0 : -1.0;
    if (!(sg * c > 0))
        return 0;                                        /* bends away from zero */
    const double b = d01 - c * (x0 + x1);                /* f ~ c x^2 + b x + e */
    const double xv = -b / (2 * c);
    const double fv = f1 + (xv - x1) * (d01 + c * (xv - x0));
    /* the parabola comes close to zero, or the middle sample dips deep toward it (a
     * narrow bump at a kink that the parabola cannot follow) */
    const int dips = fabs(f1) < 0.05 * rmin(fabs(f0), fabs(f2));
    if (!(xv > x0 && xv < x2) || !(sg * fv < 0.25 * fabs(f1) || dips))
        return 0;
    const double g = 0.3819660112501051;
    double lo = x0, hi = x2;
    double xc = lo + g * (hi - lo), xd = hi - g * (hi - lo);
    double fc = sg * r->f(r->ctx, xc, T), fd = sg * r->f(r->ctx, xd, T);
    for (int it = 0; it < 24 && fc > 0 && fd > 0; it++) {    /* to 1e-5 of the span */
        if (fc < fd) {
            hi = xd, xd = xc, fd = fc;
            xc = lo + g * (hi - lo);
            fc = sg * r->f(r->ctx, xc, T);
        } else {
            lo = xc, xc = xd, fc = fd;
            xd = hi - g * (hi - lo);
            fd = sg * r->f(r->ctx, xd, T);
        }
    }
    if (isnan(fc) || isnan(fd) || (fc > 0 && fd > 0))
        return 0;
    double xm = fc <= fd ? xc : xd, fm = sg * (fc <= fd ? fc : fd);
    int n = 0;
    if (fm == 0) {
        roots[n++] = xm;
        return n;
    }
    double fr1, fr2;
    double r1 = roots_brent(r, T, x0, xm, f0, fm, &fr1);
    double r2 = roots_brent(r, T, xm, x2, fm, f2, &fr2);
    if (n < max && fabs(fr1) <= ftol)
        roots[n++] = r1;
    if (n < max && fabs(fr2) <= ftol)
        roots[n++] = r2;
    return n;
}

/* Each sample is compared with the one before (a sign change: a bracket) and, in
 * ROOTS_SPLIT, with the one before that (a same-signed turn: maybe a root pair). */
int roots_find(const residual *r, double T, const double *bp, int nbp, double *roots,
               int max, int samples, double per_unit, int mode)
{
    int n = 0;
    const double ftol = 1e-9 * r->scale;
    double x_prev = bp[0], f_prev = r->f(r->ctx, x_prev, T);
    double x_pp = NAN, f_pp = NAN;        /* the sample before x_prev */
    if (f_prev == 0 && n < max)
        roots[n++] = x_prev;
    for (int k = 0; k + 1 < nbp; k++) {
        double lo = bp[k], hi = bp[k + 1];
        int ns = samples;
        if (per_unit > 0 && (hi - lo) * per_unit > ns)
            ns = (int)rmin(ceil((hi - lo) * per_unit), 64);
        for (int i = 1; i <= ns; i++) {
            double x = i == ns ? hi : lo + (hi - lo) * i / ns;
            double fx = r->f(r->ctx, x, T);
            if (isnan(fx) != isnan(f_prev) && mode == ROOTS_APPROX) {
                /* a domain edge between the samples: a root may sit just inside it */
                double in = isnan(fx) ? x_prev : x, out = isnan(fx) ? x : x_prev;
                double f_in = isnan(fx) ? f_prev : fx;
                for (int it = 0; it < 16; it++) {
                    double mid = 0.5 * (in + out), fm = r->f(r->ctx, mid, T);
                    if (isnan(fm)) {
                        out = mid;
                    } else if ((fm > 0) != (f_in > 0)) {
                        if (n < max)
                            roots[n++] = in - f_in * (mid - in) / (fm - f_in);
                        break;
                    } else {
                        in = mid, f_in = fm;
                    }
                }
            } else if (isnan(fx) || isnan(f_prev)) {
                /* outside the family's domain: no bracket */
            } else if (fx == 0) {
                if (n < max)
                    roots[n++] = x;
            } else if (f_prev != 0 && (fx > 0) != (f_prev > 0) && mode == ROOTS_APPROX) {
                if (n < max)        /* one secant step: refined later where it matters */
                    roots[n++] = x_prev - f_prev * (x - x_prev) / (fx - f_prev);
            } else if (f_prev != 0 && (fx > 0) != (f_prev > 0)) {
                double fr, root = roots_brent(r, T, x_prev, x, f_prev, fx, &fr);
                /* a sign change across a jump (a family switching shape) is no root */
                if (n < max && fabs(fr) <= ftol)
                    roots[n++] = root;
            } else if (mode == ROOTS_SPLIT && !isnan(f_pp) && f_pp != 0 && f_prev != 0 &&
                       (f_pp > 0) == (fx > 0) && n < max) {
                n += split_extremum(r, T, x_pp, f_pp, x_prev, f_prev, x, fx, roots + n,
                                    max - n, ftol);
            }
            x_pp = x_prev, f_pp = f_prev;
            x_prev = x, f_prev = fx;
        }
    }
    return n;
}
