/* traj_roots.h — the root finders of the trajectory planner: Brent's method on a bracket
 * and a sampled scan for every root of a scalar function between breakpoints. A leaf: it
 * knows nothing of profiles or axes, only a residual and the size of its values.
 * Not part of the Python interface (no cffi section).
 */
#ifndef EDGE_TRAJ_ROOTS_H
#define EDGE_TRAJ_ROOTS_H

/* f(ctx, x, T): a residual in x for a fixed second argument T (a duration, or a grid
 * coordinate); NAN outside the domain of the family it describes. */
typedef struct residual {
    double (*f)(const void *ctx, double x, double T);
    const void *ctx;
    double scale;    /* the size of f's values (distances): |f| <= 1e-13 scale ends Brent,
                        |f| <= 1e-9 scale at a sign change is a root, not a jump */
} residual;

#define ROOTS_EXACT 0           /* Brent on every bracket */
#define ROOTS_SPLIT 1           /* and look for root pairs between samples */
#define ROOTS_APPROX 2          /* one secant step per bracket (a grid for tracing) */

/* Brent's method on a bracket [a, b] with f(a), f(b) of opposite signs; *f_root receives
 * the residual at the returned root (callers check it: a jump is no root). */
double roots_brent(const residual *r, double T, double a, double b, double fa, double fb,
                   double *f_root);
/* Roots of f(., T) between the sorted breakpoints bp[0..nbp-1], `samples` per piece, or
 * ceil(per_unit x its length) up to 64 when that is more (per_unit > 0); mode is one of
 * ROOTS_*. Returns how many were written to roots (at most max). */
int roots_find(const residual *r, double T, const double *bp, int nbp, double *roots,
               int max, int samples, double per_unit, int mode);
/* Sorts v[0..n-1] ascending and drops repeats; returns how many distinct values remain
 * at the front (breakpoints are a handful of values). */
int roots_sort_unique(double *v, int n);

#endif
