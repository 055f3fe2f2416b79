/* torque_probe.c — two test blocks around the safety monitor: `ff_torque` writes a
 * commanded feed-forward torque (set by command, as an integrator's block would) before
 * the monitor, `torque_probe` copies what the monitor passed on to the drives after it. */
#include <stdlib.h>
#include <string.h>

#include "block.h"

typedef struct ff_torque {
    double tau[EDGE_MAX_AXES];
    double seen[EDGE_MAX_AXES];   /* the probe's copy */
} ff_torque;

static int ff_command(void *self, edge_image *img, const edge_command *cmd)
{
    ff_torque *f = self;
    (void)img;
    memcpy(f->tau, cmd->args, sizeof f->tau);
    return 0;
}

static void ff_step(void *self, edge_image *img)
{
    memcpy(img->tau_cmd, ((ff_torque *)self)->tau, sizeof img->tau_cmd);
}

static void probe_step(void *self, edge_image *img)
{
    memcpy(((ff_torque *)self)->seen, img->tau_cmd, sizeof img->tau_cmd);
}

static void release_none(void *self)
{
    (void)self;                   /* the state is freed with the ff_torque block */
}

static void release_state(void *self)
{
    free(self);
}

static edge_block *block(const char *name, void *self, void (*step)(void *, edge_image *),
                         void (*release)(void *))
{
    edge_block *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->name = name;
    b->self = self;
    b->step = step;
    b->release = release;
    return b;
}

static ff_torque *shared;         /* one pair per library load: the test loads it once */

edge_block *ff_torque_alloc(void)
{
    shared = calloc(1, sizeof(*shared));
    if (!shared)
        return NULL;
    edge_block *b = block("ff_torque", shared, ff_step, release_state);
    if (b)
        b->command = ff_command;
    return b;
}

edge_block *torque_probe_alloc(void)
{
    return shared ? block("torque_probe", shared, probe_step, release_none) : NULL;
}

double torque_probe_seen(int axis)
{
    return shared ? shared->seen[axis] : 0.0;
}
