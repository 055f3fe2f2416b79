/* setpoint.c — see setpoint.h. Braking-distance tracking: the velocity toward the target
 * never exceeds sqrt(2 a |error|), so each axis arrives without overshoot. */
#include <math.h>
#include <stdlib.h>

#include "setpoint.h"

typedef struct setpoint {
    int n;
    int initialised;
    double vmax[EDGE_MAX_AXES], amax[EDGE_MAX_AXES];
    double target[EDGE_MAX_AXES], pos[EDGE_MAX_AXES], vel[EDGE_MAX_AXES];
} setpoint;

/* Start from where the drive is: on the first tick and after every reset. */
static void setpoint_sync(setpoint *s, const edge_image *img)
{
    for (int i = 0; i < s->n; i++) {
        s->pos[i] = s->target[i] = img->q[i];
        s->vel[i] = 0;
    }
    s->initialised = 1;
}

static int setpoint_command(void *self, edge_image *img, const edge_command *cmd)
{
    setpoint *s = self;
    if (!s->initialised)
        setpoint_sync(s, img);
    if (cmd->kind != SETPOINT_CMD_TARGET || img->stop_category != EDGE_NO_STOP)
        return 1;
    for (int i = 0; i < s->n; i++)
        if (!isfinite(cmd->args[i]))
            return 2;
    for (int i = 0; i < s->n; i++)
        s->target[i] = cmd->args[i];
    return 0;
}

static void setpoint_step(void *self, edge_image *img)
{
    setpoint *s = self;
    const double dt = img->period_s;
    if (!s->initialised || img->reset_request)
        setpoint_sync(s, img);
    int stopping = img->stop_category != EDGE_NO_STOP;
    for (int i = 0; i < s->n; i++) {
        double v_des;
        if (stopping) {
            v_des = 0;
        } else {
            double e = s->target[i] - s->pos[i];
            v_des = copysign(fmin(s->vmax[i], sqrt(2 * s->amax[i] * fabs(e))), e);
        }
        double dv = fmax(-s->amax[i] * dt, fmin(s->amax[i] * dt, v_des - s->vel[i]));
        s->vel[i] += dv;
        s->pos[i] += s->vel[i] * dt;
        if (!stopping && fabs(s->target[i] - s->pos[i]) < 1e-12 + fabs(s->vel[i]) * dt &&
            fabs(s->vel[i]) <= s->amax[i] * dt) {
            s->pos[i] = s->target[i];
            s->vel[i] = 0;
        }
        img->q_cmd[i] = s->pos[i];
        img->qd_cmd[i] = s->vel[i];
    }
}

static void setpoint_release(void *self)
{
    free(self);
}

edge_block *setpoint_block_alloc(int n_axes, const double *max_velocity,
                                 const double *max_acceleration)
{
    if (n_axes < 1 || n_axes > EDGE_MAX_AXES)
        return NULL;
    for (int i = 0; i < n_axes; i++)
        if (!(max_velocity[i] > 0) || !(max_acceleration[i] > 0))
            return NULL;
    setpoint *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->n = n_axes;
    for (int i = 0; i < n_axes; i++) {
        s->vmax[i] = max_velocity[i];
        s->amax[i] = max_acceleration[i];
    }
    edge_block *b = edge_block_new("setpoint", s);
    if (!b) {
        free(s);
        return NULL;
    }
    b->kind = EDGE_BLOCK_SETPOINT;
    b->command = setpoint_command;
    b->step = setpoint_step;
    b->release = setpoint_release;
    return b;
}
