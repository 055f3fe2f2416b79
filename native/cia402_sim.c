/* cia402_sim.c — see cia402_sim.h. One power state machine per axis; delays count whole
 * periods while the controlword keeps asking for the transition. */
#include <math.h>
#include <stdlib.h>

#include "cia402_sim.h"

typedef struct axis {
    int state, mode, jammed, sto;
    uint16_t prev_cw, error, fault_cause;   /* fault_cause: error code while present */
    double timer_s;                 /* how long the pending transition has been asked for */
    double q, qd, tau, following, following_s;
} axis;

typedef struct cia402_sim {
    cia402_sim_config cfg;
    axis ax[EDGE_MAX_AXES];
} cia402_sim;

static int powered(int state)
{
    return state == DRIVE_STATE_SWITCHED_ON || state == DRIVE_STATE_OPERATION_ENABLED ||
           state == DRIVE_STATE_QUICK_STOP_ACTIVE || state == DRIVE_STATE_FAULT_REACTION_ACTIVE;
}

static void cia402_sim_read(void *self, drive_tx *tx, uint32_t *inputs)
{
    cia402_sim *s = self;
    for (int i = 0; i < s->cfg.n_axes; i++) {
        const axis *a = &s->ax[i];
        uint16_t sw = drive_state_pattern(a->state) | DRIVE_SW_REMOTE;
        if (powered(a->state))
            sw |= DRIVE_SW_VOLTAGE_ENABLED;
        if (a->state == DRIVE_STATE_OPERATION_ENABLED)
            sw |= DRIVE_SW_FOLLOWS_COMMAND;
        if (a->mode == DRIVE_MODE_CSP && fabs(a->following) > s->cfg.following_error_window)
            sw |= DRIVE_SW_FOLLOWING_ERROR;
        tx[i].statusword = sw;
        tx[i].modes_of_operation_display = (int8_t)a->mode;
        tx[i].error_code = a->error;
        tx[i].position_actual = a->q;
        tx[i].velocity_actual = a->qd;
        tx[i].torque_actual = a->tau;
        tx[i].following_error = a->following;
    }
}

static int cia402_sim_command(void *self, const edge_command *cmd)
{
    cia402_sim *s = self;
    double axis_arg = cmd->args[0], value = cmd->args[1];
    if (!(axis_arg >= 0 && axis_arg < s->cfg.n_axes && axis_arg == floor(axis_arg)))
        return 2;
    axis *a = &s->ax[(int)axis_arg];
    switch (cmd->kind) {
    case CIA402_SIM_CMD_JAM:
        a->jammed = value != 0;
        return 0;
    case CIA402_SIM_CMD_STO:
        a->sto = value != 0;
        return 0;
    case CIA402_SIM_CMD_FAULT:
        if (!(value >= 0 && value <= 0xFFFF))
            return 2;
        a->fault_cause = (uint16_t)value;
        return 0;
    default:
        return 1;
    }
}

/* One power transition per period: toward switched on and operation enabled after their
 * delays, everything else (shutdown, disable, quick stop, fault reset) at once. */
