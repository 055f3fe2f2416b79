/* arm_model.h — a serial arm from standard DH rows and its mass table, in C for the
 * cycle: forward kinematics, link points, geometric Jacobian and recursive Newton–Euler.
 * Every function works on arrays the caller allocated; none allocates, locks or blocks.
 * Conventions as edge/motion/kinematics.py: SI units, row-major 4x4 poses, frame i at
 * the distal end of link i, joint i about z_{i-1}; revolute joints only. */
#ifndef EDGE_ARM_MODEL_H
#define EDGE_ARM_MODEL_H

/* cffi:begin */
#define ARM_MAX_LINKS 16

typedef struct arm_model {
    int n;                              /* number of links (joints), 1..ARM_MAX_LINKS */
    double a[ARM_MAX_LINKS];            /* m */
    double d[ARM_MAX_LINKS];            /* m */
    double alpha[ARM_MAX_LINKS];        /* rad */
    double theta_offset[ARM_MAX_LINKS]; /* rad */
    double mass[ARM_MAX_LINKS];         /* kg */
    double com[ARM_MAX_LINKS][3];       /* m, in frame i */
    double inertia[ARM_MAX_LINKS][9];   /* kg*m^2 about the centre of mass, frame i axes */
    double base[16];                    /* frame 0 in the world, row-major 4x4 */
    double tool[16];                    /* tool point in frame n, row-major 4x4 */
    double gravity[3];                  /* m/s^2, world */
    double q_min[ARM_MAX_LINKS];        /* joint range, rad (+-HUGE_VAL: none) */
    double q_max[ARM_MAX_LINKS];
    double armature[ARM_MAX_LINKS];     /* kg*m^2, reflected rotor inertia, >= 0 */
} arm_model;

typedef struct arm_ik_options {
    int orientation;                    /* 1: match the whole pose, 0: position only */
    int max_iterations;
    double position_tolerance;          /* m */
    double orientation_tolerance;       /* rad */
    double damping;                     /* initial Levenberg-Marquardt damping */
} arm_ik_options;

typedef struct arm_ik_report {
    int iterations;
    double position_error;              /* m */
    double orientation_error;           /* rad */
} arm_ik_report;

/* 0 if the model is usable (n in range, finite numbers, masses >= 0), else -1. */
int arm_model_check(const arm_model *m);
/* World poses of frames 0..n and the tool: frames has (n + 2) * 16 doubles. */
void arm_fk_frames(const arm_model *m, const double *q, double *frames);
/* World pose of the tool (16 doubles). */
void arm_fk(const arm_model *m, const double *q, double *tool_pose);
/* Origins of frames 0..n and the tool point: points has (n + 2) * 3 doubles. */
void arm_link_points(const arm_model *m, const double *q, double *points);
/* Geometric Jacobian of the tool point, 6 x n row-major (vx vy vz wx wy wz, world). */
void arm_jacobian(const arm_model *m, const double *q, double *jac);
/* tau = M qdd + C qd + g (N*m); gravity NULL means the model's. */
void arm_rnea(const arm_model *m, const double *q, const double *qd, const double *qdd,
              const double *gravity, double *tau);
/* Gravity torques g(q). */
void arm_gravity(const arm_model *m, const double *q, double *tau);
/* M(q), n x n row-major. */
void arm_mass_matrix(const arm_model *m, const double *q, double *mass_matrix);
/* Terms of the generalised-momentum observer, whose dynamics are
 * dp/dt = tau + C(q,qd)^T qd - g(q) + tau_ext:  p = M(q) qd and
 * beta = g(q) - C(q,qd)^T qd (C^T qd = dM/dt qd - C qd, dM/dt qd by a central difference
 * along qd; relative error ~1e-9). Either output may be NULL. */
void arm_momentum(const arm_model *m, const double *q, const double *qd, double *p,
                  double *beta);
/* Inverse kinematics by damped least squares within the joint limits, from q0 (one
 * start, bounded work: at most max_iterations FK + Jacobian + 6x6 solves). q receives
 * the closest joint position found. 0: reached within tolerance, 1: not reached (a local
 * minimum or out of reach), -1: bad input. report may be NULL. */
int arm_ik(const arm_model *m, const double *target, const double *q0,
           const arm_ik_options *opt, double *q, arm_ik_report *report);
/* Rotation vector (axis * angle, rad) of a row-major 3x3 rotation matrix. */
void arm_rotation_log(const double *R, double *w);
/* Cholesky factor of a symmetric positive definite A (n x n) in place (lower half holds
 * L, A = L L^T); 0 on success, -1 if A is not positive definite. */
int arm_cholesky(int n, double *A);
/* Solves L L^T x = b with the factor from arm_cholesky; b becomes x. */
void arm_cholesky_solve(int n, const double *L, double *b);
/* Solves A x = b in place (A overwritten by its factor, b by x); 0 or -1 as above. */
int arm_solve_spd(int n, double *A, double *b);
/* cffi:end */

#endif
