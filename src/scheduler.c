/*
 * scheduler.c - sizing the open-loop schedule.
 */
#include "scheduler.h"

#include <math.h>

void il_sched_init(il_sched *s, uint64_t devices, double rate, int64_t duration_us,
                   int64_t start_us)
{
    double interval = 1e6 / rate;
    s->devices = devices;
    s->rate = rate;
    s->start_us = start_us;
    /* Device 0 sends at k * interval for every k with k * interval < D; the
     * other devices are offset by less than one interval, and a device whose
     * offset pushes its last message past the end still sends it, so every
     * device sends the same count and the per-device accounting stays
     * simple. */
    s->per_device = (uint64_t)ceil((double)duration_us / interval - 1e-9);
    if (s->per_device == 0)
        s->per_device = 1;
    s->total = s->per_device * devices;
    s->next = 0;
    s->step_us = interval / (double)devices;
}
