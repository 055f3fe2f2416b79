/* cycle.h — the fixed-period cycle engine: owns logical time (the tick), runs the blocks
 * in setup order, applies queued commands at tick boundaries and pushes one state record
 * per tick. Runs on its own real-time thread (cycle_start) or stepped by the caller in
 * virtual time (cycle_step): the same tick code either way. */
#ifndef EDGE_CYCLE_H
#define EDGE_CYCLE_H
#include "block.h"
#include "hist.h"

/* cffi:begin */
#define EDGE_MAX_BLOCKS 32
#define CYCLE_MAX_PERIOD_NS 10000000000   /* 10 s; tick * period_ns then overflows only
                                             after 292 years of (virtual) time */

/* Commands addressed to the cycle itself (target EDGE_TARGET_CYCLE). */
#define CYCLE_CMD_STOP 1      /* args[0] = category 0/1/2, args[1] = fault code (0 = none) */
#define CYCLE_CMD_RESET 2     /* clear latched stop and fault if no stop condition remains */
#define CYCLE_CMD_KICK 3      /* feed the watchdog */

/* Fault codes raised by the cycle: EDGE_FAULT_* in faults.def. */

typedef struct cycle cycle;

typedef struct cycle_config {
    int64_t period_ns;
    int64_t busy_tail_ns;     /* wake this long before each deadline and spin; 0 = sleep only */
    int32_t n_axes;
    int32_t cpu;              /* CPU to pin the thread to; -1 = leave it to the kernel */
    int32_t priority;         /* SCHED_FIFO priority; 0 = do not ask */
    int32_t lock_memory;      /* 1 = mlockall(MCL_CURRENT | MCL_FUTURE) on start */
    int32_t command_capacity; /* command ring slots */
    int32_t state_capacity;   /* state ring slots */
    int32_t watchdog_ticks;   /* controlled stop when not kicked for this many ticks; 0 = off */
    uint32_t estop_category;  /* stop category for the e-stop input */
} cycle_config;

/* What happened to each real-time request: 1 granted, 0 not asked, -errno refused. */
typedef struct cycle_stats {
    int64_t ticks;
    int64_t overruns;          /* ticks that ended after the next deadline */
    int64_t missed_periods;    /* deadlines skipped to recover from overruns */
    int64_t late_commands;     /* commands that arrived after their effective tick */
    int64_t rejected_commands; /* commands a block (or the cycle) refused */
    int64_t command_overflows; /* pushes refused because the ring or pending set was full */
    int64_t state_drops;       /* state records lost because nobody drained the ring */
    int64_t spin_ns;           /* time spent in the busy-wait tail */
    int64_t run_ns;            /* wall time since start */
    int32_t rt_fifo;
    int32_t rt_affinity;
    int32_t rt_mlock;
    int32_t running;
} cycle_stats;

cycle *cycle_alloc(const cycle_config *cfg);
void cycle_free(cycle *c);
int cycle_add_block(cycle *c, edge_block *b);   /* block index, or -1 (full or running) */
int cycle_start(cycle *c);                      /* 0 or an errno value */
void cycle_stop(cycle *c);                      /* joins the thread; safe to call twice */
int cycle_step(cycle *c, int64_t n);            /* virtual time; -1 while the thread runs */
int cycle_push_command(cycle *c, const edge_command *cmd);   /* 1 queued, 0 ring full */
int cycle_pop_states(cycle *c, edge_state *out, int max);    /* records copied */
/* Up to `max` records, each copied into slots[tick % n_slots]; span = {first tick, last
 * tick + 1, next tick to run} (the last read before popping: every tick before it has
 * pushed its record or dropped it). Returns how many records were popped. */
int cycle_pop_states_by_tick(cycle *c, edge_state *slots, int64_t n_slots, int max,
                             int64_t *span);
int64_t cycle_current_tick(const cycle *c);     /* next tick to run */
/* Ask for one write to cycle_wake_fd() once the record of `tick` is in the state ring.
 * Returns 0 when that tick already ran (nothing will be written for it), else 1. */
int cycle_wake_at(cycle *c, int64_t tick);
int cycle_wake_fd(const cycle *c);              /* an eventfd, or -1 */
void cycle_get_stats(const cycle *c, cycle_stats *out);
void cycle_reset_stats(cycle *c);               /* also clears both histograms */
const hist *cycle_latency_hist(const cycle *c); /* wake-up latency, ns */
const hist *cycle_exec_hist(const cycle *c);    /* tick execution time, ns */
/* cffi:end */

#endif
