/* fuzz_setup.c — libFuzzer harness for the setup calls Python makes (the *_alloc, *_check,
 * *_set_config and load functions of the block headers, and the cycle around them).
 *
 * Valid default configurations (a 1..6 link arm, its sim, safety and observer configs, a
 * cycle) are mutated by the input: each 11-byte record overwrites one field (raw bytes, or
 * a double / int32 from a table of edge values) at an offset of one struct. Every call
 * must then refuse a bad argument with its error value instead of crashing, agree with
 * its own check function, and a cycle built from what was accepted must run a few ticks
 * with fuzzed commands without a sanitizer report.
 */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arm_sim.h"
#include "cia402_sim.h"
#include "cycle.h"
#include "drive_sim.h"
#include "observer.h"
#include "path.h"
#include "safety.h"
#include "setpoint.h"
#include "traj.h"

#define MAX_CAPACITY 4096      /* ring and path sizes: bounded so the harness stays in RAM */
#define PATH_SAMPLES 8

static const double EDGE_DOUBLES[] = {0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 1e300, -1e300,
                                      NAN, INFINITY, -INFINITY, 16.0, 17.0, 3.0, 4.9e-324};
static const int32_t EDGE_INTS[] = {0, 1, 2, 3, -1, 16, 17, 255, INT32_MAX, INT32_MIN};

typedef struct setup {
    arm_model model;
    arm_sim_config sim;
    cia402_sim_config cia;
    safety_config safety;
    observer_config obs;
    cycle_config cycle;
    double limits[3][EDGE_MAX_AXES];   /* traj / setpoint velocity, acceleration, jerk */
    int64_t path_capacity;
    int32_t n_axes;                    /* the n passed to the n-based allocators */
    double tau_s;
} setup;

static void defaults(setup *s, int n)
{
    memset(s, 0, sizeof(*s));
    arm_model *m = &s->model;
    m->n = n;
    for (int i = 0; i < n; i++) {
        m->a[i] = 0.3, m->d[i] = 0.1, m->alpha[i] = (i % 2) ? 0 : M_PI / 2;
        m->mass[i] = 1.0, m->com[i][0] = 0.1, m->armature[i] = 0.01;
        m->inertia[i][0] = m->inertia[i][4] = m->inertia[i][8] = 0.01;
        m->q_min[i] = -3, m->q_max[i] = 3;
    }
    for (int k = 0; k < 4; k++)
        m->base[k * 5] = m->tool[k * 5] = 1;
    m->gravity[2] = -9.81;
    arm_sim_config *c = &s->sim;
    for (int i = 0; i < n; i++)
        c->viscous[i] = 0.1, c->coulomb[i] = 0.05, c->torque_limit[i] = 100;
    c->servo_bandwidth_hz = 20, c->servo_damping = 1, c->servo_integral_hz = 1;
    c->substeps = 2, c->mode = DRIVE_MODE_CSP, c->enabled = 1;
    cia402_sim_config *d = &s->cia;
    d->n_axes = n;
    for (int i = 0; i < n; i++)
        d->max_velocity[i] = 2, d->max_torque[i] = 50, d->inertia[i] = 0.1;
    d->position_gain_hz = 50, d->switch_on_s = 0.002, d->enable_s = 0.003;
    d->following_error_window = 0.05, d->following_error_timeout_s = 0.005;
    d->quick_stop_deceleration = 10, d->quick_stop_option = DRIVE_QS_QUICK_STOP_RAMP;
    safety_config *f = &s->safety;
    f->n = n;
    for (int i = 0; i < n; i++) {
        f->q_min[i] = -2.9, f->q_max[i] = 2.9, f->v_max[i] = 2, f->a_max[i] = 10;
        f->a_stop[i] = 10, f->j_stop[i] = 100, f->tau_max[i] = 100;
    }
    f->tcp_speed_max = 1, f->tcp_speed_reduced = 0.25, f->reduced_transition_s = 0.5;
    f->position_tolerance = 0.01, f->velocity_tolerance = 0.1, f->tcp_speed_tolerance = 0.05;
    f->following_error_max = 0.5, f->wall_margin = 0.01;
    f->stop_profile = SAFETY_STOP_JERK, f->fault_category = 1, f->following_category = 1;
    f->n_walls = 1, f->walls[0].kind = SAFETY_WALL_PLANE, f->walls[0].normal[2] = 1;
    f->walls[0].offset = -1;
    f->n_spheres = 2, f->spheres[0].frame = n + 1, f->spheres[0].radius = 0.05;
    f->spheres[1].frame = 1, f->spheres[1].radius = 0.1;
    observer_config *o = &s->obs;
    o->n = n, o->coulomb_velocity = 0.01, o->category = 1;
    for (int i = 0; i < n; i++) {
        o->gain[i] = 50, o->contact_threshold[i] = 2, o->collision_threshold[i] = 10;
        o->viscous[i] = 0.1, o->coulomb[i] = 0.05;
    }
    s->cycle = (cycle_config){.period_ns = 1000000, .n_axes = n, .cpu = -1,
                              .command_capacity = 16, .state_capacity = 32,
                              .watchdog_ticks = 0, .estop_category = 0};
    for (int i = 0; i < n; i++)
        s->limits[0][i] = 1, s->limits[1][i] = 5, s->limits[2][i] = 50;
    s->path_capacity = PATH_SAMPLES, s->n_axes = n, s->tau_s = 0.01;
}

