/* arm_model.c — see arm_model.h. Mirrors edge/motion/kinematics.py and dynamics.py
 * step for step so the two can be tested against each other. */
#include <math.h>
#include <string.h>

#include "arm_model.h"

typedef struct { double r[9]; double p[3]; } rt3;   /* rotation (row-major) + translation */

static void dh(const arm_model *m, int i, double q, rt3 *t)
{
    double th = q + m->theta_offset[i];
    double ct = cos(th), st = sin(th), ca = cos(m->alpha[i]), sa = sin(m->alpha[i]);
    t->r[0] = ct; t->r[1] = -st * ca; t->r[2] = st * sa;
    t->r[3] = st; t->r[4] = ct * ca;  t->r[5] = -ct * sa;
    t->r[6] = 0;  t->r[7] = sa;       t->r[8] = ca;
    t->p[0] = m->a[i] * ct; t->p[1] = m->a[i] * st; t->p[2] = m->d[i];
}

static void mat4_mul(const double *A, const double *B, double *C)
{
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            double s = 0;
            for (int k = 0; k < 4; k++)
                s += A[4 * r + k] * B[4 * k + c];
            C[4 * r + c] = s;
        }
}

static void rt_to_mat4(const rt3 *t, double *T)
{
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++)
            T[4 * r + c] = t->r[3 * r + c];
        T[4 * r + 3] = t->p[r];
    }
    T[12] = T[13] = T[14] = 0;
    T[15] = 1;
}

int arm_model_check(const arm_model *m)
{
    if (!m || m->n < 1 || m->n > ARM_MAX_LINKS)
        return -1;
    for (int i = 0; i < m->n; i++) {
        double v[] = {m->a[i], m->d[i], m->alpha[i], m->theta_offset[i], m->mass[i]};
        for (unsigned k = 0; k < sizeof v / sizeof v[0]; k++)
            if (!isfinite(v[k]))
                return -1;
        if (m->mass[i] < 0 || !(m->armature[i] >= 0) || !isfinite(m->armature[i]))
            return -1;
        for (int k = 0; k < 3; k++)
            if (!isfinite(m->com[i][k]))
                return -1;
        for (int k = 0; k < 9; k++)
            if (!isfinite(m->inertia[i][k]))
                return -1;
    }
    for (int k = 0; k < 16; k++)
        if (!isfinite(m->base[k]) || !isfinite(m->tool[k]))
            return -1;
    for (int k = 0; k < 3; k++)
        if (!isfinite(m->gravity[k]))
            return -1;
    for (int i = 0; i < m->n; i++)
        if (!(m->q_min[i] <= m->q_max[i]))       /* also rejects NaN */
            return -1;
    return 0;
}

void arm_fk_frames(const arm_model *m, const double *q, double *frames)
{
    double T[16];
    rt3 t;
    memcpy(frames, m->base, sizeof T);
    for (int i = 0; i < m->n; i++) {
        dh(m, i, q[i], &t);
        rt_to_mat4(&t, T);
        mat4_mul(frames + 16 * i, T, frames + 16 * (i + 1));
    }
    mat4_mul(frames + 16 * m->n, m->tool, frames + 16 * (m->n + 1));
}

void arm_fk(const arm_model *m, const double *q, double *tool_pose)
{
    double frames[(ARM_MAX_LINKS + 2) * 16];
    arm_fk_frames(m, q, frames);
    memcpy(tool_pose, frames + 16 * (m->n + 1), 16 * sizeof(double));
}

void arm_link_points(const arm_model *m, const double *q, double *points)
{
    double frames[(ARM_MAX_LINKS + 2) * 16];
    arm_fk_frames(m, q, frames);
    for (int i = 0; i < m->n + 2; i++)
        for (int k = 0; k < 3; k++)
            points[3 * i + k] = frames[16 * i + 4 * k + 3];
}

