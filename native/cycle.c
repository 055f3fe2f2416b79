/* cycle.c — the cycle thread and the tick. No allocation, Python or syscalls other than
 * the clock happen after cycle_start returns, except one: a non-blocking eventfd write
 * when the executor asked to be woken at a tick (cycle_wake_at). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cycle.h"
#include "ring.h"

#define PENDING_MAX 1024

struct cycle {
    cycle_config cfg;
    edge_block *blocks[EDGE_MAX_BLOCKS];
    int n_blocks;
    ring *commands;
    ring *states;
    edge_command pending[PENDING_MAX];   /* drained from the ring, not yet due */
    int n_pending;
    int64_t popped;                       /* commands taken from the ring, ever */
    edge_image img;
    uint32_t signals_written;             /* union of the blocks' signals_written */
    int64_t last_kick_tick;
    _Atomic int64_t next_tick;
    _Atomic int64_t wake_tick;            /* notify wake_fd once tick >= this has run */
    int wake_fd;                          /* eventfd, or -1 */
    hist *latency;
    hist *exec;
    cycle_stats stats;                    /* written by the cycle, copied by readers */
    _Atomic int running;
    _Atomic int started;
    pthread_t thread;
    int64_t start_ns;
};

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Single writer: relaxed load + store so readers never see a torn counter. */
#define STAT_ADD(c, field, by) \
    __atomic_store_n(&(c)->stats.field, __atomic_load_n(&(c)->stats.field, __ATOMIC_RELAXED) + (by), \
                     __ATOMIC_RELAXED)

cycle *cycle_alloc(const cycle_config *cfg)
{
    /* the bound keeps tick * period_ns (virtual time, deadlines) from overflowing */
    if (cfg->period_ns <= 0 || cfg->period_ns > CYCLE_MAX_PERIOD_NS || cfg->n_axes < 0 ||
        cfg->n_axes > EDGE_MAX_AXES)
        return NULL;
    cycle *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cfg = *cfg;
    c->wake_tick = INT64_MAX;
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->cfg.command_capacity <= 0)
        c->cfg.command_capacity = 1024;
    if (c->cfg.state_capacity <= 0)
        c->cfg.state_capacity = 8192;
    if (c->cfg.busy_tail_ns < 0)
        c->cfg.busy_tail_ns = 0;
    if (c->cfg.busy_tail_ns > c->cfg.period_ns)
        c->cfg.busy_tail_ns = c->cfg.period_ns;
    c->commands = ring_alloc(sizeof(edge_command), (size_t)c->cfg.command_capacity);
    c->states = ring_alloc(sizeof(edge_state), (size_t)c->cfg.state_capacity);
    c->latency = hist_alloc();
    c->exec = hist_alloc();
    if (!c->commands || !c->states || !c->latency || !c->exec) {
        cycle_free(c);
        return NULL;
    }
    c->img.period_s = (double)cfg->period_ns * 1e-9;
    c->img.n_axes = cfg->n_axes;
    c->img.stop_category = EDGE_NO_STOP;
    return c;
}

void cycle_free(cycle *c)
{
    if (!c)
        return;
    cycle_stop(c);
    ring_free(c->commands);
    ring_free(c->states);
    hist_free(c->latency);
    hist_free(c->exec);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    free(c);
}

int cycle_add_block(cycle *c, edge_block *b)
{
    if (atomic_load(&c->running) || c->n_blocks >= EDGE_MAX_BLOCKS || !b)
        return -1;
    c->blocks[c->n_blocks] = b;
    /* what an integrator's block writes is unknown: all of its slots are published */
    c->signals_written |= b->kind == EDGE_BLOCK_CUSTOM ? UINT32_MAX : b->signals_written;
    return c->n_blocks++;
}

