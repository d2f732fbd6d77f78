/*
 * clock.h - the one clock every timestamp in iotlat is taken from.
 *
 * Latency between processes (and hosts) is a difference of stamps taken by
 * different processes, so all of them use CLOCK_REALTIME in microseconds
 * since the Unix epoch; the envelope carries exactly these numbers.  Within
 * a process, durations that must not jump with NTP use the monotonic clock.
 * Both are vDSO calls on Linux: cheap enough for the per-message path.
 */
#ifndef IL_CLOCK_H
#define IL_CLOCK_H

#include <stdint.h>

/* CLOCK_REALTIME, us since the Unix epoch. */
int64_t il_now_us(void);

/* CLOCK_MONOTONIC in ns, for measuring intervals within one process. */
int64_t il_mono_ns(void);

/* Sleep until CLOCK_REALTIME reaches t_us (returns at once if it already
 * has).  Interrupted sleeps are resumed. */
void il_sleep_until_us(int64_t t_us);

#endif
