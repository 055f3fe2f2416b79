/* arm_sim.h — a simulated arm behind the drive contract (drive.h): rigid-body joint
 * dynamics from an arm_model (M(q) qdd = tau - C(q,qd) qd - g(q) - friction + tau_ext),
 * viscous and Coulomb friction, torque limits, and the drive's own servo (inertia-scaled
 * PID with gravity, acceleration and nominal-friction feed-forward). One power stage for
 * all joints: the controlword of axis 0 drives its CiA 402 state machine, without delays;
 * a quick stop brakes at once (option code 0); outside operation enabled the brakes hold.
 * Modes: CSP (the servo tracks target position with the velocity, acceleration and
 * torque offsets), CSV (velocity servo), CST (target torque, plus g(q) while gravity
 * compensation is on). read reports q, qd and the applied motor torque; write integrates
 * one tick. */
#ifndef EDGE_ARM_SIM_H
#define EDGE_ARM_SIM_H
#include "arm_model.h"
#include "block.h"
#include "drive.h"

/* cffi:begin */
/* Simulator inputs (the world around the arm) and one drive parameter; the drive's
 * commands are the contract's (DRIVE_CMD_*). */
#define ARM_SIM_CMD_EXT_TORQUE 1   /* args[0..n-1]: external joint torque, N*m, held */
#define ARM_SIM_CMD_ESTOP 3        /* args[0]: 1 pressed, 0 released */
#define ARM_SIM_CMD_SET_STATE 4    /* args[0..n-1]: q (rad); velocities set to zero */
#define ARM_SIM_CMD_EXT_WRENCH 5   /* args[0..5]: force (N), moment (N*m) on the tool point,
                                      world axes, held; acts as J(q)^T w on the joints */
#define ARM_SIM_CMD_GRAVITY_COMP 6 /* args[0]: 1 CST adds g(q) (the drive's own gravity
                                      compensation, a vendor parameter), 0 it does not */

/* A tick's integration steps are bounded: each costs a full dynamics pass, so an unbounded
 * count would let one configuration stall the cycle. */
#define ARM_SIM_MAX_SUBSTEPS 64

typedef struct arm_sim_config {
    double viscous[ARM_MAX_LINKS];       /* N*m*s/rad */
    double coulomb[ARM_MAX_LINKS];       /* N*m */
    double torque_limit[ARM_MAX_LINKS];  /* N*m, > 0 (HUGE_VAL: none) */
    double initial_position[ARM_MAX_LINKS];
    double servo_bandwidth_hz;           /* PD natural frequency, per joint */
    double servo_damping;                /* PD damping ratio */
    double servo_integral_hz;            /* integral corner frequency, 0: no integral */
    int substeps;                        /* integration steps per tick, 1..ARM_SIM_MAX_SUBSTEPS */
    int mode;                            /* DRIVE_MODE_* asked for at start */
    int gravity_compensation;            /* 1: CST adds g(q) */
    int enabled;                         /* 1: starts in operation enabled and stays there
                                            (a rig without a controller); 0: starts in
                                            switch on disabled, the controller enables */
} arm_sim_config;

/* Both structs are copied. NULL on bad input (arm_model_check, limits, substeps). */
edge_block *arm_sim_block_alloc(const arm_model *model, const arm_sim_config *cfg);
/* cffi:end */

#endif