static void apply_cycle_command(cycle *c, const edge_command *cmd)
{
    edge_image *img = &c->img;
    switch (cmd->kind) {
    case CYCLE_CMD_STOP: {
        /* Range checks on the doubles first: converting NaN, inf or anything beyond the
         * target type to an unsigned is undefined (on x86 NaN became category 0). */
        double cat = cmd->args[0], code = cmd->args[1];
        if (!(cat > -1.0 && cat < 3.0)) {
            STAT_ADD(c, rejected_commands, 1);
            return;
        }
        edge_request_stop(img, (uint32_t)cat,
                          code > 0 && code < 4294967296.0 ? (uint32_t)code : 0);
        break;
    }
    case CYCLE_CMD_RESET:
        /* A reset cannot clear a stop whose cause is still present. */
        if (img->inputs & EDGE_IN_ESTOP) {
            STAT_ADD(c, rejected_commands, 1);
            return;
        }
        img->stop_category = EDGE_NO_STOP;
        img->fault_code = 0;
        img->reset_request = 1;
        c->last_kick_tick = img->tick;
        break;
    case CYCLE_CMD_KICK:
        c->last_kick_tick = img->tick;
        break;
    default:
        STAT_ADD(c, rejected_commands, 1);
    }
}

static void apply_command(cycle *c, const edge_command *cmd)
{
    if (cmd->target == EDGE_TARGET_CYCLE) {
        apply_cycle_command(c, cmd);
        return;
    }
    edge_block *b = cmd->target < (uint32_t)c->n_blocks ? c->blocks[cmd->target] : NULL;
    if (!b || !b->command || b->command(b->self, &c->img, cmd) != 0)
        STAT_ADD(c, rejected_commands, 1);
}

/* Move everything from the ring into the pending set, then apply what is due, in the
 * order it was pushed. Late commands are applied at once and counted. */
static void apply_due_commands(cycle *c)
{
    while (c->n_pending < PENDING_MAX && ring_pop(c->commands, &c->pending[c->n_pending])) {
        int64_t due = c->pending[c->n_pending].tick;
        if (due != EDGE_TICK_ASAP && due < c->img.tick)
            STAT_ADD(c, late_commands, 1);
        c->n_pending++;
        c->popped++;
    }
    int kept = 0;
    for (int i = 0; i < c->n_pending; i++) {
        if (c->pending[i].tick <= c->img.tick)
            apply_command(c, &c->pending[i]);
        else
            c->pending[kept++] = c->pending[i];
    }
    c->n_pending = kept;
}

/* Writes the tick's state record straight into its ring slot, copying only what some
 * block can have written: the first n_axes entries of each axis array and the signal
 * slots the blocks declared. Every record a slot receives leaves the same fields
 * untouched, so they stay as the zeroed ring has them: zero, as in the image. Returns
 * the tick's execution time so far, ns (recorded in the slot too). */
static int64_t publish_state(cycle *c, int64_t t_ns, int64_t latency_ns, int64_t begin)
{
    const edge_image *img = &c->img;
    edge_state *r = ring_reserve(c->states);
    if (!r) {
        STAT_ADD(c, state_drops, 1);
        return mono_ns() - begin;
    }
    int n = img->n_axes;
    r->tick = img->tick;
    r->t_ns = t_ns;
    r->wake_latency_ns = (int32_t)(latency_ns > INT32_MAX ? INT32_MAX : latency_ns);
    r->mode = img->mode;
    r->fault_code = img->fault_code;
    r->stop_category = img->stop_category;
    r->inputs = img->inputs;
    r->outputs = img->outputs;
    r->n_axes = n;
    r->commands_popped = c->popped;
    memcpy(r->q, img->q, sizeof(double) * n);
    memcpy(r->qd, img->qd, sizeof(double) * n);
    memcpy(r->tau, img->tau, sizeof(double) * n);
    memcpy(r->q_cmd, img->q_cmd, sizeof(double) * n);
    memcpy(r->qd_cmd, img->qd_cmd, sizeof(double) * n);
    if (c->signals_written == UINT32_MAX)
        memcpy(r->signals, img->signals, sizeof(img->signals));
    else
        for (uint32_t m = c->signals_written; m; m &= m - 1)
            r->signals[__builtin_ctz(m)] = img->signals[__builtin_ctz(m)];
    memcpy(r->controlword, img->controlword, sizeof(img->controlword[0]) * n);
    memcpy(r->statusword, img->statusword, sizeof(img->statusword[0]) * n);
    memcpy(r->drive_error, img->drive_error, sizeof(img->drive_error[0]) * n);
    memcpy(r->drive_mode, img->drive_mode, sizeof(img->drive_mode[0]) * n);
    int64_t exec_ns = mono_ns() - begin;
    r->exec_ns = (int32_t)(exec_ns > INT32_MAX ? INT32_MAX : exec_ns);
    ring_commit(c->states);
    return exec_ns;
}

