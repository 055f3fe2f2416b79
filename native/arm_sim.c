/* arm_sim.c — see arm_sim.h. Semi-implicit Euler per substep: viscous friction is
 * implicit ((M + h B) qd' = M qd + h (tau - bias + tau_ext - c)), and Coulomb friction c
 * is the torque that would stop each joint, saturated at its Coulomb level, so a joint
 * held below breakaway sticks exactly instead of chattering around zero velocity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arm_sim.h"

typedef struct arm_sim {
    arm_model model;
    arm_sim_config cfg;
    int n, mode, estop_pressed, started;
    double q[ARM_MAX_LINKS], qd[ARM_MAX_LINKS];
    double tau_motor[ARM_MAX_LINKS], tau_ext[ARM_MAX_LINKS];
    double integral[ARM_MAX_LINKS];   /* servo: integral of the position error, rad*s */
} arm_sim;

static void arm_sim_clear_integral(arm_sim *s)
{
    memset(s->integral, 0, sizeof s->integral);
}

static void arm_sim_read(void *self, edge_image *img)
{
    arm_sim *s = self;
    for (int i = 0; i < s->n; i++) {
        img->q[i] = s->q[i];
        img->qd[i] = s->qd[i];
        img->tau[i] = s->tau_motor[i];
    }
    if (!s->started) {          /* an idle servo holds where it is until told otherwise */
        for (int i = 0; i < s->n; i++) {
            img->q_cmd[i] = s->q[i];
            img->qd_cmd[i] = img->qdd_cmd[i] = 0;
        }
        s->started = 1;
    }
    if (s->estop_pressed)
        img->inputs |= EDGE_IN_ESTOP;
    else
        img->inputs &= ~(uint32_t)EDGE_IN_ESTOP;
}

static int arm_sim_command(void *self, edge_image *img, const edge_command *cmd)
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
    case ARM_SIM_CMD_MODE: {
        int mode = (int)cmd->args[0];
        if (mode < ARM_SIM_MODE_POSITION || mode > ARM_SIM_MODE_TORQUE_RAW)
            return 2;
        s->mode = mode;
        arm_sim_clear_integral(s);
        return 0;
    }
    case ARM_SIM_CMD_ESTOP:
        s->estop_pressed = cmd->args[0] != 0;
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
static void arm_sim_motor_torque(arm_sim *s, const edge_image *img, const double *M,
                                 const double *g, double h, double *tau)
{
    const int n = s->n;
    const double w = 2 * M_PI * s->cfg.servo_bandwidth_hz;
    const double wi = 2 * M_PI * s->cfg.servo_integral_hz;
    for (int i = 0; i < n; i++) {
        switch (s->mode) {
        case ARM_SIM_MODE_POSITION: {
            double ff = 0;
            for (int j = 0; j < n; j++)
                ff += M[i * n + j] * img->qdd_cmd[j];
            double m_ii = M[i * n + i], e = img->q_cmd[i] - s->q[i];
            double v_cmd = img->qd_cmd[i];
            double friction = s->cfg.viscous[i] * v_cmd +
                              (v_cmd != 0 ? copysign(s->cfg.coulomb[i], v_cmd) : 0);
            double pd = m_ii * (w * w * (e + wi * s->integral[i]) +
                                2 * s->cfg.servo_damping * w * (v_cmd - s->qd[i]));
            tau[i] = pd + ff + g[i] + friction + img->tau_cmd[i];
            if (fabs(tau[i]) < s->cfg.torque_limit[i])          /* anti-windup */
                s->integral[i] += h * e;
            break;
        }
        case ARM_SIM_MODE_TORQUE:
            tau[i] = img->tau_cmd[i] + g[i];
            break;
        default:
            tau[i] = img->tau_cmd[i];
        }
        double lim = s->cfg.torque_limit[i];
        tau[i] = fmax(-lim, fmin(lim, tau[i]));
    }
}

