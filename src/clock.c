/*
 * clock.c - realtime and monotonic clocks in the units iotlat uses.
 */
#include "clock.h"

#include <errno.h>
#include <time.h>

int64_t il_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t il_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void il_sleep_until_us(int64_t t_us)
{
    struct timespec ts = {.tv_sec = t_us / 1000000,
                          .tv_nsec = (t_us % 1000000) * 1000};
    /* A deadline already past costs a wasted system call (tens of us on a
     * VM) without this check. */
    if (t_us < 0 || t_us <= il_now_us())
        return;
    /* An absolute deadline on the same clock as the schedule, so a signal or
     * a clock step does not stretch or shorten the wait. */
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}