static void axis_power(const cia402_sim_config *c, axis *a, const drive_rx *rx, double dt)
{
    uint16_t cw = rx->controlword;
    if (a->fault_cause && a->state != DRIVE_STATE_NOT_READY_TO_SWITCH_ON &&
        a->state != DRIVE_STATE_FAULT_REACTION_ACTIVE && a->state != DRIVE_STATE_FAULT) {
        a->error = a->fault_cause;                                              /* 13 */
        a->state = DRIVE_STATE_FAULT_REACTION_ACTIVE;
    }
    if (a->sto && a->state != DRIVE_STATE_NOT_READY_TO_SWITCH_ON &&
        a->state != DRIVE_STATE_FAULT_REACTION_ACTIVE && a->state != DRIVE_STATE_FAULT) {
        a->state = DRIVE_STATE_SWITCH_ON_DISABLED;      /* no torque until released */
        a->timer_s = 0;
        a->prev_cw = cw;
        return;
    }
    int next = a->state;
    double delay = 0;
    switch (a->state) {
    case DRIVE_STATE_NOT_READY_TO_SWITCH_ON:                                   /* 1 */
        next = DRIVE_STATE_SWITCH_ON_DISABLED, delay = c->boot_s;
        break;
    case DRIVE_STATE_FAULT_REACTION_ACTIVE:                  /* 14, once the load stands */
        if (a->qd == 0)
            next = DRIVE_STATE_FAULT;
        break;
    default:
        next = drive_state_next(a->state, cw, a->prev_cw, c->quick_stop_option);
        if (a->state == DRIVE_STATE_FAULT && a->fault_cause)
            next = a->state;                /* 15 refused while the cause is present */
        if (a->state == DRIVE_STATE_READY_TO_SWITCH_ON && (next == DRIVE_STATE_SWITCHED_ON ||
                                                           next == DRIVE_STATE_OPERATION_ENABLED))
            next = DRIVE_STATE_SWITCHED_ON, delay = c->switch_on_s;         /* 3 (then 4) */
        else if (a->state == DRIVE_STATE_SWITCHED_ON && next == DRIVE_STATE_OPERATION_ENABLED)
            delay = c->enable_s;                                                 /* 4 */
    }
    a->prev_cw = cw;
    if (next == a->state) {
        a->timer_s = 0;
        return;
    }
    a->timer_s += dt;
    if (a->timer_s < delay - 1e-12)
        return;
    a->timer_s = 0;
    if (a->state == DRIVE_STATE_FAULT)
        a->error = DRIVE_ERROR_NONE;
    if (next == DRIVE_STATE_OPERATION_ENABLED) {   /* take over where the load is */
        a->following_s = 0;
    }
    a->state = next;
    if (next == DRIVE_STATE_QUICK_STOP_ACTIVE && c->quick_stop_option == DRIVE_QS_DISABLE_DRIVE)
        a->state = DRIVE_STATE_SWITCH_ON_DISABLED;                              /* 12 */
}

static double clamp(double x, double lim)
{
    return fmax(-lim, fmin(lim, x));
}

/* The load for one period: the mode's setpoint through velocity, torque and (while
 * stopping) quick-stop limits; the brakes hold it outside the powered motion states. */
static void axis_motion(const cia402_sim_config *c, int i, axis *a, const drive_rx *rx,
                        double dt)
{
    const double vmax = c->max_velocity[i], J = c->inertia[i], tmax = c->max_torque[i];
    const double amax = tmax / J;
    double qd = 0, qd0 = a->qd;
    if (a->state == DRIVE_STATE_OPERATION_ENABLED) {
        int mode = rx->modes_of_operation;
        if (mode == DRIVE_MODE_CSP || mode == DRIVE_MODE_CSV || mode == DRIVE_MODE_CST)
            a->mode = mode;
        if (a->mode == DRIVE_MODE_CSP)
            qd = clamp(rx->velocity_offset +
                       2 * M_PI * c->position_gain_hz * (rx->target_position - a->q), vmax);
        else if (a->mode == DRIVE_MODE_CSV)
            qd = clamp(rx->target_velocity, vmax);
        else
            qd = clamp(qd0 + clamp(rx->target_torque + rx->torque_offset, tmax) / J * dt, vmax);
        qd = qd0 + clamp(qd - qd0, amax * dt);
    } else if (a->state == DRIVE_STATE_QUICK_STOP_ACTIVE ||
               a->state == DRIVE_STATE_FAULT_REACTION_ACTIVE) {
        double dv = c->quick_stop_deceleration * dt;
        qd = fabs(qd0) <= dv ? 0 : qd0 - copysign(dv, qd0);
    }
    if (a->jammed)
        qd = 0;
    a->tau = a->jammed && a->state == DRIVE_STATE_OPERATION_ENABLED
                 ? copysign(tmax, rx->target_position - a->q)
                 : J * (qd - qd0) / dt;
    a->qd = qd;
    a->q += qd * dt;
}