static void run_tick(cycle *c, int64_t t_ns, int64_t latency_ns)
{
    int64_t begin = mono_ns();
    edge_image *img = &c->img;
    img->tick = atomic_load_explicit(&c->next_tick, memory_order_relaxed);
    img->reset_request = 0;

    for (int i = 0; i < c->n_blocks; i++)
        if (c->blocks[i]->read)
            c->blocks[i]->read(c->blocks[i]->self, img);
    if (img->inputs & EDGE_IN_ESTOP)
        edge_request_stop(img, c->cfg.estop_category, EDGE_FAULT_ESTOP);
    apply_due_commands(c);
    if (c->cfg.watchdog_ticks > 0 && img->tick - c->last_kick_tick > c->cfg.watchdog_ticks)
        edge_request_stop(img, 1, EDGE_FAULT_WATCHDOG);
    for (int i = 0; i < c->n_blocks; i++)
        if (c->blocks[i]->step)
            c->blocks[i]->step(c->blocks[i]->self, img);
    for (int i = 0; i < c->n_blocks; i++)
        if (c->blocks[i]->write)
            c->blocks[i]->write(c->blocks[i]->self, img);

    hist_record(c->exec, publish_state(c, t_ns, latency_ns, begin));
    STAT_ADD(c, ticks, 1);
    /* sequentially consistent with cycle_wake_at: either it sees the new tick or this
     * sees its request (Dekker), so a wake-up is never lost */
    atomic_store(&c->next_tick, img->tick + 1);
    if (img->tick >= atomic_load(&c->wake_tick) &&
        atomic_exchange(&c->wake_tick, INT64_MAX) != INT64_MAX && c->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t ignored = write(c->wake_fd, &one, sizeof(one));   /* full: already due */
        (void)ignored;
    }
}

int cycle_step(cycle *c, int64_t n)
{
    if (atomic_load(&c->running))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = atomic_load_explicit(&c->next_tick, memory_order_relaxed);
        run_tick(c, k * c->cfg.period_ns, 0);
    }
    return 0;
}

static void prefault_stack(void)
{
    volatile unsigned char buf[64 * 1024];
    for (size_t i = 0; i < sizeof(buf); i += 4096)
        buf[i] = 0;
}

static void apply_realtime_settings(cycle *c)
{
    if (c->cfg.priority > 0) {
        struct sched_param sp = {.sched_priority = c->cfg.priority};
        int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
        c->stats.rt_fifo = err ? -err : 1;
    }
    if (c->cfg.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(c->cfg.cpu, &set);
        int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
        c->stats.rt_affinity = err ? -err : 1;
    }
    prefault_stack();
}

