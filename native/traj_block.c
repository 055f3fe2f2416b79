/* traj_block.c — see traj.h. The cycle block around the planner: it keeps the commanded
 * state (position, velocity, acceleration), samples the active trajectory each tick, and
 * replans from that state when a target or a stop arrives, so the output stays
 * continuous in acceleration and within the jerk limit across replanning. */
#include <math.h>
#include <stdlib.h>

#include "traj.h"

typedef struct traj_block {
    int n;
    int initialised, stopping;
    double vmax[EDGE_MAX_AXES], amax[EDGE_MAX_AXES], jmax[EDGE_MAX_AXES];
    double q[EDGE_MAX_AXES], qd[EDGE_MAX_AXES], qdd[EDGE_MAX_AXES];
    double t;
    int active;
    int following;              /* TRAJ_CMD_FOLLOW: track the measured position */
    traj buf[2];                /* active and scratch: a plan that fails leaves the active */
    traj *tr, *next;
} traj_block;

static void tb_sync(traj_block *b, const edge_image *img)
{
    for (int i = 0; i < b->n; i++) {
        b->q[i] = img->q[i];
        b->qd[i] = b->qdd[i] = 0;
    }
    b->active = 0;
    b->stopping = 0;
    b->following = 0;
    b->initialised = 1;
}

/* Make the scratch plan the active one, from its start. */
static int tb_switch(traj_block *b)
{
    traj *tmp = b->tr;
    b->tr = b->next, b->next = tmp;
    b->t = 0;
    b->active = 1;
    return 0;
}

/* Take over a state (from another block's output or from the drive); brake if it moves. */
static int tb_stop(traj_block *b)
{
    if (traj_plan_stop(b->next, b->n, b->q, b->qd, b->qdd, b->amax, b->jmax))
        return 1;
    return tb_switch(b);
}

static int tb_adopt(traj_block *b, const edge_image *img, int measured)
{
    int moving = 0;
    for (int i = 0; i < b->n; i++) {
        b->q[i] = measured ? img->q[i] : img->q_cmd[i];
        b->qd[i] = measured ? img->qd[i] : img->qd_cmd[i];
        b->qdd[i] = measured ? 0.0 : img->qdd_cmd[i];
        moving |= b->qd[i] != 0.0 || b->qdd[i] != 0.0;
    }
    b->active = 0;
    return moving ? tb_stop(b) : 0;
}

static int tb_command(void *self, edge_image *img, const edge_command *cmd)
{
    traj_block *b = self;
    if (!b->initialised)
        tb_sync(b, img);
    if (cmd->kind == TRAJ_CMD_STOP)
        return tb_stop(b);
    if (cmd->kind == TRAJ_CMD_ADOPT)
        return tb_adopt(b, img, cmd->args[0] != 0.0);
    if (cmd->kind == TRAJ_CMD_FOLLOW) {
        b->following = cmd->args[0] != 0.0;
        return b->following ? 0 : tb_adopt(b, img, 1);
    }
    if (img->stop_category != EDGE_NO_STOP || b->following)
        return 1;                     /* no targets while stopped or led by hand */
    if (cmd->kind == TRAJ_CMD_VELOCITY) {
        for (int i = 0; i < b->n; i++)
            if (!(fabs(cmd->args[i]) <= b->vmax[i]))
                return 2;
        if (traj_plan_velocity(b->next, b->n, b->q, b->qd, b->qdd, cmd->args, b->amax,
                               b->jmax))
            return 2;
        return tb_switch(b);
    }
    const double *vf = NULL;
    const double *vmax = b->vmax, *amax = b->amax, *jmax = b->jmax;
    double sv[EDGE_MAX_AXES], sa[EDGE_MAX_AXES], sj[EDGE_MAX_AXES];
    if (cmd->kind == TRAJ_CMD_TARGET_VEL) {
        if (2 * b->n > EDGE_CMD_ARGS)
            return 2;
        vf = cmd->args + b->n;
    } else if (cmd->kind == TRAJ_CMD_TARGET_SCALED) {
        double s = b->n + 1 < EDGE_CMD_ARGS ? cmd->args[b->n] : 0.0;
        int velocity_only = b->n + 1 < EDGE_CMD_ARGS && cmd->args[b->n + 1] != 0.0;
        if (!(s > 0.0 && s <= 1.0))
            return 2;
        for (int i = 0; i < b->n; i++) {
            sv[i] = b->vmax[i] * s;
            sa[i] = velocity_only ? b->amax[i] : b->amax[i] * s * s;
            sj[i] = velocity_only ? b->jmax[i] : b->jmax[i] * s * s * s;
        }
        vmax = sv, amax = sa, jmax = sj;
    } else if (cmd->kind != TRAJ_CMD_TARGET) {
        return 1;
    }
    int err = traj_plan(b->next, b->n, b->q, b->qd, b->qdd, cmd->args, vf, vmax, amax, jmax);
    if (err)
        return 2;
    return tb_switch(b);
}

static void tb_step(void *self, edge_image *img)
{
    traj_block *b = self;
    if (!b->initialised || img->reset_request)
        tb_sync(b, img);
    if (img->stop_category != EDGE_NO_STOP && !b->stopping) {
        b->stopping = 1;
        b->following = 0;
        tb_stop(b);
    }
    if (b->following) {
        for (int i = 0; i < b->n; i++) {
            b->q[i] = img->q[i];
            b->qd[i] = img->qd[i];
            b->qdd[i] = 0.0;
        }
    } else if (b->active) {
        b->t += img->period_s;
        traj_at(b->tr, b->t, b->q, b->qd, b->qdd);
    }
    for (int i = 0; i < b->n; i++) {
        img->q_cmd[i] = b->q[i];
        img->qd_cmd[i] = b->qd[i];
        img->qdd_cmd[i] = b->qdd[i];
    }
}

static void tb_release(void *self)
{
    free(self);
}

edge_block *traj_block_alloc(int n_axes, const double *max_velocity,
                             const double *max_acceleration, const double *max_jerk)
{
    if (n_axes < 1 || n_axes > EDGE_MAX_AXES)
        return NULL;
    for (int i = 0; i < n_axes; i++)
        if (!(max_velocity[i] > 0) || !(max_acceleration[i] > 0) || !(max_jerk[i] > 0))
            return NULL;
    traj_block *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->n = n_axes;
    b->tr = &b->buf[0], b->next = &b->buf[1];
    for (int i = 0; i < n_axes; i++) {
        b->vmax[i] = max_velocity[i];
        b->amax[i] = max_acceleration[i];
        b->jmax[i] = max_jerk[i];
    }
    edge_block *blk = edge_block_new("traj", b);
    if (!blk) {
        free(b);
        return NULL;
    }
    blk->kind = EDGE_BLOCK_TRAJ;
    blk->command = tb_command;
    blk->step = tb_step;
    blk->release = tb_release;
    return blk;
}
