/* drive_sim.c — see drive_sim.h. */
#include <math.h>
#include <stdlib.h>

#include "drive_sim.h"

typedef struct drive_sim {
    int n;
    double tau_s;
    int estop_pressed;
    double q[EDGE_MAX_AXES], qd[EDGE_MAX_AXES];
} drive_sim;

static void drive_sim_read(void *self, edge_image *img)
{
    drive_sim *d = self;
    for (int i = 0; i < d->n; i++) {
        img->q[i] = d->q[i];
        img->qd[i] = d->qd[i];
        img->tau[i] = 0;
    }
    if (d->estop_pressed)
        img->inputs |= EDGE_IN_ESTOP;
    else
        img->inputs &= ~(uint32_t)EDGE_IN_ESTOP;
}

static int drive_sim_command(void *self, edge_image *img, const edge_command *cmd)
{
    drive_sim *d = self;
    if (cmd->kind != DRIVE_SIM_CMD_ESTOP)
        return 1;
    d->estop_pressed = cmd->args[0] != 0;
    return 0;
}

static void drive_sim_write(void *self, edge_image *img)
{
    drive_sim *d = self;
    const double dt = img->period_s;
    const double alpha = dt / (d->tau_s + dt);
    for (int i = 0; i < d->n; i++) {
        if (img->stop_category == 0) {      /* power removed, brakes engaged */
            d->qd[i] = 0;
            continue;
        }
        double q_next = d->q[i] + alpha * (img->q_cmd[i] - d->q[i]);
        d->qd[i] = (q_next - d->q[i]) / dt;
        d->q[i] = q_next;
    }
}

static void drive_sim_release(void *self)
{
    free(self);
}

edge_block *drive_sim_block_alloc(int n_axes, double tau_s, const double *initial_position)
{
    if (n_axes < 1 || n_axes > EDGE_MAX_AXES || !(tau_s >= 0))
        return NULL;
    drive_sim *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->n = n_axes;
    d->tau_s = tau_s;
    for (int i = 0; i < n_axes; i++)
        d->q[i] = initial_position[i];
    edge_block *b = edge_block_new("drive_sim", d);
    if (!b) {
        free(d);
        return NULL;
    }
    b->kind = EDGE_BLOCK_DRIVE_SIM;
    b->read = drive_sim_read;
    b->command = drive_sim_command;
    b->write = drive_sim_write;
    b->release = drive_sim_release;
    return b;
}