/* Geometric Jacobian of the tool point from the frames of arm_fk_frames: joint i turns
 * about z of frame i-1 (column i: z x (p_tool - p_i), z). */
static void jacobian_from_frames(int n, const double *frames, double *jac)
{
    const double *tool = frames + 16 * (n + 1);
    for (int i = 0; i < n; i++) {
        const double *F = frames + 16 * i;
        double z[3] = {F[2], F[6], F[10]};
        double r[3] = {tool[3] - F[3], tool[7] - F[7], tool[11] - F[11]};
        jac[0 * n + i] = z[1] * r[2] - z[2] * r[1];
        jac[1 * n + i] = z[2] * r[0] - z[0] * r[2];
        jac[2 * n + i] = z[0] * r[1] - z[1] * r[0];
        jac[3 * n + i] = z[0];
        jac[4 * n + i] = z[1];
        jac[5 * n + i] = z[2];
    }
}

void arm_jacobian(const arm_model *m, const double *q, double *jac)
{
    double frames[(ARM_MAX_LINKS + 2) * 16];
    arm_fk_frames(m, q, frames);
    jacobian_from_frames(m->n, frames, jac);
}

static void cross(const double *a, const double *b, double *c)
{
    double x = a[1] * b[2] - a[2] * b[1];
    double y = a[2] * b[0] - a[0] * b[2];
    double z = a[0] * b[1] - a[1] * b[0];
    c[0] = x; c[1] = y; c[2] = z;
}

static void mul_rt(const double *R, const double *v, double *out)  /* R^T v */
{
    double x = R[0] * v[0] + R[3] * v[1] + R[6] * v[2];
    double y = R[1] * v[0] + R[4] * v[1] + R[7] * v[2];
    double z = R[2] * v[0] + R[5] * v[1] + R[8] * v[2];
    out[0] = x; out[1] = y; out[2] = z;
}

static void mul_r(const double *R, const double *v, double *out)   /* R v */
{
    double x = R[0] * v[0] + R[1] * v[1] + R[2] * v[2];
    double y = R[3] * v[0] + R[4] * v[1] + R[5] * v[2];
    double z = R[6] * v[0] + R[7] * v[1] + R[8] * v[2];
    out[0] = x; out[1] = y; out[2] = z;
}

