/* path.c — plays joint-space paths sampled once per tick; see path.h. */
#include "path.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct path_buffer {
    double *q, *qd, *qdd;    /* capacity x n each */
    int64_t length;
} path_buffer;

typedef struct path_player {
    int n;
    int64_t capacity;
    path_buffer buf[2];
    volatile int32_t reserved[2];   /* set by START until RELEASE: Python must not load */
    int32_t playing;
    int32_t done;
    int64_t sample;
    int64_t started_tick;
} path_player;

static int path_command(void *self, edge_image *img, const edge_command *cmd)
{
    path_player *p = self;
    if (cmd->kind == PATH_CMD_START) {
        int k = (int)cmd->args[0];
        if (k < 0 || k > 1 || p->buf[k].length < 1 || img->stop_category != EDGE_NO_STOP)
            return 1;
        if (p->playing >= 0 && p->playing != k)
            p->reserved[p->playing] = 0;
        p->reserved[k] = 1;
        p->playing = k;
        p->done = 0;
        p->sample = 0;
        p->started_tick = img->tick;
        return 0;
    }
    if (cmd->kind == PATH_CMD_RELEASE) {
        if (p->playing >= 0)
            p->reserved[p->playing] = 0;
        p->playing = -1;
        return 0;
    }
    return 1;
}

static void path_step(void *self, edge_image *img)
{
    path_player *p = self;
    if (p->playing < 0)
        return;
    if (img->stop_category != EDGE_NO_STOP) {   /* the trajectory block brakes from here */
        p->reserved[p->playing] = 0;
        p->playing = -1;
        return;
    }
    const path_buffer *b = &p->buf[p->playing];
    int64_t i = p->sample < b->length ? p->sample : b->length - 1;
    const int n = p->n;
    for (int j = 0; j < n; j++) {
        img->q_cmd[j] = b->q[i * n + j];
        img->qd_cmd[j] = p->sample < b->length ? b->qd[i * n + j] : 0.0;
        img->qdd_cmd[j] = p->sample < b->length ? b->qdd[i * n + j] : 0.0;
    }
    if (p->sample < b->length)
        p->sample++;
    p->done = p->sample >= b->length;
}

static void path_release(void *self)
{
    path_player *p = self;
    for (int k = 0; k < 2; k++) {
        free(p->buf[k].q);
        free(p->buf[k].qd);
        free(p->buf[k].qdd);
    }
    free(p);
}

edge_block *path_block_alloc(int n_axes, int64_t capacity)
{
    if (n_axes < 1 || n_axes > EDGE_MAX_AXES || capacity < 1 || capacity > 100000000 / n_axes)
        return NULL;
    path_player *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->n = n_axes;
    p->capacity = capacity;
    p->playing = -1;
    size_t bytes = (size_t)capacity * (size_t)n_axes * sizeof(double);
    for (int k = 0; k < 2; k++) {
        p->buf[k].q = calloc(1, bytes);
        p->buf[k].qd = calloc(1, bytes);
        p->buf[k].qdd = calloc(1, bytes);
        if (!p->buf[k].q || !p->buf[k].qd || !p->buf[k].qdd) {
            path_release(p);
            return NULL;
        }
    }
    edge_block *b = edge_block_new("path", p);
    if (!b) {
        path_release(p);
        return NULL;
    }
    b->kind = EDGE_BLOCK_PATH;
    b->command = path_command;
    b->step = path_step;
    b->release = path_release;
    return b;
}

int path_block_load(edge_block *blk, int buffer, const double *q, const double *qd,
                    const double *qdd, int64_t n)
{
    if (!edge_block_is(blk, EDGE_BLOCK_PATH))
        return EDGE_ERR_KIND;
    path_player *p = blk->self;
    if (buffer < 0 || buffer > 1 || n < 1 || n > p->capacity || p->reserved[buffer])
        return -1;
    size_t bytes = (size_t)n * (size_t)p->n * sizeof(double);
    memcpy(p->buf[buffer].q, q, bytes);
    memcpy(p->buf[buffer].qd, qd, bytes);
    memcpy(p->buf[buffer].qdd, qdd, bytes);
    p->buf[buffer].length = n;
    return 0;
}

int64_t path_ik(const arm_model *m, const double *poses, int64_t n, const double *q0,
                const arm_ik_options *opt, double max_step, double *q_out, int *why)
{
    const int dof = m->n;
    const double *prev = q0;
    *why = 0;
    for (int64_t k = 0; k < n; k++) {
        double *q = q_out + k * dof;
        arm_ik_report report;
        if (arm_ik(m, poses + k * 16, prev, opt, q, &report) != 0) {
            *why = 1;
            return k;
        }
        for (int j = 0; j < dof; j++)
            if (fabs(q[j] - prev[j]) > max_step) {
                *why = 2;
                return k;
            }
        prev = q;
    }
    return n;
}
