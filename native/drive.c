/* drive.c — see drive.h: the CiA 402 state table and transitions, and the drive block
 * (master side) that maps the edge image to the process images of any drive_ops. */
#include <math.h>
#include <stdlib.h>

#include "codes.h"
#include "drive.h"

/* The statusword patterns of IEC 61800-7-201 / CiA 402 (bits 0-3, 5, 6; x = don't care):
 * mask and value per state, in drive_state order. */
static const struct {
    uint16_t mask, value;
} STATE_TABLE[] = {
    {0x4F, 0x00},   /* not ready to switch on   xxxx xxxx x0xx 0000 */
    {0x4F, 0x40},   /* switch on disabled       xxxx xxxx x1xx 0000 */
    {0x6F, 0x21},   /* ready to switch on       xxxx xxxx x01x 0001 */
    {0x6F, 0x23},   /* switched on              xxxx xxxx x01x 0011 */
    {0x6F, 0x27},   /* operation enabled        xxxx xxxx x01x 0111 */
    {0x6F, 0x07},   /* quick stop active        xxxx xxxx x00x 0111 */
    {0x4F, 0x0F},   /* fault reaction active    xxxx xxxx x0xx 1111 */
    {0x4F, 0x08},   /* fault                    xxxx xxxx x0xx 1000 */
};
#define N_STATES ((int)(sizeof STATE_TABLE / sizeof STATE_TABLE[0]))

int drive_state_of(uint16_t statusword)
{
    for (int s = 0; s < N_STATES; s++)
        if ((statusword & STATE_TABLE[s].mask) == STATE_TABLE[s].value)
            return s;
    return -1;
}

uint16_t drive_state_pattern(int state)
{
    if (state < 0 || state >= N_STATES)
        return 0;
    /* the don't-care quick stop bit reads 1 (no quick stop) outside quick stop active */
    uint16_t qs = state == DRIVE_STATE_QUICK_STOP_ACTIVE || state >= DRIVE_STATE_FAULT_REACTION_ACTIVE
                      ? 0 : DRIVE_SW_QUICK_STOP;
    return STATE_TABLE[state].value | qs;
}

/* The device control command a controlword codes (bit 7 clear), per the standard's
 * command coding table: -1 for none. Checked from the most to the least specific bit. */
enum { CMD_NONE = -1, CMD_DISABLE_VOLTAGE, CMD_QUICK_STOP, CMD_SHUTDOWN, CMD_SWITCH_ON,
       CMD_ENABLE_OPERATION };

static int command_of(uint16_t cw)
{
    if (cw & DRIVE_CW_FAULT_RESET_BIT)
        return CMD_NONE;
    if ((cw & 0x02) == 0)
        return CMD_DISABLE_VOLTAGE;          /* 0xxx xx0x */
    if ((cw & 0x06) == 0x02)
        return CMD_QUICK_STOP;               /* 0xxx x01x */
    if ((cw & 0x07) == 0x06)
        return CMD_SHUTDOWN;                 /* 0xxx x110 */
    if ((cw & 0x0F) == 0x07)
        return CMD_SWITCH_ON;                /* 0xxx 0111 (also disable operation) */
    return CMD_ENABLE_OPERATION;             /* 0xxx 1111 */
}

