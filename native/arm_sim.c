/* arm_sim.c — see arm_sim.h. Semi-implicit Euler per substep with viscous friction
 * implicit: (M + h B) qd' = M qd + h (tau - bias + tau_ext - c), M factored once per tick.
 * Coulomb torques c solve a small box-constrained problem (arm_sim_coulomb), so a joint
 * held below breakaway sticks exactly instead of chattering around zero velocity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arm_sim.h"

typedef struct arm_sim {
    arm_model model;
    arm_sim_config cfg;
    int n, mode, estop_pressed, gravity_comp;
    int state;                        /* drive_state, one for all joints */
    uint16_t prev_cw;
    double following[ARM_MAX_LINKS];  /* target - actual position of the last write */
    double q[ARM_MAX_LINKS], qd[ARM_MAX_LINKS];
    double tau_motor[ARM_MAX_LINKS], tau_ext[ARM_MAX_LINKS];
    double wrench_ext[6];             /* on the tool point, world axes */
    int has_wrench;
    double integral[ARM_MAX_LINKS];   /* servo: integral of the position error, rad*s */
} arm_sim;

static void arm_sim_clear_integral(arm_sim *s)
{
    memset(s->integral, 0, sizeof s->integral);
}

static void arm_sim_read(void *self, drive_tx *tx, uint32_t *inputs)
{
    arm_sim *s = self;
    uint16_t sw = drive_state_pattern(s->state) | DRIVE_SW_REMOTE;
    if (s->state == DRIVE_STATE_OPERATION_ENABLED)
        sw |= DRIVE_SW_VOLTAGE_ENABLED | DRIVE_SW_FOLLOWS_COMMAND;
    else if (s->state == DRIVE_STATE_SWITCHED_ON)
        sw |= DRIVE_SW_VOLTAGE_ENABLED;
    for (int i = 0; i < s->n; i++) {
        tx[i].position_actual = s->q[i];
        tx[i].velocity_actual = s->qd[i];
        tx[i].torque_actual = s->tau_motor[i];
        tx[i].following_error = s->following[i];
        tx[i].statusword = sw;
        tx[i].modes_of_operation_display = (int8_t)s->mode;
        tx[i].error_code = DRIVE_ERROR_NONE;
    }
    if (s->estop_pressed)
        *inputs |= EDGE_IN_ESTOP;
    else
        *inputs &= ~(uint32_t)EDGE_IN_ESTOP;
}

static int arm_sim_command(void *self, const edge_command *cmd)
{
    arm_sim *s = self;
    switch (cmd->kind) {
    case ARM_SIM_CMD_EXT_TORQUE:
        for (int i = 0; i < s->n; i++)
            if (!isfinite(cmd->args[i]))
                return 2;
        for (int i = 0; i < s->n; i++)
            s->tau_ext[i] = cmd->args[i];
        return 0;
    case ARM_SIM_CMD_GRAVITY_COMP:
        if (!(cmd->args[0] == 0 || cmd->args[0] == 1))
            return 2;
        s->gravity_comp = cmd->args[0] != 0;
        return 0;
    case ARM_SIM_CMD_ESTOP:
        s->estop_pressed = cmd->args[0] != 0;
        return 0;
    case ARM_SIM_CMD_EXT_WRENCH:
        for (int k = 0; k < 6; k++)
            if (!isfinite(cmd->args[k]))
                return 2;
        s->has_wrench = 0;
        for (int k = 0; k < 6; k++) {
            s->wrench_ext[k] = cmd->args[k];
            s->has_wrench |= cmd->args[k] != 0;
        }
        return 0;
    case ARM_SIM_CMD_SET_STATE:
        for (int i = 0; i < s->n; i++)
            if (!isfinite(cmd->args[i]))
                return 2;
        for (int i = 0; i < s->n; i++) {
            s->q[i] = cmd->args[i];
            s->qd[i] = 0;
        }
        arm_sim_clear_integral(s);
        return 0;
    default:
        return 1;
    }
}

