/*
 * scheduler.h - the open-loop send schedule.
 *
 * A latency test that waits for one message before sending the next measures
 * its own back-pressure, not the system (coordinated omission).  iotlat's
 * publisher is open loop: device d sends its k-th message at
 *
 *     t(d, k) = start + k * interval + d * interval / N
 *
 * with interval = 1 / rate and the N devices spread evenly over one interval,
 * so the merged stream is one message every interval / N.  Sending late
 * never shifts the schedule: the intended time is what goes into the
 * envelope, and the lateness (send lag) is measured.  The merged stream is
 * indexed by one counter g: device g mod N, sequence g div N, so finding the
 * next due message is O(1) with no timer or heap per device.
 */
#ifndef IL_SCHEDULER_H
#define IL_SCHEDULER_H

#include <stdint.h>

typedef struct il_sched {
    uint64_t devices;    /* N */
    double rate;         /* messages per second per device */
    int64_t start_us;    /* CLOCK_REALTIME us of message (0, 0) */
    uint64_t per_device; /* messages each device sends */
    uint64_t total;      /* devices * per_device */
    uint64_t next;       /* index g of the next message to send */
    double step_us;      /* interval / N */
} il_sched;

/* Plan `devices` x `rate` msg/s for duration_us starting at start_us.  Each
 * device sends every message whose intended time falls inside
 * [start, start + duration). */
void il_sched_init(il_sched *s, uint64_t devices, double rate, int64_t duration_us,
                   int64_t start_us);

/* Intended send time of message g. */
static inline int64_t il_sched_time(const il_sched *s, uint64_t g)
{
    return s->start_us + (int64_t)((double)g * s->step_us);
}

/* If message `next` is due at now_us (its intended time <= now_us), fill its
 * device, sequence and intended time, advance, and return 1; else 0. */
static inline int il_sched_due(il_sched *s, int64_t now_us, uint32_t *dev,
                               uint64_t *seq, int64_t *t_intended)
{
    if (s->next >= s->total)
        return 0;
    int64_t t = il_sched_time(s, s->next);
    if (t > now_us)
        return 0;
    *dev = (uint32_t)(s->next % s->devices);
    *seq = s->next / s->devices;
    *t_intended = t;
    s->next++;
    return 1;
}

/* Intended time of the next message, or INT64_MAX when all are sent. */
static inline int64_t il_sched_next_time(const il_sched *s)
{
    return s->next < s->total ? il_sched_time(s, s->next) : INT64_MAX;
}

static inline int il_sched_done(const il_sched *s) { return s->next >= s->total; }

#endif
