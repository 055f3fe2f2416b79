/* drive_sim.c — see drive_sim.h. Behind the drive contract (drive.h): CSP only, one
 * power stage, no delays; it starts in operation enabled and its block keeps it there. */
#include <math.h>
#include <stdlib.h>

#include "drive_sim.h"

typedef struct drive_sim {
    int n;
    double tau_s;
    int estop_pressed, state;
    uint16_t prev_cw;
    double q[EDGE_MAX_AXES], qd[EDGE_MAX_AXES];
} drive_sim;

static void drive_sim_read(void *self, drive_tx *tx, uint32_t *inputs)
{
    drive_sim *d = self;
    uint16_t sw = drive_state_pattern(d->state) | DRIVE_SW_REMOTE;
    if (d->state == DRIVE_STATE_OPERATION_ENABLED)
        sw |= DRIVE_SW_VOLTAGE_ENABLED | DRIVE_SW_FOLLOWS_COMMAND;
    for (int i = 0; i < d->n; i++) {
        tx[i].position_actual = d->q[i];
        tx[i].velocity_actual = d->qd[i];
        tx[i].torque_actual = 0;
        tx[i].following_error = 0;
        tx[i].statusword = sw;
        tx[i].modes_of_operation_display = DRIVE_MODE_CSP;
        tx[i].error_code = DRIVE_ERROR_NONE;
    }
    if (d->estop_pressed)
        *inputs |= EDGE_IN_ESTOP;
    else
        *inputs &= ~(uint32_t)EDGE_IN_ESTOP;
}

static int drive_sim_command(void *self, const edge_command *cmd)
{
    drive_sim *d = self;
    if (cmd->kind != DRIVE_SIM_CMD_ESTOP)
        return 1;
    d->estop_pressed = cmd->args[0] != 0;
    return 0;
}

static void drive_sim_write(void *self, const drive_rx *rx, double dt)
{
    drive_sim *d = self;
    d->state = drive_state_next(d->state, rx[0].controlword, d->prev_cw,
                                DRIVE_QS_DISABLE_DRIVE);
    if (d->state == DRIVE_STATE_QUICK_STOP_ACTIVE)
        d->state = DRIVE_STATE_SWITCH_ON_DISABLED;
    d->prev_cw = rx[0].controlword;
    const double alpha = dt / (d->tau_s + dt);
    for (int i = 0; i < d->n; i++) {
        if (d->state != DRIVE_STATE_OPERATION_ENABLED) {   /* no power, brakes engaged */
            d->qd[i] = 0;
            continue;
        }
        double q_next = d->q[i] + alpha * (rx[i].target_position - d->q[i]);
        d->qd[i] = (q_next - d->q[i]) / dt;
        d->q[i] = q_next;
    }
}

static void drive_sim_release(void *self)
{
    free(self);
}

static const drive_ops DRIVE_SIM_OPS = {
    .read = drive_sim_read,
    .command = drive_sim_command,
    .write = drive_sim_write,
    .release = drive_sim_release,
};

edge_block *drive_sim_block_alloc(int n_axes, double tau_s, const double *initial_position)
{
    if (n_axes < 1 || n_axes > EDGE_MAX_AXES || !(tau_s >= 0))
        return NULL;
    drive_sim *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->n = n_axes;
    d->tau_s = tau_s;
    d->state = DRIVE_STATE_OPERATION_ENABLED;
    d->prev_cw = DRIVE_CW_ENABLE_OPERATION;
    for (int i = 0; i < n_axes; i++)
        d->q[i] = initial_position[i];
    return drive_block_alloc("drive_sim", EDGE_BLOCK_DRIVE_SIM, &DRIVE_SIM_OPS, d, n_axes, DRIVE_POWER_ON,
                             DRIVE_MODE_CSP);
}