void arm_rnea(const arm_model *m, const double *q, const double *qd, const double *qdd,
              const double *gravity, double *tau)
{
    const int n = m->n;
    const double *g = gravity ? gravity : m->gravity;
    rt3 t[ARM_MAX_LINKS];
    double p[ARM_MAX_LINKS][3], F[ARM_MAX_LINKS][3], N[ARM_MAX_LINKS][3];
    double w[3] = {0, 0, 0}, wd[3] = {0, 0, 0}, acc[3], tmp[3], tmp2[3];
    double base_r[9];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            base_r[3 * r + c] = m->base[4 * r + c];
    double minus_g[3] = {-g[0], -g[1], -g[2]};
    mul_rt(base_r, minus_g, acc);                     /* the base accelerates up */

    for (int i = 0; i < n; i++) {
        dh(m, i, q[i], &t[i]);
        const double *R = t[i].r;
        mul_rt(R, t[i].p, p[i]);
        /* wd_i = R^T (wd + z qdd + w x z qd);  w_i = R^T (w + z qd) */
        double wz[3] = {w[1] * qd[i], -w[0] * qd[i], 0};      /* w x (0, 0, qd) */
        double v[3] = {wd[0] + wz[0], wd[1] + wz[1], wd[2] + qdd[i] + wz[2]};
        mul_rt(R, v, wd);
        double u[3] = {w[0], w[1], w[2] + qd[i]};
        mul_rt(R, u, w);
        /* acc_i = R^T acc + wd x p + w x (w x p) */
        mul_rt(R, acc, acc);
        cross(wd, p[i], tmp);
        cross(w, p[i], tmp2);
        cross(w, tmp2, tmp2);
        for (int k = 0; k < 3; k++)
            acc[k] += tmp[k] + tmp2[k];
        /* centre of mass */
        const double *c = m->com[i];
        double ac[3];
        cross(wd, c, tmp);
        cross(w, c, tmp2);
        cross(w, tmp2, tmp2);
        for (int k = 0; k < 3; k++) {
            ac[k] = acc[k] + tmp[k] + tmp2[k];
            F[i][k] = m->mass[i] * ac[k];
        }
        const double *I = m->inertia[i];
        double Iw[3], Iwd[3];
        mul_r(I, w, Iw);
        mul_r(I, wd, Iwd);
        cross(w, Iw, tmp);
        for (int k = 0; k < 3; k++)
            N[i][k] = Iwd[k] + tmp[k];
    }

    double f[3] = {0, 0, 0}, mom[3] = {0, 0, 0};
    for (int i = n - 1; i >= 0; i--) {
        double f_up[3] = {0, 0, 0}, m_up[3] = {0, 0, 0};
        if (i + 1 < n) {
            mul_r(t[i + 1].r, f, f_up);
            mul_r(t[i + 1].r, mom, m_up);
        }
        double pc[3] = {p[i][0] + m->com[i][0], p[i][1] + m->com[i][1],
                        p[i][2] + m->com[i][2]};
        cross(p[i], f_up, tmp);
        cross(pc, F[i], tmp2);
        for (int k = 0; k < 3; k++) {
            mom[k] = m_up[k] + tmp[k] + tmp2[k] + N[i][k];
            f[k] = f_up[k] + F[i][k];
        }
        const double *R = t[i].r;                    /* joint axis z_{i-1} in frame i */
        tau[i] = mom[0] * R[6] + mom[1] * R[7] + mom[2] * R[8] + m->armature[i] * qdd[i];
    }
}

void arm_gravity(const arm_model *m, const double *q, double *tau)
{
    double zero[ARM_MAX_LINKS] = {0};
    arm_rnea(m, q, zero, zero, NULL, tau);
}

/* M(q) by the composite-rigid-body algorithm, in world coordinates: M_ji (j <= i) is the
 * torque at joint j needed to give the bodies beyond joint i (links i..n-1, rigidly
 * joined) a unit acceleration of joint i from rest. A different algorithm from the
 * column-by-column RNEA of edge/motion/dynamics.py, so the two check each other. */
