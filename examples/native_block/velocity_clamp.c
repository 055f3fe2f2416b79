/* velocity_clamp.c — a worked example of an integrator's native block: it clamps the
 * commanded velocity of one axis to a lower limit (e.g. for a fragile tool) by holding
 * the commanded position back when the trajectory outruns it. Build it against the
 * headers of the installed edge package (no source checkout needed):
 *
 *   gcc -O2 -shared -fPIC -I"$(edge native --include)" velocity_clamp.c -o libvelocity_clamp.so
 *
 * (in Python the directory is edge.get_include()) and load it with
 * edge.rt.native.load_block (see docs/motion-extending.md).
 * Rules for a block: no allocation, no system calls and no locks in read/step/write;
 * state lives in the struct allocated once here; release frees it. The edge_block
 * itself is allocated with calloc (edge frees it with free after calling release): the
 * library does not link against edge's extension, only against its header. */
#include <stdlib.h>

#include "block.h"

#define CLAMP_CMD_SET_LIMIT 1     /* args[0]: new velocity limit, rad/s (> 0) */

typedef struct velocity_clamp {
    int axis;
    double limit;                 /* rad/s */
    double q_prev;
    int started;
    long long clamped_ticks;      /* how often it had to act */
} velocity_clamp;

static int clamp_command(void *self, edge_image *img, const edge_command *cmd)
{
    velocity_clamp *c = self;
    (void)img;
    if (cmd->kind != CLAMP_CMD_SET_LIMIT || !(cmd->args[0] > 0.0))
        return 1;                 /* refused: counted by the cycle */
    c->limit = cmd->args[0];
    return 0;
}

static void clamp_step(void *self, edge_image *img)
{
    velocity_clamp *c = self;
    double q = img->q_cmd[c->axis];
    if (!c->started) {
        c->q_prev = q;
        c->started = 1;
    }
    double max_step = c->limit * img->period_s;
    double step = q - c->q_prev;
    if (step > max_step || step < -max_step) {
        q = c->q_prev + (step > 0 ? max_step : -max_step);
        img->q_cmd[c->axis] = q;
        img->qd_cmd[c->axis] = step > 0 ? c->limit : -c->limit;
        c->clamped_ticks++;
    } else if (img->qd_cmd[c->axis] > c->limit || img->qd_cmd[c->axis] < -c->limit) {
        img->qd_cmd[c->axis] = img->qd_cmd[c->axis] > 0 ? c->limit : -c->limit;
    }
    c->q_prev = q;
}

static void clamp_release(void *self)
{
    free(self);
}

/* The factory edge.rt.native.load_block calls: returns NULL on bad input. */
edge_block *velocity_clamp_alloc(int axis, double limit)
{
    if (axis < 0 || axis >= EDGE_MAX_AXES || !(limit > 0.0))
        return NULL;
    velocity_clamp *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->axis = axis;
    c->limit = limit;
    edge_block *b = calloc(1, sizeof(*b));
    if (!b) {
        free(c);
        return NULL;
    }
    b->name = "velocity_clamp";
    b->self = c;
    b->command = clamp_command;
    b->step = clamp_step;
    b->release = clamp_release;
    return b;
}

long long velocity_clamp_count(const edge_block *b)
{
    return ((const velocity_clamp *)b->self)->clamped_ticks;
}