int drive_state_next(int state, uint16_t cw, uint16_t prev_cw, int quick_stop_option)
{
    int cmd = command_of(cw);
    switch (state) {
    case DRIVE_STATE_SWITCH_ON_DISABLED:
        return cmd == CMD_SHUTDOWN ? DRIVE_STATE_READY_TO_SWITCH_ON : state;          /* 2 */
    case DRIVE_STATE_READY_TO_SWITCH_ON:
        if (cmd == CMD_SWITCH_ON)
            return DRIVE_STATE_SWITCHED_ON;                                          /* 3 */
        if (cmd == CMD_ENABLE_OPERATION)
            return DRIVE_STATE_OPERATION_ENABLED;                                /* 3 + 4 */
        if (cmd == CMD_DISABLE_VOLTAGE || cmd == CMD_QUICK_STOP)
            return DRIVE_STATE_SWITCH_ON_DISABLED;                                   /* 7 */
        return state;
    case DRIVE_STATE_SWITCHED_ON:
        if (cmd == CMD_ENABLE_OPERATION)
            return DRIVE_STATE_OPERATION_ENABLED;                                    /* 4 */
        if (cmd == CMD_SHUTDOWN)
            return DRIVE_STATE_READY_TO_SWITCH_ON;                                   /* 6 */
        if (cmd == CMD_DISABLE_VOLTAGE || cmd == CMD_QUICK_STOP)
            return DRIVE_STATE_SWITCH_ON_DISABLED;                                  /* 10 */
        return state;
    case DRIVE_STATE_OPERATION_ENABLED:
        if (cmd == CMD_SWITCH_ON)
            return DRIVE_STATE_SWITCHED_ON;                                          /* 5 */
        if (cmd == CMD_SHUTDOWN)
            return DRIVE_STATE_READY_TO_SWITCH_ON;                                   /* 8 */
        if (cmd == CMD_DISABLE_VOLTAGE)
            return DRIVE_STATE_SWITCH_ON_DISABLED;                                   /* 9 */
        if (cmd == CMD_QUICK_STOP)
            return DRIVE_STATE_QUICK_STOP_ACTIVE;                                   /* 11 */
        return state;
    case DRIVE_STATE_QUICK_STOP_ACTIVE:
        if (cmd == CMD_DISABLE_VOLTAGE)
            return DRIVE_STATE_SWITCH_ON_DISABLED;                                  /* 12 */
        if (cmd == CMD_ENABLE_OPERATION && quick_stop_option >= 5 && quick_stop_option <= 8)
            return DRIVE_STATE_OPERATION_ENABLED;                                   /* 16 */
        return state;
    case DRIVE_STATE_FAULT:
        if ((cw & DRIVE_CW_FAULT_RESET_BIT) && !(prev_cw & DRIVE_CW_FAULT_RESET_BIT))
            return DRIVE_STATE_SWITCH_ON_DISABLED;                                  /* 15 */
        return state;
    default:                /* not ready, fault reaction: automatic transitions only */
        return state;
    }
}

uint16_t drive_controlword_toward(int state, int power)
{
    if (power == DRIVE_POWER_QUICK_STOP)     /* 11, or 7 / 10 where not enabled */
        return DRIVE_CW_QUICK_STOP;
    if (power != DRIVE_POWER_ON)
        return DRIVE_CW_SHUTDOWN;
    switch (state) {
    case DRIVE_STATE_READY_TO_SWITCH_ON:       /* switch on and enable: transitions 3 + 4 */
    case DRIVE_STATE_SWITCHED_ON:
    case DRIVE_STATE_OPERATION_ENABLED:
    case DRIVE_STATE_QUICK_STOP_ACTIVE:        /* 16 where the option allows it, else it
                                                  ends in switch on disabled and restarts */
        return DRIVE_CW_ENABLE_OPERATION;
    default:
        return DRIVE_CW_SHUTDOWN;
    }
}

/* -- the drive block: the master side ---------------------------------------------------- */
typedef struct drive_block {
    const drive_ops *ops;
    void *impl;
    int n, power, mode, started;
    int manual_cw;              /* DRIVE_CMD_CONTROLWORD, -1: the sequence */
    uint16_t cw[EDGE_MAX_AXES];              /* sent last tick */
    int8_t was[EDGE_MAX_AXES];               /* state read last tick */
    drive_rx rx[EDGE_MAX_AXES];
    drive_tx tx[EDGE_MAX_AXES];
} drive_block;

static void db_read(void *self, edge_image *img)
{
    drive_block *d = self;
    d->ops->read(d->impl, d->tx, &img->inputs);
    int faulted = 0, off = 0, lost = 0;
    for (int i = 0; i < d->n; i++) {
        const drive_tx *t = &d->tx[i];
        img->q[i] = t->position_actual;
        img->qd[i] = t->velocity_actual;
        img->tau[i] = t->torque_actual;
        img->statusword[i] = t->statusword;
        img->drive_error[i] = t->error_code;
        img->drive_mode[i] = t->modes_of_operation_display;
        int s = drive_state_of(t->statusword);
        faulted |= s == DRIVE_STATE_FAULT || s == DRIVE_STATE_FAULT_REACTION_ACTIVE;
        /* enabled and told to stay so, yet no longer enabled, and not by a fault */
        lost |= d->started && d->was[i] == DRIVE_STATE_OPERATION_ENABLED &&
                d->cw[i] == DRIVE_CW_ENABLE_OPERATION && s != DRIVE_STATE_OPERATION_ENABLED &&
                s != DRIVE_STATE_FAULT && s != DRIVE_STATE_FAULT_REACTION_ACTIVE;
        d->was[i] = (int8_t)s;
        off |= !(s == DRIVE_STATE_OPERATION_ENABLED || s == DRIVE_STATE_QUICK_STOP_ACTIVE ||
                 s == DRIVE_STATE_FAULT_REACTION_ACTIVE);
    }
    if (off)
        img->inputs |= EDGE_IN_DRIVE_OFF;
    else
        img->inputs &= ~(uint32_t)EDGE_IN_DRIVE_OFF;
    if (!d->started) {          /* an idle drive holds where it is until told otherwise */
        for (int i = 0; i < d->n; i++) {
            img->q_cmd[i] = img->q[i];
            img->qd_cmd[i] = img->qdd_cmd[i] = 0;
        }
        d->started = 1;
    }
    /* A drive in fault has taken its torque away: power is off already (category 0). */
    if (faulted)
        edge_request_stop(img, 0, DRIVE_FAULT_STATE);
    if (lost)
        edge_request_stop(img, 0, DRIVE_FAULT_ENABLE_LOST);
}

