/* setpoint.h — a rate-limited joint position setpoint block: moves each commanded
 * position toward its target within per-axis velocity and acceleration limits, and
 * brakes to standstill at the acceleration limit whenever a stop is latched. */
#ifndef EDGE_SETPOINT_H
#define EDGE_SETPOINT_H
#include "block.h"

/* cffi:begin */
#define SETPOINT_CMD_TARGET 1   /* args[0..n_axes-1]: target positions */

/* Limits arrays have n_axes entries (units/s, units/s^2), copied. NULL on bad input. */
edge_block *setpoint_block_alloc(int n_axes, const double *max_velocity,
                                 const double *max_acceleration);
/* cffi:end */

#endif
