/* drive.h — the contract every drive implements each tick, after the CiA 402 drive
 * profile (IEC 61800-7-201, CiA 402 part 2) that EtherCAT and CANopen servo drives speak.
 *
 * Per axis per tick, a drive takes a process image of outputs (drive_rx: controlword
 * 0x6040, modes of operation 0x6060, targets 0x607A / 0x60FF / 0x6071 and the offsets
 * 0x60B1 / 0x60B2) and returns one of inputs (drive_tx: statusword 0x6041, modes display
 * 0x6061, actual position / velocity / torque 0x6064 / 0x606C / 0x6077, following error
 * 0x60F4, error code 0x603F). Units are SI (rad or m, rad/s, N*m): a fieldbus transport
 * scales to increments and per-mille of rated torque where it maps the PDOs.
 *
 * What implements drive_ops: the simulated drives (arm_sim, cia402_sim) and, later, a
 * fieldbus transport that exchanges the same images in its PDO frames. drive_block_alloc
 * wraps any drive_ops into a cycle block: it is the master side, mapping the edge image to
 * the process image and running the controlword sequence toward the power state the
 * controller asked for (DRIVE_CMD_POWER), every tick, in C.
 */
#ifndef EDGE_DRIVE_H
#define EDGE_DRIVE_H
#include <stdint.h>

#include "block.h"

/* cffi:begin */
/* Object dictionary indices (CiA 402) of what the images carry, for a PDO mapping. */
typedef enum drive_object {
    DRIVE_OBJ_ERROR_CODE = 0x603F,
    DRIVE_OBJ_CONTROLWORD = 0x6040,
    DRIVE_OBJ_STATUSWORD = 0x6041,
    DRIVE_OBJ_QUICK_STOP_OPTION_CODE = 0x605A,
    DRIVE_OBJ_MODES_OF_OPERATION = 0x6060,
    DRIVE_OBJ_MODES_OF_OPERATION_DISPLAY = 0x6061,
    DRIVE_OBJ_POSITION_ACTUAL_VALUE = 0x6064,
    DRIVE_OBJ_FOLLOWING_ERROR_WINDOW = 0x6065,
    DRIVE_OBJ_FOLLOWING_ERROR_TIME_OUT = 0x6066,
    DRIVE_OBJ_VELOCITY_ACTUAL_VALUE = 0x606C,
    DRIVE_OBJ_TARGET_TORQUE = 0x6071,
    DRIVE_OBJ_TORQUE_ACTUAL_VALUE = 0x6077,
    DRIVE_OBJ_TARGET_POSITION = 0x607A,
    DRIVE_OBJ_QUICK_STOP_DECELERATION = 0x6085,
    DRIVE_OBJ_VELOCITY_OFFSET = 0x60B1,
    DRIVE_OBJ_TORQUE_OFFSET = 0x60B2,
    DRIVE_OBJ_FOLLOWING_ERROR_ACTUAL_VALUE = 0x60F4,
    DRIVE_OBJ_TARGET_VELOCITY = 0x60FF
} drive_object;

/* Modes of operation (0x6060) this contract uses: the cyclic synchronous ones. */
typedef enum drive_mode {
    DRIVE_MODE_NONE = 0,
    DRIVE_MODE_CSP = 8,     /* cyclic synchronous position */
    DRIVE_MODE_CSV = 9,     /* cyclic synchronous velocity */
    DRIVE_MODE_CST = 10     /* cyclic synchronous torque */
} drive_mode;

/* The power drive system's states. The numbers are ours; the statusword says the state
 * through the patterns of drive_state_pattern (the standard's table). */
typedef enum drive_state {
    DRIVE_STATE_NOT_READY_TO_SWITCH_ON = 0,
    DRIVE_STATE_SWITCH_ON_DISABLED = 1,
    DRIVE_STATE_READY_TO_SWITCH_ON = 2,
    DRIVE_STATE_SWITCHED_ON = 3,
    DRIVE_STATE_OPERATION_ENABLED = 4,
    DRIVE_STATE_QUICK_STOP_ACTIVE = 5,
    DRIVE_STATE_FAULT_REACTION_ACTIVE = 6,
    DRIVE_STATE_FAULT = 7
} drive_state;

/* Statusword (0x6041) bits. */
typedef enum drive_status_bit {
    DRIVE_SW_READY_TO_SWITCH_ON = 0x0001,
    DRIVE_SW_SWITCHED_ON = 0x0002,
    DRIVE_SW_OPERATION_ENABLED = 0x0004,
    DRIVE_SW_FAULT = 0x0008,
    DRIVE_SW_VOLTAGE_ENABLED = 0x0010,
    DRIVE_SW_QUICK_STOP = 0x0020,           /* 0: a quick stop is active */
    DRIVE_SW_SWITCH_ON_DISABLED = 0x0040,
    DRIVE_SW_WARNING = 0x0080,
    DRIVE_SW_REMOTE = 0x0200,
    DRIVE_SW_TARGET_REACHED = 0x0400,
    DRIVE_SW_INTERNAL_LIMIT_ACTIVE = 0x0800,
    DRIVE_SW_FOLLOWS_COMMAND = 0x1000,      /* cyclic modes: target values are followed */
    DRIVE_SW_FOLLOWING_ERROR = 0x2000       /* CSP: beyond the following error window */
} drive_status_bit;