void arm_mass_matrix(const arm_model *m, const double *q, double *mass_matrix)
{
    const int n = m->n;
    double frames[(ARM_MAX_LINKS + 2) * 16];
    arm_fk_frames(m, q, frames);
    double cm = 0, S[3] = {0, 0, 0}, J[9] = {0};    /* mass, first and second moments */
    for (int i = n - 1; i >= 0; i--) {
        const double *F = frames + 16 * (i + 1);    /* link i's own frame */
        double R[9], c[3], RI[9], Iw[9];
        for (int r = 0; r < 3; r++) {
            for (int k = 0; k < 3; k++)
                R[3 * r + k] = F[4 * r + k];
            c[r] = F[4 * r + 3];
            for (int k = 0; k < 3; k++)
                c[r] += F[4 * r + k] * m->com[i][k];
        }
        for (int r = 0; r < 3; r++)                 /* Iw = R I R^T */
            for (int k = 0; k < 3; k++) {
                double s = 0;
                for (int l = 0; l < 3; l++)
                    s += R[3 * r + l] * m->inertia[i][3 * l + k];
                RI[3 * r + k] = s;
            }
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 3; k++) {
                double s = 0;
                for (int l = 0; l < 3; l++)
                    s += RI[3 * r + l] * R[3 * k + l];
                Iw[3 * r + k] = s;
            }
        const double mi = m->mass[i], cc = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
        cm += mi;
        for (int r = 0; r < 3; r++) {
            S[r] += mi * c[r];
            for (int k = 0; k < 3; k++)
                J[3 * r + k] += Iw[3 * r + k] + mi * ((r == k ? cc : 0) - c[r] * c[k]);
        }
        /* The composite beyond joint i: inertia about its centre of mass. */
        double cbar[3] = {0, 0, 0}, Ic[9];
        if (cm > 0)
            for (int r = 0; r < 3; r++)
                cbar[r] = S[r] / cm;
        double bb = cbar[0] * cbar[0] + cbar[1] * cbar[1] + cbar[2] * cbar[2];
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 3; k++)
                Ic[3 * r + k] = J[3 * r + k] - cm * ((r == k ? bb : 0) - cbar[r] * cbar[k]);
        /* Unit acceleration of joint i: axis z_i through o_i (frame i, 0-based = i). */
        const double *Fi = frames + 16 * i;
        double z[3] = {Fi[2], Fi[6], Fi[10]}, o[3] = {Fi[3], Fi[7], Fi[11]};
        double r_io[3] = {cbar[0] - o[0], cbar[1] - o[1], cbar[2] - o[2]}, a[3], f[3], nc[3];
        cross(z, r_io, a);                           /* acceleration of the centre */
        for (int k = 0; k < 3; k++)
            f[k] = cm * a[k];
        mul_r(Ic, z, nc);                            /* moment about the centre */
        for (int j = 0; j <= i; j++) {
            const double *Fj = frames + 16 * j;
            double zj[3] = {Fj[2], Fj[6], Fj[10]};
            double r_jo[3] = {cbar[0] - Fj[3], cbar[1] - Fj[7], cbar[2] - Fj[11]}, mo[3];
            cross(r_jo, f, mo);
            double v = zj[0] * (nc[0] + mo[0]) + zj[1] * (nc[1] + mo[1]) +
                       zj[2] * (nc[2] + mo[2]);
            mass_matrix[j * n + i] = mass_matrix[i * n + j] = v;
        }
        mass_matrix[i * n + i] += m->armature[i];
    }
}

void arm_momentum(const arm_model *m, const double *q, const double *qd, double *p,
                  double *beta)
{
    const int n = m->n;
    const double no_gravity[3] = {0, 0, 0};
    double zero[ARM_MAX_LINKS] = {0};
    if (p)
        arm_rnea(m, q, zero, qd, no_gravity, p);            /* M qd */
    if (!beta)
        return;
    double norm = 0;
    for (int i = 0; i < n; i++)
        norm = fmax(norm, fabs(qd[i]));
    arm_gravity(m, q, beta);
    if (norm == 0)
        return;
    double eps = 1e-6 / norm;                               /* a 1 urad step along qd */
    double qp[ARM_MAX_LINKS], qm[ARM_MAX_LINKS], mp[ARM_MAX_LINKS], mm[ARM_MAX_LINKS];
    double cqd[ARM_MAX_LINKS];
    for (int i = 0; i < n; i++) {
        qp[i] = q[i] + eps * qd[i];
        qm[i] = q[i] - eps * qd[i];
    }
    arm_rnea(m, qp, zero, qd, no_gravity, mp);              /* M(q + eps qd) qd */
    arm_rnea(m, qm, zero, qd, no_gravity, mm);
    arm_rnea(m, q, qd, zero, no_gravity, cqd);              /* C qd */
    for (int i = 0; i < n; i++)
        beta[i] -= (mp[i] - mm[i]) / (2 * eps) - cqd[i];
}

int arm_cholesky(int n, double *A)
{
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int k = 0; k < j; k++)
            s -= A[j * n + k] * A[j * n + k];
        if (!(s > 0))
            return -1;
        double l = sqrt(s);
        A[j * n + j] = l;
        for (int i = j + 1; i < n; i++) {
            double v = A[i * n + j];
            for (int k = 0; k < j; k++)
                v -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = v / l;
        }
    }
    return 0;
}

