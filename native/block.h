/* block.h — the process image and the one interface every native block implements.
 *
 * Each tick the cycle calls, over its blocks in setup order: read (drives fill measured
 * inputs) -> command (queued commands due this tick) -> step -> write (drives take
 * setpoints). Any hook may be NULL. Blocks must not allocate, lock or block in a hook.
 */
#ifndef EDGE_BLOCK_H
#define EDGE_BLOCK_H
#include <stdint.h>

#include "codes.h"

/* cffi:begin */
#define EDGE_MAX_AXES 16
#define EDGE_CMD_ARGS 16
#define EDGE_SIGNALS 32
#define EDGE_NO_STOP 255
#define EDGE_TARGET_CYCLE 4294967295
#define EDGE_TICK_ASAP -1        /* command tick: apply at the next boundary, never late */

/* Digital input bits (drive or I/O blocks set them in read). */
#define EDGE_IN_ESTOP 1
#define EDGE_IN_ENABLE_OK 2
#define EDGE_IN_DRIVE_OFF 8      /* a drive block: some axis has no torque (its brake holds) */

/* Returned by every setup or query call given a block of another kind (block_kinds.def). */
#define EDGE_ERR_KIND -100

typedef struct edge_image {
    int64_t tick;
    double period_s;
    int32_t n_axes;
    uint32_t inputs;         /* EDGE_IN_* bits */
    uint32_t outputs;
    uint32_t mode;           /* controller mode, owned by the motion blocks */
    uint32_t fault_code;     /* first latched fault, 0 = none */
    uint32_t stop_category;  /* latched stop: 0, 1, 2 or EDGE_NO_STOP (lower is harsher) */
    uint32_t reset_request;  /* 1 during the tick an accepted reset cleared the latch */
    double q[EDGE_MAX_AXES];        /* measured position, rad or m */
    double qd[EDGE_MAX_AXES];       /* measured velocity */
    double tau[EDGE_MAX_AXES];      /* measured torque, N*m or N */
    double q_cmd[EDGE_MAX_AXES];    /* commanded position */
    double qd_cmd[EDGE_MAX_AXES];   /* commanded velocity */
    double qdd_cmd[EDGE_MAX_AXES];  /* commanded acceleration */
    double tau_cmd[EDGE_MAX_AXES];  /* commanded feed-forward torque */
    double signals[EDGE_SIGNALS];   /* slots shared by blocks, assigned at setup */
    /* CiA 402 words of the drive blocks (drive.h), per axis */
    uint16_t controlword[EDGE_MAX_AXES];   /* sent this tick (written in write) */
    uint16_t statusword[EDGE_MAX_AXES];    /* read this tick */
    uint16_t drive_error[EDGE_MAX_AXES];   /* error code 0x603F read this tick */
    int16_t drive_mode[EDGE_MAX_AXES];     /* modes of operation display 0x6061 */
} edge_image;

typedef struct edge_command {
    int64_t tick;            /* effective tick: applied before that tick's step */
    uint32_t target;         /* block index, or EDGE_TARGET_CYCLE */
    uint32_t kind;           /* meaning defined by the target */
    double args[EDGE_CMD_ARGS];
} edge_command;

typedef struct edge_block {
    const char *name;
    void *self;
    void (*read)(void *self, edge_image *img);
    int (*command)(void *self, edge_image *img, const edge_command *cmd); /* 0 = accepted */
    void (*step)(void *self, edge_image *img);
    void (*write)(void *self, edge_image *img);
    void (*release)(void *self);
    uint32_t kind;           /* EDGE_BLOCK_* of block_kinds.def; 0 (custom) from calloc */
    uint32_t signals_written;  /* bit i: a hook writes signals[i]; a custom block is taken
                                  to write all of them (the state record copies only these) */
} edge_block;

/* One record per tick, pushed to the state ring after write. */
typedef struct edge_state {
    int64_t tick;
    int64_t t_ns;            /* CLOCK_MONOTONIC at wake-up; tick * period in virtual time */
    int32_t wake_latency_ns;
    int32_t exec_ns;
    uint32_t mode;
    uint32_t fault_code;
    uint32_t stop_category;
    uint32_t inputs;
    uint32_t outputs;
    int32_t n_axes;
    int64_t commands_popped; /* commands taken from the ring so far, this tick's included:
                                the k-th push is applied at max(its tick, the first tick
                                whose count exceeds k) (the flight recorder's fact) */
    double q[EDGE_MAX_AXES];
    double qd[EDGE_MAX_AXES];
    double tau[EDGE_MAX_AXES];
    double q_cmd[EDGE_MAX_AXES];
    double qd_cmd[EDGE_MAX_AXES];
    double signals[EDGE_SIGNALS];
    uint16_t controlword[EDGE_MAX_AXES];
    uint16_t statusword[EDGE_MAX_AXES];
    uint16_t drive_error[EDGE_MAX_AXES];
    int16_t drive_mode[EDGE_MAX_AXES];
} edge_state;

/* Frees a block made by any *_block_alloc function (calls its release hook). */
void edge_block_free(edge_block *b);
/* The block's kind (EDGE_BLOCK_*; 0 for a NULL block). */
uint32_t edge_block_kind(const edge_block *b);
/* cffi:end */

/* For block implementations: a zeroed block with name and self set. */
edge_block *edge_block_new(const char *name, void *self);

/* Setup and query calls start with this: is b a block of that kind? */
static inline int edge_block_is(const edge_block *b, uint32_t kind)
{
    return b && b->kind == kind;
}

/* A block that writes image signal slot `slot` says so at setup, before cycle_add_block:
 * the state record publishes only declared slots (all of them for a custom block). */
static inline void edge_block_writes_signal(edge_block *b, int slot)
{
    _Static_assert(EDGE_SIGNALS <= 32, "signals_written is a 32-bit mask");
    if (slot >= 0 && slot < EDGE_SIGNALS)
        b->signals_written |= 1u << slot;
}

/* Latch a stop (the harsher category wins) and the first fault code; only a reset
 * through the cycle clears them. Any block may call it from any hook. */
static inline void edge_request_stop(edge_image *img, uint32_t category, uint32_t fault_code)
{
    if (category < img->stop_category)
        img->stop_category = category;
    if (fault_code && !img->fault_code)
        img->fault_code = fault_code;
}

#endif