/* Controlword (0x6040) bits and the device control commands they code (bit 7 clear;
 * fault reset is the rising edge of bit 7). Disable operation codes as switch on. */
typedef enum drive_control {
    DRIVE_CW_SWITCH_ON_BIT = 0x0001,
    DRIVE_CW_ENABLE_VOLTAGE_BIT = 0x0002,
    DRIVE_CW_QUICK_STOP_BIT = 0x0004,       /* 0: quick stop */
    DRIVE_CW_ENABLE_OPERATION_BIT = 0x0008,
    DRIVE_CW_FAULT_RESET_BIT = 0x0080,
    DRIVE_CW_HALT_BIT = 0x0100,
    DRIVE_CW_DISABLE_VOLTAGE = 0x0000,
    DRIVE_CW_QUICK_STOP = 0x0002,
    DRIVE_CW_SHUTDOWN = 0x0006,
    DRIVE_CW_SWITCH_ON = 0x0007,
    DRIVE_CW_ENABLE_OPERATION = 0x000F
} drive_control;

/* Quick stop option code (0x605A) values the simulated drives model. */
typedef enum drive_quick_stop_option {
    DRIVE_QS_DISABLE_DRIVE = 0,             /* power off at once, then switch on disabled */
    DRIVE_QS_QUICK_STOP_RAMP = 2,           /* quick stop ramp, then switch on disabled */
    DRIVE_QS_QUICK_STOP_RAMP_STAY = 6       /* quick stop ramp, stay in quick stop active */
} drive_quick_stop_option;

/* Error codes (0x603F) the simulated drives raise (CiA 402 / CiA 301 codes). */
typedef enum drive_error {
    DRIVE_ERROR_NONE = 0,
    DRIVE_ERROR_GENERIC = 0x1000,
    DRIVE_ERROR_FOLLOWING = 0x8611          /* position control: following error */
} drive_error;

/* Commands to a drive block (edge_command.kind); a drive's own kinds are below 64. */
#define DRIVE_CMD_POWER 64     /* args[0]: DRIVE_POWER_* the controlword sequence aims at */
#define DRIVE_CMD_MODE 65      /* args[0]: DRIVE_MODE_CSP / _CSV / _CST */
#define DRIVE_CMD_CONTROLWORD 66  /* args[0]: 0..0xFFFF sent to every axis instead of the
                                     sequence (commissioning, tests); -1: the sequence */
#define DRIVE_POWER_OFF 0      /* shutdown: ready to switch on, no torque, brakes hold */
#define DRIVE_POWER_ON 1       /* operation enabled */
#define DRIVE_POWER_QUICK_STOP 2

/* The fault codes a drive block latches (DRIVE_FAULT_*) are in faults.def. */

/* Outputs to one axis (master -> drive). */
typedef struct drive_rx {
    uint16_t controlword;
    int8_t modes_of_operation;
    double target_position;     /* 0x607A, CSP: rad or m */
    double target_velocity;     /* 0x60FF, CSV */
    double target_torque;       /* 0x6071, CST: N*m or N */
    double velocity_offset;     /* 0x60B1: CSP velocity feed-forward */
    double torque_offset;       /* 0x60B2: CSP/CSV torque feed-forward */
    double acceleration_offset; /* manufacturer-specific feed-forward; 0 where unused */
} drive_rx;

/* Inputs from one axis (drive -> master), as measured at the start of the tick. */
typedef struct drive_tx {
    uint16_t statusword;
    int8_t modes_of_operation_display;
    uint16_t error_code;
    double position_actual;     /* 0x6064 */
    double velocity_actual;     /* 0x606C */
    double torque_actual;       /* 0x6077 */
    double following_error;     /* 0x60F4: target - actual position */
} drive_tx;

/* What a drive implements. read: fill tx[0..n-1] and digital inputs (EDGE_IN_* bits it
 * owns); command: its own inputs (a simulator's test hooks), 0 accepted, 1 unknown kind,
 * 2 bad arguments; write: take rx[0..n-1] and run one period; release: free self. No
 * hook may allocate, lock or block. */
typedef struct drive_ops {
    void (*read)(void *self, drive_tx *tx, uint32_t *inputs);
    int (*command)(void *self, const edge_command *cmd);
    void (*write)(void *self, const drive_rx *rx, double period_s);
    void (*release)(void *self);
} drive_ops;

/* The state a statusword shows (the standard's table), -1 for no valid pattern. */
int drive_state_of(uint16_t statusword);
/* The statusword bits 0-6 of a state, as the standard's table gives them. */
uint16_t drive_state_pattern(int state);
/* The device side: where the controlword takes a drive in `state` (the standard's
 * transitions 2-12, 15, 16; without delays, ramps or the automatic transitions 0, 1, 14).
 * prev_controlword is last tick's (fault reset is a rising edge). */
int drive_state_next(int state, uint16_t controlword, uint16_t prev_controlword,
                     int quick_stop_option);
/* The master side: the controlword that moves a drive in `state` toward `power`. */
uint16_t drive_controlword_toward(int state, int power);
/* cffi:end */

/* For drive implementations: a cycle block around `ops` for n_axes axes owning `self`
 * (released with the block, also when this fails). power: DRIVE_POWER_* to aim at from
 * the start; mode: DRIVE_MODE_* to ask for from the start. */
edge_block *drive_block_alloc(const char *name, int kind, const drive_ops *ops, void *self,
                              int n_axes, int power, int mode);

#endif