static int db_command(void *self, edge_image *img, const edge_command *cmd)
{
    drive_block *d = self;
    double a = cmd->args[0];
    switch (cmd->kind) {
    case DRIVE_CMD_POWER:
        if (!(a == DRIVE_POWER_OFF || a == DRIVE_POWER_ON || a == DRIVE_POWER_QUICK_STOP))
            return 2;
        d->power = (int)a;
        return 0;
    case DRIVE_CMD_MODE:
        if (!(a == DRIVE_MODE_CSP || a == DRIVE_MODE_CSV || a == DRIVE_MODE_CST))
            return 2;
        d->mode = (int)a;
        return 0;
    case DRIVE_CMD_CONTROLWORD:
        if (!(a == -1 || (a >= 0 && a <= 0xFFFF && a == floor(a))))
            return 2;
        d->manual_cw = (int)a;
        return 0;
    default:
        return d->ops->command ? d->ops->command(d->impl, cmd) : 1;
    }
}

static void db_write(void *self, edge_image *img)
{
    drive_block *d = self;
    for (int i = 0; i < d->n; i++) {
        int s = drive_state_of(d->tx[i].statusword);
        uint16_t cw;
        if (d->manual_cw >= 0)             /* a manual word cannot keep the power on */
            cw = img->stop_category == 0
                     ? (uint16_t)(d->manual_cw & ~DRIVE_CW_ENABLE_VOLTAGE_BIT)
                     : (uint16_t)d->manual_cw;
        else if (s == DRIVE_STATE_FAULT)      /* only a reset the cycle accepted resets a drive */
            cw = img->reset_request ? DRIVE_CW_FAULT_RESET_BIT : DRIVE_CW_DISABLE_VOLTAGE;
        else if (img->stop_category == 0)                  /* power off now */
            cw = DRIVE_CW_DISABLE_VOLTAGE;
        else
            cw = drive_controlword_toward(s, d->power);
        d->cw[i] = cw;
        img->controlword[i] = cw;
        drive_rx *r = &d->rx[i];
        r->controlword = cw;
        r->modes_of_operation = (int8_t)d->mode;
        r->target_position = img->q_cmd[i];
        r->target_velocity = img->qd_cmd[i];
        r->target_torque = img->tau_cmd[i];
        /* feed-forward where the mode takes it: CSP velocity and torque, CSV torque */
        r->velocity_offset = d->mode == DRIVE_MODE_CSP ? img->qd_cmd[i] : 0.0;
        r->torque_offset = d->mode == DRIVE_MODE_CST ? 0.0 : img->tau_cmd[i];
        r->acceleration_offset = d->mode == DRIVE_MODE_CST ? 0.0 : img->qdd_cmd[i];
    }
    d->ops->write(d->impl, d->rx, img->period_s);
}

static void db_release(void *self)
{
    drive_block *d = self;
    if (d->ops->release)
        d->ops->release(d->impl);
    free(d);
}

edge_block *drive_block_alloc(const char *name, int kind, const drive_ops *ops, void *self,
                              int n_axes, int power, int mode)
{
    drive_block *d = NULL;
    edge_block *b = NULL;
    if (ops && ops->read && ops->write && n_axes >= 1 && n_axes <= EDGE_MAX_AXES &&
        (d = calloc(1, sizeof(*d))) && (b = edge_block_new(name, d))) {
        d->ops = ops;
        d->impl = self;
        d->n = n_axes;
        d->power = power;
        d->mode = mode;
        d->manual_cw = -1;
        b->kind = kind;
        b->read = db_read;
        b->command = db_command;
        b->write = db_write;
        b->release = db_release;
        return b;
    }
    free(d);
    if (ops && ops->release)
        ops->release(self);
    return NULL;
}