/* Motor torque for this substep, within the torque limit; M and g are at the current q.
 * The servo's gains scale with the joint's own inertia M_ii(q), so every joint gets the
 * same bandwidth; its integral stops growing while the torque is saturated. */
static void arm_sim_motor_torque(arm_sim *s, const drive_rx *rx, const double *M,
                                 const double *g, double h, double *tau)
{
    const int n = s->n;
    const double w = 2 * M_PI * s->cfg.servo_bandwidth_hz;
    const double wi = 2 * M_PI * s->cfg.servo_integral_hz;
    for (int i = 0; i < n; i++) {
        double ff = 0;
        if (s->mode != DRIVE_MODE_CST)
            for (int j = 0; j < n; j++)
                ff += M[i * n + j] * rx[j].acceleration_offset;
        double m_ii = M[i * n + i];
        switch (s->mode) {
        case DRIVE_MODE_CSP: {
            double e = rx[i].target_position - s->q[i];
            double v_cmd = rx[i].velocity_offset;
            double friction = s->cfg.viscous[i] * v_cmd +
                              (v_cmd != 0 ? copysign(s->cfg.coulomb[i], v_cmd) : 0);
            double pd = m_ii * (w * w * (e + wi * s->integral[i]) +
                                2 * s->cfg.servo_damping * w * (v_cmd - s->qd[i]));
            tau[i] = pd + ff + g[i] + friction + rx[i].torque_offset;
            if (fabs(tau[i]) < s->cfg.torque_limit[i])          /* anti-windup */
                s->integral[i] += h * e;
            break;
        }
        case DRIVE_MODE_CSV: {          /* the velocity loop of the servo alone */
            double v_cmd = rx[i].target_velocity;
            double friction = s->cfg.viscous[i] * v_cmd +
                              (v_cmd != 0 ? copysign(s->cfg.coulomb[i], v_cmd) : 0);
            tau[i] = m_ii * 2 * s->cfg.servo_damping * w * (v_cmd - s->qd[i]) + ff + g[i] +
                     friction + rx[i].torque_offset;
            break;
        }
        default:                        /* CST */
            tau[i] = rx[i].target_torque + (s->gravity_comp ? g[i] : 0);
        }
        double lim = s->cfg.torque_limit[i];
        tau[i] = fmax(-lim, fmin(lim, tau[i]));
    }
}

/* Coulomb friction as a box-constrained problem: find c with |c_i| <= coulomb_i such that
 * each joint with |c_i| < coulomb_i stands still (it sticks) and the others slip against
 * the full Coulomb torque. Projected Gauss-Seidel on A v = rhs - h c settles which joints
 * stick; the velocities of the slipping joints then come from the reduced system with the
 * sticking joints held at exactly zero, so a stuck arm does not creep. */
#define ARM_SIM_PGS_SWEEPS 12
static void arm_sim_coulomb(const arm_sim *s, double h, const double *A_full, const double *Ainv,
                            double *Aff, const double *rhs, double *c, double *v)
{
    const int n = s->n;
    for (int i = 0; i < n; i++)
        c[i] = 0;
    for (int sweep = 0; sweep < ARM_SIM_PGS_SWEEPS; sweep++)
        for (int i = 0; i < n; i++) {
            double fc = s->cfg.coulomb[i];
            if (fc <= 0)
                continue;
            double c_new = fmax(-fc, fmin(fc, c[i] + v[i] / (h * Ainv[i * n + i])));
            double dc = c_new - c[i];
            if (dc == 0)
                continue;
            c[i] = c_new;
            for (int k = 0; k < n; k++)
                v[k] -= h * Ainv[i * n + k] * dc;
        }
    int slip[ARM_MAX_LINKS], nf = 0;
    for (int i = 0; i < n; i++) {
        double fc = s->cfg.coulomb[i];
        if (fc <= 0 || fabs(c[i]) >= fc)
            slip[nf++] = i;
    }
    for (int i = 0; i < n; i++)
        v[i] = 0;
    if (nf == 0)
        return;
    double b[ARM_MAX_LINKS];
    for (int a = 0; a < nf; a++) {
        int i = slip[a];
        b[a] = rhs[i] - h * (s->cfg.coulomb[i] > 0 ? c[i] : 0);
        for (int bb = 0; bb < nf; bb++)
            Aff[a * nf + bb] = A_full[i * n + slip[bb]];
    }
    if (arm_solve_spd(nf, Aff, b))
        return;                                   /* cannot happen for SPD A: hold */
    for (int a = 0; a < nf; a++)
        v[slip[a]] = b[a];
}