/* One mutation: byte 0 the struct, bytes 1-2 the offset, byte 3 the kind, 4-10 value. */
static void mutate(setup *s, const uint8_t *r)
{
    static const struct { size_t off, size; } part[] = {
        {offsetof(setup, model), sizeof(arm_model)},
        {offsetof(setup, sim), sizeof(arm_sim_config)},
        {offsetof(setup, cia), sizeof(cia402_sim_config)},
        {offsetof(setup, safety), sizeof(safety_config)},
        {offsetof(setup, obs), sizeof(observer_config)},
        {offsetof(setup, cycle), sizeof(cycle_config)},
        {offsetof(setup, limits), sizeof(s->limits)},
        {offsetof(setup, path_capacity), sizeof(setup) - offsetof(setup, path_capacity)},
    };
    const size_t n_part = sizeof(part) / sizeof(part[0]);
    size_t p = r[0] % n_part, off = (size_t)(r[1] | (r[2] << 8)) % part[p].size;
    uint8_t *base = (uint8_t *)s + part[p].off;
    switch (r[3] % 3) {
    case 0: {                                  /* a double from the table, aligned */
        off &= ~(size_t)7;
        if (off + 8 > part[p].size)
            return;
        double d = EDGE_DOUBLES[r[4] % (sizeof(EDGE_DOUBLES) / sizeof(double))];
        memcpy(base + off, &d, 8);
        break;
    }
    case 1: {                                  /* an int from the table, aligned */
        off &= ~(size_t)3;
        if (off + 4 > part[p].size)
            return;
        int32_t v = EDGE_INTS[r[4] % (sizeof(EDGE_INTS) / sizeof(int32_t))];
        memcpy(base + off, &v, 4);
        break;
    }
    default: {                                 /* raw bytes */
        size_t len = part[p].size - off < 7 ? part[p].size - off : 7;
        memcpy(base + off, r + 4, len);
        break;
    }
    }
}

