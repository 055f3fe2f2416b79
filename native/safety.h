/* safety.h — the safety monitor block: runs after the trajectory/setpoint blocks and before
 * the drives write, every tick. It owns what reaches the drive: commanded motion is limited
 * (joint position/velocity/acceleration, TCP speed with a reduced mode) and only released if
 * the arm could still stop before every joint limit and safety wall from the state it would
 * reach; latched stops (categories 0/1/2, IEC 60204-1) are executed as controlled ramps;
 * measured values are checked against limits (position, velocity, torque, TCP speed, walls,
 * following error) and faults latch with code and tick in a history ring. */
#ifndef EDGE_SAFETY_H
#define EDGE_SAFETY_H
#include "arm_model.h"
#include "block.h"

/* cffi:begin */
#define SAFETY_MAX_WALLS 16
#define SAFETY_MAX_SPHERES 48
#define SAFETY_HISTORY 64

/* Commands (edge_command.kind for this block). */
#define SAFETY_CMD_REDUCED 1      /* args[0]: 1 reduced mode on, 0 off */
#define SAFETY_CMD_ENABLE 2       /* args[0]: 1 enabled, 0 disabled (config may change) */

/* Input bit (edge_image.inputs): reduced mode requested by an I/O block. */
#define SAFETY_IN_REDUCED 4

#define SAFETY_WALL_PLANE 0       /* allowed: dot(normal, x) >= offset */
#define SAFETY_WALL_KEEP_OUT 1    /* axis-aligned box the arm must stay out of */
#define SAFETY_WALL_KEEP_IN 2     /* axis-aligned box the arm must stay in */

#define SAFETY_STOP_ACCEL 0       /* controlled stops with an acceleration-limited ramp */
#define SAFETY_STOP_JERK 1        /* ... with a jerk-limited (S-curve) ramp */

/* Fault codes of the safety block: SAFETY_FAULT_* in faults.def (1..255). */

typedef struct safety_wall {
    int32_t kind;             /* SAFETY_WALL_* */
    double normal[3];         /* plane: unit normal pointing into the allowed side */
    double offset;            /* plane: m */
    double lo[3], hi[3];      /* boxes: corners, m, base frame */
} safety_wall;

typedef struct safety_sphere {
    int32_t frame;            /* 0..n: DH frame, n+1: tool frame */
    double center[3];         /* m, in that frame */
    double radius;            /* m */
} safety_sphere;

typedef struct safety_config {
    int32_t n;
    double q_min[EDGE_MAX_AXES], q_max[EDGE_MAX_AXES];   /* rad */
    double v_max[EDGE_MAX_AXES];                        /* rad/s */
    double a_max[EDGE_MAX_AXES];                        /* rad/s^2, commanded */
    double a_stop[EDGE_MAX_AXES];                       /* rad/s^2, controlled stops */
    double j_stop[EDGE_MAX_AXES];                       /* rad/s^3, jerk-limited stops */
    double tau_max[EDGE_MAX_AXES];                      /* N*m */
    double tcp_speed_max;          /* m/s, normal mode */
    double tcp_speed_reduced;      /* m/s, reduced mode */
    double reduced_transition_s;   /* grace before the reduced limit applies to measured */
    double position_tolerance;     /* rad, measured beyond limit before a fault */
    double velocity_tolerance;     /* fraction over v_max before a fault (0.1 = 10 %) */
    double acceleration_tolerance; /* fraction over a_stop before a fault; <= 0: off */
    double tcp_speed_tolerance;    /* m/s over the limit before a fault */
    double following_error_max;    /* rad; <= 0: off */
    double wall_margin;            /* m: commanded spheres keep this far from walls */
    int32_t stop_profile;          /* SAFETY_STOP_* */
    int32_t fault_category;        /* stop category for the block's own faults */
    int32_t following_category;    /* stop category for following errors */
    int32_t n_walls;
    safety_wall walls[SAFETY_MAX_WALLS];
    int32_t n_spheres;
    safety_sphere spheres[SAFETY_MAX_SPHERES];
    uint8_t checksum[32];          /* SHA-256 of the canonical configuration (from Python) */
} safety_config;

typedef struct safety_fault {
    uint32_t code;
    uint32_t category;        /* latched category at the time */
    int64_t tick;
    int32_t axis;             /* joint, wall or sphere index concerned; -1 if none */
    double value;             /* the measured value that tripped (units of the check) */
} safety_fault;

typedef struct safety_status {
    int64_t tick;
    uint32_t fault_code;      /* latched by this block (or seen latched), 0 = none */
    int64_t fault_tick;
    uint32_t stop_category;
    int32_t enabled;
    int32_t reduced;
    int32_t stopping;         /* a stop ramp is running */
    int32_t standstill;       /* a latched stop has reached standstill */
    int32_t limiting;         /* this tick's command was limited by the monitor */
    double speed_scale;       /* commanded velocity / requested, 1 = unlimited */
    double tcp_speed_cmd;     /* m/s */
    double tcp_speed;         /* m/s, measured */
    double min_wall_distance; /* m, measured spheres (HUGE_VAL without walls) */
    double min_wall_distance_cmd;
    int64_t n_faults;         /* faults recorded since allocation */
    int64_t resets_refused;   /* resets undone because a stop ramp was still braking */
    uint8_t checksum[32];
} safety_status;

/* The model and config are copied. NULL on bad input (see safety_config_check).
 * Every call below taking a block returns EDGE_ERR_KIND when it is not a safety block
 * (safety_link_observer also when `observer` is neither NULL nor an observer block). */
edge_block *safety_block_alloc(const arm_model *model, const safety_config *cfg);
/* 0 if cfg is usable with the model, else a negative number naming the first problem. */
int safety_config_check(const arm_model *model, const safety_config *cfg);
/* Queue a new configuration, applied at the next tick boundary if the block is still
 * disabled then: 0 queued, -1 enabled (refused), -2 cfg invalid, -3 one already queued.
 * One caller thread at a time. */
int safety_set_config(edge_block *b, const safety_config *cfg);
/* The last queued configuration: 0 none, 1 queued, 2 applied, -1 refused (enabled). */
int safety_config_state(const edge_block *b);
/* A configuration queued on `observer` is applied or refused with the next safety one. */
int safety_link_observer(edge_block *b, edge_block *observer);
int safety_get_status(const edge_block *b, safety_status *out);
/* Copies the most recent faults, oldest first; returns how many. */
int safety_fault_history(const edge_block *b, safety_fault *out, int max);
/* The same as it stood when `total` faults had been recorded (the count a state record
 * carries, safety_set_signals): the most recent of the first `total` faults, oldest
 * first, at most `max`, without those the ring has overwritten since. A record never
 * changes once written, so what this returns depends on `total` alone. */
int safety_fault_history_until(const edge_block *b, int64_t total, safety_fault *out,
                               int max);
/* Write the number of faults recorded so far (n_faults) to img->signals[first] every
 * tick, so tasks read the history as of their release tick. 0, or -1 if b is not a
 * safety block or first is not a slot. One call at setup, before the cycle runs. */
int safety_set_signals(edge_block *b, int32_t first);
/* Signed distance (m) of each sphere to the nearest wall at q (NULL walls -> HUGE_VAL);
 * out has n_spheres entries. For tests and tools. */
int safety_sphere_distances(const edge_block *b, const double *q, double *out);
/* cffi:end */

#endif
