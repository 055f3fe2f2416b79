/* safety_geometry.h — what the safety monitor measures and predicts, apart from its
 * state: the controlled-stop ramp, the distance of the arm's spheres to the safety walls,
 * the tool speed, and the clearance of a stop started from a given state. Functions of
 * the arm model and the configuration alone (plus an FK scratch buffer); no allocation.
 * Internal to the safety block (safety.c), not part of the Python interface. */
#ifndef EDGE_SAFETY_GEOMETRY_H
#define EDGE_SAFETY_GEOMETRY_H
#include "safety.h"

typedef struct safety_geometry {
    const arm_model *model;
    const safety_config *cfg;     /* read where it lives: a new config applies at once */
    double reach;                 /* m: bound on any sphere centre's distance from any axis */
    double *frames;               /* FK scratch, (ARM_MAX_LINKS + 2) * 16 doubles */
} safety_geometry;

/* Point g at the model, config and scratch, and compute reach (again after cfg changed). */
void safety_geometry_init(safety_geometry *g, const arm_model *model, const safety_config *cfg,
                          double *frames);

/* The stop ramp from velocity v: the path is q + v phi(t), the velocity v s(t). A and J
 * are scalar decelerations (1/s, 1/s^2) such that every joint stays within a_stop and
 * j_stop (J = HUGE_VAL for the acceleration-limited profile); T is the stop's duration
 * (0 and A = J = HUGE_VAL when v is zero). */
void safety_ramp_params(const safety_config *c, const double *v, double *A, double *J,
                        double *T);
/* s(t) (velocity fraction), s'(t) and phi(t) = integral of s. Symmetric: phi(T) = T/2. */
void safety_ramp_eval(double A, double J, double T, double t, double *sv, double *sd,
                      double *phi);

/* Distance (m) of each sphere's surface to its nearest wall at q, into out (may be NULL);
 * returns the minimum over spheres (HUGE_VAL without walls). */
double safety_sphere_distances_at(const safety_geometry *g, const double *q, double *out);
/* Linear tool speed |J_v(q) v|, m/s. */
double safety_tcp_speed(const safety_geometry *g, const double *q, const double *v);
/* Clearance of the stop that starts at (q, v): the smallest margin (m for walls beyond
 * wall_margin, rad for joint limits) along the predicted stopping path; >= 0 is safe. */
double safety_stop_clearance(const safety_geometry *g, const double *q, const double *v);

#endif