/* CSP while enabled: the following error (0x60F4) and its watch (0x6065, 0x6066). */
static void axis_following(const cia402_sim_config *c, axis *a, const drive_rx *rx, double dt)
{
    if (a->state != DRIVE_STATE_OPERATION_ENABLED || a->mode != DRIVE_MODE_CSP) {
        a->following = 0;
        a->following_s = 0;
        return;
    }
    a->following = rx->target_position - a->q;
    a->following_s = fabs(a->following) > c->following_error_window ? a->following_s + dt : 0;
    if (a->following_s > c->following_error_timeout_s + 1e-12) {
        a->error = DRIVE_ERROR_FOLLOWING;                                       /* 13 */
        a->state = DRIVE_STATE_FAULT_REACTION_ACTIVE;
    }
}

static void cia402_sim_write(void *self, const drive_rx *rx, double period_s)
{
    cia402_sim *s = self;
    for (int i = 0; i < s->cfg.n_axes; i++) {
        axis *a = &s->ax[i];
        axis_power(&s->cfg, a, &rx[i], period_s);
        if (a->state == DRIVE_STATE_QUICK_STOP_ACTIVE && a->qd == 0 &&
            s->cfg.quick_stop_option == DRIVE_QS_QUICK_STOP_RAMP)
            a->state = DRIVE_STATE_SWITCH_ON_DISABLED;              /* 12: ramp ended */
        axis_motion(&s->cfg, i, a, &rx[i], period_s);
        axis_following(&s->cfg, a, &rx[i], period_s);
    }
}

static void cia402_sim_release(void *self)
{
    free(self);
}

static const drive_ops CIA402_SIM_OPS = {
    .read = cia402_sim_read,
    .command = cia402_sim_command,
    .write = cia402_sim_write,
    .release = cia402_sim_release,
};

edge_block *cia402_sim_block_alloc(const cia402_sim_config *cfg)
{
    if (!cfg || cfg->n_axes < 1 || cfg->n_axes > EDGE_MAX_AXES ||
        !(cfg->position_gain_hz > 0 && cfg->position_gain_hz < 1e4) ||
        !(cfg->boot_s >= 0 && cfg->boot_s < 60) || !(cfg->switch_on_s >= 0 && cfg->switch_on_s < 60) ||
        !(cfg->enable_s >= 0 && cfg->enable_s < 60) || !(cfg->following_error_window > 0) ||
        !(cfg->following_error_timeout_s >= 0 && cfg->following_error_timeout_s < 60) ||
        !(cfg->quick_stop_deceleration > 0 && isfinite(cfg->quick_stop_deceleration)) ||
        !(cfg->quick_stop_option == DRIVE_QS_DISABLE_DRIVE ||
          cfg->quick_stop_option == DRIVE_QS_QUICK_STOP_RAMP ||
          cfg->quick_stop_option == DRIVE_QS_QUICK_STOP_RAMP_STAY))
        return NULL;
    for (int i = 0; i < cfg->n_axes; i++)
        if (!isfinite(cfg->initial_position[i]) ||
            !(cfg->max_velocity[i] > 0 && isfinite(cfg->max_velocity[i])) ||
            !(cfg->max_torque[i] > 0 && isfinite(cfg->max_torque[i])) ||
            !(cfg->inertia[i] > 0 && isfinite(cfg->inertia[i])))
            return NULL;
    cia402_sim *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    for (int i = 0; i < cfg->n_axes; i++) {
        s->ax[i].state = DRIVE_STATE_NOT_READY_TO_SWITCH_ON;
        s->ax[i].mode = DRIVE_MODE_CSP;
        s->ax[i].q = cfg->initial_position[i];
    }
    return drive_block_alloc("cia402_sim", EDGE_BLOCK_CIA402_SIM, &CIA402_SIM_OPS, s, cfg->n_axes, DRIVE_POWER_OFF,
                             DRIVE_MODE_CSP);
}
