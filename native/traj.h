/* traj.h — time-optimal jerk-limited trajectories (per axis, then time-synchronised over
 * axes) and the traj block that samples the active one each tick.
 *
 * A profile is a short list of constant-jerk segments: [optional brake] + a velocity
 * change to a peak/cruise velocity + cruise + a velocity change to the target velocity.
 * Planning allocates nothing; a traj is a plain struct the caller owns.
 */
#ifndef EDGE_TRAJ_H
#define EDGE_TRAJ_H
#include "block.h"

/* cffi:begin */
#define TRAJ_MAX_SEGMENTS 12
#define TRAJ_OK 0
#define TRAJ_ERR_INPUT -1        /* non-finite value, non-positive limit, bad axis count */
#define TRAJ_ERR_TARGET -2       /* target velocity beyond the velocity limit */
#define TRAJ_ERR_NO_SOLUTION -3  /* no profile found (should not happen; a bug if it does) */

#define TRAJ_CMD_TARGET 1        /* args[0..n-1]: target positions (target velocity 0) */
#define TRAJ_CMD_TARGET_VEL 2    /* args[0..n-1]: positions, args[n..2n-1]: velocities */
#define TRAJ_CMD_STOP 3          /* jerk-limited stop of every axis from the current state */
#define TRAJ_CMD_ADOPT 4         /* take over the state in the image: args[0] = 0 the commanded
                                    (q_cmd, qd_cmd, qdd_cmd another block wrote last tick),
                                    1 the measured (q, qd); brakes (jerk-limited) if moving */
#define TRAJ_CMD_TARGET_SCALED 6 /* args[0..n-1]: positions, args[n]: speed scale s in (0, 1],
                                    args[n+1]: 0 = time scaling (velocity, acceleration and
                                    jerk limits times s, s^2, s^3: the same move 1/s times
                                    slower), 1 = velocity limit only (jogging); n <= 14 */
#define TRAJ_CMD_VELOCITY 7      /* args[0..n-1]: target velocities; reached jerk-limited
                                    and then held (velocity interface) */
#define TRAJ_CMD_FOLLOW 5        /* args[0] = 1: output the measured position every tick (drag
                                    teaching); 0: adopt the measured state and brake */

typedef struct traj_axis {
    int32_t n_seg;
    double t0[TRAJ_MAX_SEGMENTS];     /* segment start time, s */
    double jerk[TRAJ_MAX_SEGMENTS];
    double p[TRAJ_MAX_SEGMENTS + 1];  /* state at each segment start (last = end state) */
    double v[TRAJ_MAX_SEGMENTS + 1];
    double a[TRAJ_MAX_SEGMENTS + 1];
    double duration;                  /* this axis' profile end, s (<= traj duration) */
    double min_duration;              /* its own time-optimal duration, s */
} traj_axis;

typedef struct traj {
    int32_t n_axes;
    double duration;                  /* s; all axes end together */
    traj_axis axis[EDGE_MAX_AXES];
} traj;

/* Plans from (p0, v0, a0) to (pf, vf, 0) within |v| <= vmax, |a| <= amax, |j| <= jmax;
 * v0, a0, vf may be NULL (zeros). Returns TRAJ_OK or a TRAJ_ERR_* code. */
int traj_plan(traj *out, int n_axes, const double *p0, const double *v0, const double *a0,
              const double *pf, const double *vf, const double *vmax, const double *amax,
              const double *jmax);
/* The same with the inputs packed: x = p0, v0, a0, pf, vf, vmax, amax, jmax (n each). */
int traj_plan_packed(traj *out, int n_axes, const double *x);
/* Time-optimal jerk-limited stop (velocity and acceleration to 0) of each axis. */
int traj_plan_stop(traj *out, int n_axes, const double *p0, const double *v0,
                   const double *a0, const double *amax, const double *jmax);
/* Velocity interface: time-optimal jerk-limited change of each axis' velocity to vf
 * (acceleration to 0), then constant velocity; vf NULL is a stop. */
int traj_plan_velocity(traj *out, int n_axes, const double *p0, const double *v0,
                       const double *a0, const double *vf, const double *amax,
                       const double *jmax);
/* Samples at time t (s); before 0 the start state, after the end the end state moved on
 * at the end velocity. p, v, a receive n_axes values each. */
void traj_at(const traj *tr, double t, double *p, double *v, double *a);

/* n_t samples at times t[0..n_t-1]; p, v, a are row-major n_t x n_axes. */
void traj_sample(const traj *tr, const double *t, int n_t, double *p, double *v, double *a);

/* The block: samples the active trajectory into q_cmd/qd_cmd/qdd_cmd each tick; a
 * target command replans from the current commanded state; a latched stop brakes. */
edge_block *traj_block_alloc(int n_axes, const double *max_velocity,
                             const double *max_acceleration, const double *max_jerk);
/* cffi:end */

#endif