void arm_cholesky_solve(int n, const double *L, double *b)
{
    for (int i = 0; i < n; i++) {                    /* L y = b */
        double v = b[i];
        for (int k = 0; k < i; k++)
            v -= L[i * n + k] * b[k];
        b[i] = v / L[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {               /* L^T x = y */
        double v = b[i];
        for (int k = i + 1; k < n; k++)
            v -= L[k * n + i] * b[k];
        b[i] = v / L[i * n + i];
    }
}

int arm_solve_spd(int n, double *A, double *b)
{
    if (arm_cholesky(n, A))
        return -1;
    arm_cholesky_solve(n, A, b);
    return 0;
}

void arm_rotation_log(const double *R, double *w)
{
    double v[3] = {R[7] - R[5], R[2] - R[6], R[3] - R[1]};          /* 2 sin(a) n */
    double s = 0.5 * sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    double c = 0.5 * (R[0] + R[4] + R[8] - 1.0);
    double angle = atan2(s, c);
    if (angle < 1e-6) {
        for (int k = 0; k < 3; k++)
            w[k] = 0.5 * v[k];
        return;
    }
    if (angle < M_PI - 1e-3) {
        double f = angle / (2.0 * s);
        for (int k = 0; k < 3; k++)
            w[k] = f * v[k];
        return;
    }
    /* Near pi: (R + R^T) / 2 = cos(a) I + (1 - cos(a)) n n^T, exactly. */
    double N[9];
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++)
            N[3 * r + k] = (0.5 * (R[3 * r + k] + R[3 * k + r]) - (r == k ? c : 0)) / (1.0 - c);
    int col = 0;
    if (N[4] > N[0]) col = 1;
    if (N[8] > N[4 * col]) col = 2;
    double d = sqrt(fmax(N[4 * col], 1e-300));
    double n[3] = {N[col] / d, N[3 + col] / d, N[6 + col] / d};
    if (n[0] * v[0] + n[1] * v[1] + n[2] * v[2] < 0)
        for (int k = 0; k < 3; k++)
            n[k] = -n[k];
    double norm = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
    for (int k = 0; k < 3; k++)
        w[k] = angle * n[k] / norm;
}

/* Pose error (position, rotation vector of R_target R^T) of frames' tool; returns cost. */
static double ik_error(const double *target, const double *T, int rows, double *e)
{
    for (int k = 0; k < 3; k++)
        e[k] = target[4 * k + 3] - T[4 * k + 3];
    if (rows == 6) {
        double Rd[9];                           /* R_target R^T */
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int k = 0; k < 3; k++)
                    s += target[4 * r + k] * T[4 * c + k];
                Rd[3 * r + c] = s;
            }
        arm_rotation_log(Rd, e + 3);
    }
    double cost = 0;
    for (int k = 0; k < rows; k++)
        cost += e[k] * e[k];
    return cost;
}

/* x shifted by one turn into [lo, hi] where that lands inside (the same pose for a
 * revolute joint); NAN where it does not. */
static double wrap_into(double x, double lo, double hi)
{
    double s = x > hi ? x - 2 * M_PI : x < lo ? x + 2 * M_PI : x;
    return s >= lo && s <= hi ? s : NAN;
}

/* Position (m) and orientation (rad) parts of an error vector of `rows` entries. */
static void ik_error_norms(const double *e, int rows, double *pe, double *re)
{
    *pe = sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
    *re = rows == 6 ? sqrt(e[3] * e[3] + e[4] * e[4] + e[5] * e[5]) : 0;
}

/* The damped least-squares step dq = Jf^T (Jf Jf^T + lam^2 I)^-1 e, Jf being J with the
 * columns of frozen joints zeroed. A joint at a limit that the step pushes further out
 * (with no turn round inside its range) is frozen and the step solved again, once. */