/* The power state machine without delays; a quick stop brakes at once (option 0). */
static void arm_sim_power(arm_sim *s, const drive_rx *rx)
{
    s->state = drive_state_next(s->state, rx[0].controlword, s->prev_cw,
                                DRIVE_QS_DISABLE_DRIVE);
    if (s->state == DRIVE_STATE_QUICK_STOP_ACTIVE)
        s->state = DRIVE_STATE_SWITCH_ON_DISABLED;                       /* transition 12 */
    s->prev_cw = rx[0].controlword;
    int mode = rx[0].modes_of_operation;
    if (mode != s->mode &&
        (mode == DRIVE_MODE_CSP || mode == DRIVE_MODE_CSV || mode == DRIVE_MODE_CST)) {
        s->mode = mode;
        arm_sim_clear_integral(s);
    }
    for (int i = 0; i < s->n; i++)
        s->following[i] = s->mode == DRIVE_MODE_CSP ? rx[i].target_position - s->q[i] : 0;
}

static void arm_sim_write(void *self, const drive_rx *rx, double period_s)
{
    arm_sim *s = self;
    const int n = s->n;
    arm_sim_power(s, rx);
    if (s->state != DRIVE_STATE_OPERATION_ENABLED) {      /* no torque, brakes engaged */
        for (int i = 0; i < n; i++)
            s->qd[i] = s->tau_motor[i] = 0;
        arm_sim_clear_integral(s);
        return;
    }
    const double h = period_s / s->cfg.substeps;
    double M[ARM_MAX_LINKS * ARM_MAX_LINKS], A[ARM_MAX_LINKS * ARM_MAX_LINKS];
    double g[ARM_MAX_LINKS], bias[ARM_MAX_LINKS], tau[ARM_MAX_LINKS];
    double rhs[ARM_MAX_LINKS], v[ARM_MAX_LINKS], c[ARM_MAX_LINKS];
    double Ainv[ARM_MAX_LINKS * ARM_MAX_LINKS], Aff[ARM_MAX_LINKS * ARM_MAX_LINKS];
    double zero[ARM_MAX_LINKS] = {0};
    int has_coulomb = 0;
    /* The mass matrix changes little within one tick: factor it once per tick. */
    arm_mass_matrix(&s->model, s->q, M);
    memcpy(A, M, sizeof(double) * n * n);
    for (int i = 0; i < n; i++)
        A[i * n + i] += h * s->cfg.viscous[i];
    double A_full[ARM_MAX_LINKS * ARM_MAX_LINKS];
    memcpy(A_full, A, sizeof(double) * n * n);
    if (arm_cholesky(n, A)) {           /* a degenerate model: hold rather than diverge */
        for (int i = 0; i < n; i++)
            s->qd[i] = 0;
        return;
    }
    for (int i = 0; i < n; i++)
        has_coulomb |= s->cfg.coulomb[i] > 0;
    if (has_coulomb)
        for (int j = 0; j < n; j++) {               /* columns of A^-1 (symmetric) */
            double *col = Ainv + j * n;
            memset(col, 0, sizeof(double) * n);
            col[j] = 1;
            arm_cholesky_solve(n, A, col);
        }
    double ext[ARM_MAX_LINKS], J[6 * ARM_MAX_LINKS];
    for (int sub = 0; sub < s->cfg.substeps; sub++) {
        for (int i = 0; i < n; i++)
            ext[i] = s->tau_ext[i];
        if (s->has_wrench) {            /* the contact moves with the arm: J(q)^T w */
            arm_jacobian(&s->model, s->q, J);
            for (int i = 0; i < n; i++)
                for (int k = 0; k < 6; k++)
                    ext[i] += J[k * n + i] * s->wrench_ext[k];
        }
        arm_rnea(&s->model, s->q, zero, zero, NULL, g);
        arm_rnea(&s->model, s->q, s->qd, zero, NULL, bias);
        arm_sim_motor_torque(s, rx, M, g, h, tau);
        for (int i = 0; i < n; i++) {
            double mqd = 0;
            for (int j = 0; j < n; j++)
                mqd += M[i * n + j] * s->qd[j];
            rhs[i] = mqd + h * (tau[i] - bias[i] + ext[i]);
            v[i] = rhs[i];
        }
        arm_cholesky_solve(n, A, v);                  /* velocity without Coulomb */
        if (has_coulomb)
            arm_sim_coulomb(s, h, A_full, Ainv, Aff, rhs, c, v);
        for (int i = 0; i < n; i++) {
            s->qd[i] = v[i];
            s->q[i] += h * v[i];
            /* reported torque: the mean over the tick, as a drive's current filter shows */
            s->tau_motor[i] = sub == 0 ? tau[i] / s->cfg.substeps
                                       : s->tau_motor[i] + tau[i] / s->cfg.substeps;
        }
    }
}

