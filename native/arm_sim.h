/* arm_sim.h — a simulated arm behind the drive interface: rigid-body joint dynamics from
 * an arm_model (M(q) qdd = tau - C(q,qd) qd - g(q) - friction + tau_ext), viscous and
 * Coulomb friction, torque limits, and the drive's own servo (inertia-scaled PID with
 * gravity, acceleration and nominal-friction feed-forward) tracking q_cmd/qd_cmd/qdd_cmd. The read hook
 * reports q, qd and the applied motor torque; the write hook integrates one tick. */
#ifndef EDGE_ARM_SIM_H
#define EDGE_ARM_SIM_H
#include "arm_model.h"
#include "block.h"

/* cffi:begin */
#define ARM_SIM_CMD_EXT_TORQUE 1   /* args[0..n-1]: external joint torque, N*m, held */
#define ARM_SIM_CMD_MODE 2         /* args[0]: ARM_SIM_MODE_* */
#define ARM_SIM_CMD_ESTOP 3        /* args[0]: 1 pressed, 0 released */
#define ARM_SIM_CMD_SET_STATE 4    /* args[0..n-1]: q (rad); velocities set to zero */
#define ARM_SIM_CMD_EXT_WRENCH 5   /* args[0..5]: force (N), moment (N*m) on the tool point,
                                      world axes, held; acts as J(q)^T w on the joints */

#define ARM_SIM_MODE_POSITION 0    /* servo: PID + g(q) + M(q) qdd_cmd + friction + tau_cmd */
#define ARM_SIM_MODE_TORQUE 1      /* tau_cmd + g(q): gravity-compensated torque */
#define ARM_SIM_MODE_TORQUE_RAW 2  /* tau_cmd alone */

typedef struct arm_sim_config {
    double viscous[ARM_MAX_LINKS];       /* N*m*s/rad */
    double coulomb[ARM_MAX_LINKS];       /* N*m */
    double torque_limit[ARM_MAX_LINKS];  /* N*m, > 0 (HUGE_VAL: none) */
    double initial_position[ARM_MAX_LINKS];
    double servo_bandwidth_hz;           /* PD natural frequency, per joint */
    double servo_damping;                /* PD damping ratio */
    double servo_integral_hz;            /* integral corner frequency, 0: no integral */
    int substeps;                        /* integration steps per tick, >= 1 */
    int mode;                            /* ARM_SIM_MODE_* at start */
} arm_sim_config;

/* Both structs are copied. NULL on bad input (arm_model_check, limits, substeps). */
edge_block *arm_sim_block_alloc(const arm_model *model, const arm_sim_config *cfg);
/* cffi:end */

#endif