static void ik_dls_step(const arm_model *m, const double *J, const double *e,
                        const double *q, int rows, double lam, double *dq)
{
    const int n = m->n;
    double A[36], x[6];
    int free_[ARM_MAX_LINKS];
    for (int i = 0; i < n; i++)
        free_[i] = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < rows; c++) {
                double s = r == c ? lam * lam : 0;
                for (int k = 0; k < n; k++)
                    if (free_[k])
                        s += J[r * n + k] * J[c * n + k];
                A[r * rows + c] = s;
            }
        for (int r = 0; r < rows; r++)
            x[r] = e[r];
        if (arm_solve_spd(rows, A, x))   /* numerically singular: a step that fails */
            for (int r = 0; r < rows; r++)
                x[r] = 0;
        int newly_blocked = 0;
        for (int k = 0; k < n; k++) {
            double s = 0;
            if (free_[k])
                for (int r = 0; r < rows; r++)
                    s += J[r * n + k] * x[r];
            dq[k] = s;
            int blocked = ((q[k] <= m->q_min[k] && s < 0) || (q[k] >= m->q_max[k] && s > 0))
                          && isnan(wrap_into(q[k] + s, m->q_min[k], m->q_max[k]));
            if (blocked && free_[k]) {
                free_[k] = 0;
                newly_blocked = 1;
            }
        }
        if (!newly_blocked)
            break;
    }
}

int arm_ik(const arm_model *m, const double *target, const double *q0,
           const arm_ik_options *opt, double *q, arm_ik_report *report)
{
    if (!m || !target || !q0 || !opt || !q || m->n < 1 || m->n > ARM_MAX_LINKS ||
        opt->max_iterations < 0 || !(opt->damping > 0))
        return -1;
    const int n = m->n, rows = opt->orientation ? 6 : 3;
    double frames[(ARM_MAX_LINKS + 2) * 16], frames_new[(ARM_MAX_LINKS + 2) * 16];
    double J[6 * ARM_MAX_LINKS], e[6], e_new[6], q_new[ARM_MAX_LINKS], dq[ARM_MAX_LINKS];
    for (int i = 0; i < n; i++) {
        if (!isfinite(q0[i]))
            return -1;
        q[i] = fmax(m->q_min[i], fmin(m->q_max[i], q0[i]));
    }
    arm_fk_frames(m, q, frames);
    double cost = ik_error(target, frames + 16 * (n + 1), rows, e);
    double lam = opt->damping, pe, re;
    int it = 0;
    for (it = 1; it <= opt->max_iterations; it++) {
        ik_error_norms(e, rows, &pe, &re);
        if (pe <= opt->position_tolerance && re <= opt->orientation_tolerance)
            break;
        jacobian_from_frames(n, frames, J);
        ik_dls_step(m, J, e, q, rows, lam, dq);
        for (int k = 0; k < n; k++) {   /* past a limit: one turn round if the range allows */
            double w = wrap_into(q[k] + dq[k], m->q_min[k], m->q_max[k]);
            q_new[k] = isnan(w) ? fmax(m->q_min[k], fmin(m->q_max[k], q[k] + dq[k])) : w;
        }
        arm_fk_frames(m, q_new, frames_new);
        double cost_new = ik_error(target, frames_new + 16 * (n + 1), rows, e_new);
        if (cost_new < cost) {
            memcpy(q, q_new, sizeof(double) * n);
            memcpy(frames, frames_new, sizeof(double) * 16 * (n + 2));
            memcpy(e, e_new, sizeof e);
            cost = cost_new;
            lam = fmax(lam / 3.0, 1e-6);   /* never quite Gauss-Newton: J may be singular */
        } else {
            lam *= 4.0;
            if (lam > 1e3)
                break;
        }
    }
    if (it > opt->max_iterations)
        it = opt->max_iterations;
    ik_error_norms(e, rows, &pe, &re);
    if (report) {
        report->iterations = it;
        report->position_error = pe;
        report->orientation_error = re;
    }
    return pe <= opt->position_tolerance && re <= opt->orientation_tolerance ? 0 : 1;
}