static void arm_sim_write(void *self, edge_image *img)
{
    arm_sim *s = self;
    const int n = s->n;
    if (img->stop_category == 0) {      /* power removed, brakes engaged */
        for (int i = 0; i < n; i++)
            s->qd[i] = s->tau_motor[i] = 0;
        arm_sim_clear_integral(s);
        return;
    }
    const double h = img->period_s / s->cfg.substeps;
    double M[ARM_MAX_LINKS * ARM_MAX_LINKS], A[ARM_MAX_LINKS * ARM_MAX_LINKS];
    double g[ARM_MAX_LINKS], bias[ARM_MAX_LINKS], tau[ARM_MAX_LINKS];
    double rhs[ARM_MAX_LINKS], v[ARM_MAX_LINKS], col[ARM_MAX_LINKS], ainv_diag[ARM_MAX_LINKS];
    double zero[ARM_MAX_LINKS] = {0};
    for (int sub = 0; sub < s->cfg.substeps; sub++) {
        arm_mass_matrix(&s->model, s->q, M);
        arm_rnea(&s->model, s->q, zero, zero, NULL, g);
        arm_rnea(&s->model, s->q, s->qd, zero, NULL, bias);
        arm_sim_motor_torque(s, img, M, g, h, tau);
        memcpy(A, M, sizeof(double) * n * n);
        for (int i = 0; i < n; i++)
            A[i * n + i] += h * s->cfg.viscous[i];
        if (arm_cholesky(n, A)) {       /* a degenerate model: hold rather than diverge */
            for (int i = 0; i < n; i++)
                s->qd[i] = 0;
            continue;
        }
        for (int i = 0; i < n; i++) {
            double mqd = 0;
            for (int j = 0; j < n; j++)
                mqd += M[i * n + j] * s->qd[j];
            rhs[i] = mqd + h * (tau[i] - bias[i] + s->tau_ext[i]);
            v[i] = rhs[i];
        }
        arm_cholesky_solve(n, A, v);                  /* velocity without Coulomb */
        for (int i = 0; i < n; i++) {
            if (s->cfg.coulomb[i] <= 0) {
                ainv_diag[i] = 0;
                continue;
            }
            memset(col, 0, sizeof(double) * n);
            col[i] = 1;
            arm_cholesky_solve(n, A, col);
            ainv_diag[i] = col[i];
        }
        for (int i = 0; i < n; i++) {
            if (s->cfg.coulomb[i] > 0) {
                double stop = v[i] / (h * ainv_diag[i]);
                double c = fmax(-s->cfg.coulomb[i], fmin(s->cfg.coulomb[i], stop));
                rhs[i] -= h * c;
            }
        }
        memcpy(v, rhs, sizeof(double) * n);
        arm_cholesky_solve(n, A, v);
        for (int i = 0; i < n; i++) {
            s->qd[i] = v[i];
            s->q[i] += h * v[i];
            s->tau_motor[i] = tau[i];
        }
    }
}

static void arm_sim_release(void *self)
{
    free(self);
}

edge_block *arm_sim_block_alloc(const arm_model *model, const arm_sim_config *cfg)
{
    if (!model || !cfg || arm_model_check(model) || model->n > EDGE_MAX_AXES)
        return NULL;
    if (cfg->substeps < 1 || !(cfg->servo_bandwidth_hz > 0) || !(cfg->servo_damping >= 0) ||
        !(cfg->servo_integral_hz >= 0) ||
        cfg->mode < ARM_SIM_MODE_POSITION || cfg->mode > ARM_SIM_MODE_TORQUE_RAW)
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
    for (int i = 0; i < s->n; i++)
        s->q[i] = cfg->initial_position[i];
    edge_block *b = edge_block_new("arm_sim", s);
    if (!b) {
        free(s);
        return NULL;
    }
    b->read = arm_sim_read;
    b->command = arm_sim_command;
    b->write = arm_sim_write;
    b->release = arm_sim_release;
    return b;
}