static void *cycle_thread(void *arg)
{
    cycle *c = arg;
    apply_realtime_settings(c);
    const int64_t period = c->cfg.period_ns, tail = c->cfg.busy_tail_ns;
    int64_t deadline = mono_ns() + period;
    c->start_ns = deadline - period;
    atomic_store(&c->started, 1);

    while (atomic_load_explicit(&c->running, memory_order_acquire)) {
        int64_t wake_at = deadline - tail;
        struct timespec ts = {.tv_sec = wake_at / 1000000000LL, .tv_nsec = wake_at % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        int64_t now = mono_ns();
        int64_t spin_from = now;
        while (now < deadline) {
            cpu_relax();
            now = mono_ns();
        }
        STAT_ADD(c, spin_ns, now - spin_from);
        int64_t latency = now - deadline;
        hist_record(c->latency, latency);
        run_tick(c, now, latency);

        deadline += period;
        now = mono_ns();
        if (now > deadline) {
            STAT_ADD(c, overruns, 1);
            int64_t skipped = (now - deadline) / period + 1;
            deadline += skipped * period;
            STAT_ADD(c, missed_periods, skipped);
        }
        __atomic_store_n(&c->stats.run_ns, now - c->start_ns, __ATOMIC_RELAXED);
    }
    return NULL;
}

int cycle_start(cycle *c)
{
    if (atomic_load(&c->running))
        return EBUSY;
    if (c->cfg.lock_memory) {
        c->stats.rt_mlock = mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 1 : -errno;
    }
    c->last_kick_tick = atomic_load(&c->next_tick);
    atomic_store(&c->started, 0);
    atomic_store(&c->running, 1);
    int err = pthread_create(&c->thread, NULL, cycle_thread, c);
    if (err) {
        atomic_store(&c->running, 0);
        return err;
    }
    while (!atomic_load(&c->started))
        sched_yield();
    c->stats.running = 1;
    return 0;
}

void cycle_stop(cycle *c)
{
    if (!atomic_exchange(&c->running, 0))
        return;
    pthread_join(c->thread, NULL);
    c->stats.running = 0;
    if (c->stats.rt_mlock == 1)
        munlockall();
}

int cycle_push_command(cycle *c, const edge_command *cmd)
{
    if (ring_push(c->commands, cmd))
        return 1;
    __atomic_fetch_add(&c->stats.command_overflows, 1, __ATOMIC_RELAXED);
    return 0;
}

int cycle_pop_states(cycle *c, edge_state *out, int max)
{
    int n = 0;
    while (n < max && ring_pop(c->states, &out[n]))
        n++;
    return n;
}

int cycle_pop_states_by_tick(cycle *c, edge_state *slots, int64_t n_slots, int max,
                             int64_t *span)
{
    int n = 0;
    const edge_state *next;
    span[2] = atomic_load_explicit(&c->next_tick, memory_order_acquire);
    while (n < max && (next = ring_peek(c->states)) != NULL) {
        int64_t tick = next->tick;
        ring_pop(c->states, &slots[tick % n_slots]);
        if (n == 0)
            span[0] = tick;
        span[1] = tick + 1;
        n++;
    }
    return n;
}

int cycle_wake_fd(const cycle *c)
{
    return c->wake_fd;
}

int cycle_wake_at(cycle *c, int64_t tick)
{
    atomic_store(&c->wake_tick, tick);
    if (atomic_load(&c->next_tick) > tick) {      /* already ran: no need to wait */
        atomic_store(&c->wake_tick, INT64_MAX);
        return 0;
    }
    return 1;
}

int64_t cycle_current_tick(const cycle *c)
{
    return atomic_load_explicit(&((cycle *)c)->next_tick, memory_order_acquire);
}

void cycle_get_stats(const cycle *c, cycle_stats *out)
{
    const int64_t *src = (const int64_t *)&c->stats;
    int64_t *dst = (int64_t *)out;
    /* counters are 64-bit and written whole; copy them one by one */
    for (size_t i = 0; i < offsetof(cycle_stats, rt_fifo) / sizeof(int64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    out->rt_fifo = c->stats.rt_fifo;
    out->rt_affinity = c->stats.rt_affinity;
    out->rt_mlock = c->stats.rt_mlock;
    out->running = atomic_load(&((cycle *)c)->running);
}

void cycle_reset_stats(cycle *c)
{
    int64_t *p = (int64_t *)&c->stats;
    for (size_t i = 0; i < offsetof(cycle_stats, rt_fifo) / sizeof(int64_t); i++)
        __atomic_store_n(&p[i], 0, __ATOMIC_RELAXED);
    hist_reset(c->latency);
    hist_reset(c->exec);
}

const hist *cycle_latency_hist(const cycle *c)
{
    return c->latency;
}

const hist *cycle_exec_hist(const cycle *c)
{
    return c->exec;
}
