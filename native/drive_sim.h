/* drive_sim.h — a simulated position-controlled drive: each axis follows its commanded
 * position through a first-order lag (time constant tau_s), brakes hold it while a
 * category-0 stop is latched, and an e-stop input can be pressed by command. */
#ifndef EDGE_DRIVE_SIM_H
#define EDGE_DRIVE_SIM_H
#include "block.h"

/* cffi:begin */
#define DRIVE_SIM_CMD_ESTOP 1   /* args[0]: 1 pressed, 0 released */

/* initial_position has n_axes entries (copied). NULL on bad input. */
edge_block *drive_sim_block_alloc(int n_axes, double tau_s, const double *initial_position);
/* cffi:end */

#endif
