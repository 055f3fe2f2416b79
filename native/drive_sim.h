/* drive_sim.h — a simulated position-controlled drive behind the drive contract (drive.h,
 * CSP only): each axis follows its target position through a first-order lag (time
 * constant tau_s), brakes hold it outside operation enabled (a category-0 stop makes the
 * drive block disable voltage), and an e-stop input can be pressed by command. */
#ifndef EDGE_DRIVE_SIM_H
#define EDGE_DRIVE_SIM_H
#include "block.h"
#include "drive.h"

/* cffi:begin */
#define DRIVE_SIM_CMD_ESTOP 1   /* args[0]: 1 pressed, 0 released */

/* initial_position has n_axes entries (copied). NULL on bad input. */
edge_block *drive_sim_block_alloc(int n_axes, double tau_s, const double *initial_position);
/* cffi:end */

#endif