static void arm_sim_release(void *self)
{
    free(self);
}

static const drive_ops ARM_SIM_OPS = {
    .read = arm_sim_read,
    .command = arm_sim_command,
    .write = arm_sim_write,
    .release = arm_sim_release,
};

edge_block *arm_sim_block_alloc(const arm_model *model, const arm_sim_config *cfg)
{
    if (!model || !cfg || arm_model_check(model) || model->n > EDGE_MAX_AXES)
        return NULL;
    if (cfg->substeps < 1 || cfg->substeps > ARM_SIM_MAX_SUBSTEPS ||
        !(cfg->servo_bandwidth_hz > 0) || !(cfg->servo_damping >= 0) ||
        !(cfg->servo_integral_hz >= 0) ||
        !(cfg->mode == DRIVE_MODE_CSP || cfg->mode == DRIVE_MODE_CSV ||
          cfg->mode == DRIVE_MODE_CST))
        return NULL;
    for (int i = 0; i < model->n; i++)
        if (!(cfg->viscous[i] >= 0) || !(cfg->coulomb[i] >= 0) || !(cfg->torque_limit[i] > 0) ||
            !isfinite(cfg->initial_position[i]))
            return NULL;
    arm_sim *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->model = *model;
    s->cfg = *cfg;
    s->n = model->n;
    s->mode = cfg->mode;
    s->gravity_comp = cfg->gravity_compensation != 0;
    s->state = cfg->enabled ? DRIVE_STATE_OPERATION_ENABLED : DRIVE_STATE_SWITCH_ON_DISABLED;
    s->prev_cw = cfg->enabled ? DRIVE_CW_ENABLE_OPERATION : DRIVE_CW_DISABLE_VOLTAGE;
    for (int i = 0; i < s->n; i++)
        s->q[i] = cfg->initial_position[i];
    return drive_block_alloc("arm_sim", EDGE_BLOCK_ARM_SIM, &ARM_SIM_OPS, s, s->n,
                             cfg->enabled ? DRIVE_POWER_ON : DRIVE_POWER_OFF, cfg->mode);
}
