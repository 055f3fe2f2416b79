/* cia402_sim.h — a simulated servo drive after the CiA 402 profile, one state machine per
 * axis, for testing what sits above the drive contract (drive.h) against the profile:
 * the power state transitions with their delays (boot, switch on, enable), targets
 * ignored unless operation enabled, illegal commands ignored, the quick stop ramp with
 * its option code (0x605A), a fault on a following error beyond the window (0x6065)
 * for longer than the timeout (0x6066), fault reaction on the quick stop ramp, fault
 * reset only from fault on the rising edge of controlword bit 7 and only once its cause
 * is gone. Each axis is a load of
 * fixed inertia behind a velocity- and torque-limited position loop. */
#ifndef EDGE_CIA402_SIM_H
#define EDGE_CIA402_SIM_H
#include "block.h"
#include "drive.h"

/* cffi:begin */
/* Simulator inputs (the world around the drive, not drive commands). */
#define CIA402_SIM_CMD_JAM 1      /* args[0]: axis, args[1]: 1 the load is blocked, 0 free */
#define CIA402_SIM_CMD_FAULT 2    /* args[0]: axis, args[1]: error code of a fault cause
                                     present from now on (fault reset refused while it
                                     is), 0: the cause is gone */
#define CIA402_SIM_CMD_STO 3      /* args[0]: axis, args[1]: 1 its safe torque off input is
                                     active (switch on disabled, held), 0 released */

typedef struct cia402_sim_config {
    int n_axes;
    double initial_position[EDGE_MAX_AXES];  /* rad */
    double max_velocity[EDGE_MAX_AXES];      /* rad/s, > 0 */
    double max_torque[EDGE_MAX_AXES];        /* N*m, > 0 (0x6072) */
    double inertia[EDGE_MAX_AXES];           /* kg*m^2, > 0 */
    double position_gain_hz;                 /* position loop: v = v_offset + 2 pi f e */
    double boot_s;                           /* not ready to switch on -> disabled (1) */
    double switch_on_s;                      /* ready to switch on -> switched on (3) */
    double enable_s;                         /* switched on -> operation enabled (4) */
    double following_error_window;           /* rad, > 0 (0x6065) */
    double following_error_timeout_s;        /* >= 0 (0x6066) */
    double quick_stop_deceleration;          /* rad/s^2, > 0 (0x6085) */
    int quick_stop_option;                   /* DRIVE_QS_* (0x605A) */
} cia402_sim_config;

/* cfg is copied. NULL on bad input. Starts in not ready to switch on, mode CSP. */
edge_block *cia402_sim_block_alloc(const cia402_sim_config *cfg);
/* cffi:end */

#endif