static void run_cycle(setup *s, edge_block **blocks, int n_blocks, const uint8_t *data,
                      size_t size)
{
    cycle_config cfg = s->cycle;
    /* negative and zero capacities stay (the cycle picks its defaults); huge ones are
     * clipped, as libFuzzer counts any allocation over its limit as a crash */
    if (cfg.command_capacity > MAX_CAPACITY)
        cfg.command_capacity = MAX_CAPACITY;
    if (cfg.state_capacity > MAX_CAPACITY)
        cfg.state_capacity = MAX_CAPACITY;
    cfg.cpu = -1, cfg.priority = 0, cfg.lock_memory = 0;  /* no real-time requests */
    cycle *c = cycle_alloc(&cfg);
    if (!c) {
        if (cfg.period_ns > 0 && cfg.period_ns <= CYCLE_MAX_PERIOD_NS && cfg.n_axes >= 0 &&
            cfg.n_axes <= EDGE_MAX_AXES)
            abort();                            /* a valid config refused */
        for (int k = 0; k < n_blocks; k++)
            edge_block_free(blocks[k]);
        return;
    }
    if (cfg.period_ns <= 0 || cfg.period_ns > CYCLE_MAX_PERIOD_NS || cfg.n_axes < 0 ||
        cfg.n_axes > EDGE_MAX_AXES)
        abort();                                /* an invalid config accepted */
    if (cycle_add_block(c, NULL) != -1)
        abort();
    for (int k = 0; k < n_blocks; k++)
        if (cycle_add_block(c, blocks[k]) != k)
            abort();
    /* the rest of the input: commands (target, kind, args) stepped a few ticks each */
    size_t rec = 2 + 8;
    for (size_t pos = 0; pos + rec <= size && pos < 8 * rec; pos += rec) {
        edge_command cmd = {.tick = EDGE_TICK_ASAP};
        uint8_t t = data[pos];
        cmd.target = t >= 250 ? EDGE_TARGET_CYCLE : (uint32_t)(t % (n_blocks + 2));
        cmd.kind = data[pos + 1] % 9;
        for (int a = 0; a < EDGE_CMD_ARGS; a++) {
            if (a % 2)
                cmd.args[a] = EDGE_DOUBLES[data[pos + 2 + a / 2] % 15];
            else
                cmd.args[a] = (double)(int8_t)data[pos + 2 + a / 2] * 0.05;
        }
        cycle_push_command(c, &cmd);
        cycle_step(c, 2);
    }
    cycle_step(c, 8);
    edge_state states[8];
    int64_t span[3];
    cycle_pop_states(c, states, 8);
    cycle_pop_states_by_tick(c, states, 8, 8, span);
    cycle_wake_at(c, cycle_current_tick(c) + 1);
    cycle_stats st;
    cycle_get_stats(c, &st);
    cycle_free(c);
    for (int k = 0; k < n_blocks; k++)
        edge_block_free(blocks[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    setup s;
    defaults(&s, 1 + data[0] % 6);
    size_t n_mut = size > 1 ? data[1] % 8 : 0, pos = 2;
    for (size_t k = 0; k < n_mut && pos + 11 <= size; k++, pos += 11)
        mutate(&s, data + pos);

    edge_block *blocks[10];
    int n_blocks = 0;
    int model_ok = arm_model_check(&s.model) == 0;
    edge_block *b = arm_sim_block_alloc(&s.model, &s.sim);
    if (b && !model_ok)
        abort();
    if (b)
        blocks[n_blocks++] = b;
    int safety_ok = safety_config_check(&s.model, &s.safety) == 0;
    edge_block *safety = safety_block_alloc(&s.model, &s.safety);
    if (!safety != !safety_ok)
        abort();                                /* alloc and check disagree */
    int obs_ok = model_ok && observer_config_valid(&s.model, &s.obs);
    edge_block *obs = observer_block_alloc(&s.model, &s.obs);
    if (!obs != !obs_ok)
        abort();
    if (safety && obs) {
        safety_link_observer(safety, obs);
        if (safety_set_config(safety, &s.safety) != -1)   /* enabled: must refuse */
            abort();
        observer_set_config(obs, &s.obs);
    }
    if (safety)
        blocks[n_blocks++] = safety;
    if (obs)
        blocks[n_blocks++] = obs;
    if ((b = traj_block_alloc(s.n_axes, s.limits[0], s.limits[1], s.limits[2])))
        blocks[n_blocks++] = b;
    if ((b = setpoint_block_alloc(s.n_axes, s.limits[0], s.limits[1])))
        blocks[n_blocks++] = b;
    double q0[EDGE_MAX_AXES] = {0};
    if ((b = drive_sim_block_alloc(s.n_axes, s.tau_s, q0)))
        blocks[n_blocks++] = b;
    if ((b = cia402_sim_block_alloc(&s.cia))) {
        if (s.cia.n_axes < 1 || s.cia.n_axes > EDGE_MAX_AXES)
            abort();                            /* accepted a bad axis count */
        blocks[n_blocks++] = b;
    }
    int64_t cap = s.path_capacity;
    if (cap > MAX_CAPACITY && cap <= 100000000 / EDGE_MAX_AXES)
        cap = MAX_CAPACITY;                     /* valid but large: clipped as above */
    if ((b = path_block_alloc(s.n_axes, cap))) {
        if (s.n_axes < 1 || s.n_axes > EDGE_MAX_AXES || cap < 1)
            abort();
        static double q[PATH_SAMPLES * EDGE_MAX_AXES];
        int64_t n_load = pos < size ? (int64_t)(int8_t)data[pos] : PATH_SAMPLES;
        int buffer = pos + 1 < size ? (int8_t)data[pos + 1] % 3 : 0;
        int64_t limit = cap < PATH_SAMPLES ? cap : PATH_SAMPLES;
        if (n_load <= limit || n_load > cap) {  /* within our arrays, or refused anyway */
            int err = path_block_load(b, buffer, q, q, q, n_load);
            int valid = buffer >= 0 && buffer <= 1 && n_load >= 1 && n_load <= cap;
            if ((err == 0) != valid)
                abort();
        }
        blocks[n_blocks++] = b;
    }
    run_cycle(&s, blocks, n_blocks, data + pos, pos < size ? size - pos : 0);
    return 0;
}
