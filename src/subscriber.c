/*
 * subscriber.c - receive, measure, report.
 *
 * The receive path is a plain poll loop on one thread: the driver delivers
 * messages from inside poll(), each is decoded and recorded in a few tens of
 * nanoseconds, and everything slow (progress lines, reports) happens once
 * per interval.
 */
#include "subscriber.h"

#include "clock.h"
#include "log.h"
#include "report.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

int il_receive_loop(const il_config *c, il_driver *d, il_meas *m, const char *who,
                    int64_t t_start)
{
    struct sigaction sa = {.sa_handler = on_signal};
    char err[256];
    int64_t next_progress = t_start + c->progress_us;
    int64_t last_progress = t_start;
    /* After the last end marker, a little longer for reordered stragglers. */
    int64_t linger = c->grace_us < 250000 ? c->grace_us : 250000;
    int failures = 0;

    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    while (!stop_signal) {
        int n = d->vt->poll(d->inst, 50, err, sizeof err);
        int64_t now = il_now_us();
        if (n < 0) {
            il_log(IL_LOG_ERROR, "%s: poll: %s", d->label, err);
            if (++failures > 100)
                return 1;
        }
        if (c->progress_us > 0 && now >= next_progress) {
            il_meas_progress(m, stderr, who, (double)(now - t_start) / 1e6,
                             (double)(now - last_progress) / 1e6);
            il_meas_roll(m);
            last_progress = now;
            while (next_progress <= now)
                next_progress += c->progress_us;
        }
        if (c->duration_us > 0 && now >= t_start + c->duration_us)
            break;
        if (c->stop_at_end && m->all_ended_us && now >= m->all_ended_us + linger)
            break;
    }
    if (stop_signal)
        il_log(IL_LOG_INFO, "signal %d: stopping", (int)stop_signal);
    /* Take what is already queued, without waiting. */
    for (int i = 0; i < 1000 && d->vt->poll(d->inst, 0, err, sizeof err) > 0; i++)
        ;
    return 0;
}

typedef struct sub_report {
    const il_config *c;
    il_meas *m;
    il_hist *h;
} sub_report;

static void report_body(FILE *f, void *ud)
{
    sub_report *r = ud;
    fprintf(f, "\"topic\":");
    il_json_str(f, r->c->topic);
    fputc(',', f);
    il_meas_report_json(r->m, f, r->h);
    fputc(',', f);
}

static void on_message(void *ud, const char *topic, const void *data, size_t len,
                       int64_t t_recv)
{
    (void)topic;
    il_meas_message(ud, data, len, t_recv ? t_recv : il_now_us());
}

int il_subscriber_run(const il_config *c)
{
    il_driver d;
    char err[512];
    int rc = il_driver_setup(&d, c->driver, c->plugin_dir, IOTLAT_ROLE_SUBSCRIBE);
    if (rc)
        return rc;
    il_meas *m = il_meas_new();
    il_hist *h = malloc(sizeof *h);
    if (!m || !h) {
        il_log(IL_LOG_ERROR, "out of memory");
        rc = 1;
        goto out;
    }
    if (d.vt->subscribe(d.inst, c->topic, on_message, m, err, sizeof err)) {
        il_log(IL_LOG_ERROR, "IOTLAT_TOPIC='%s': %s", c->topic, err);
        rc = 1;
        goto out;
    }
    il_log(IL_LOG_INFO, "subscribed to %s via %s", c->topic, d.vt->name);
    int64_t t0 = il_now_us();
    rc = il_receive_loop(c, &d, m, "[sub]", t0);
    int64_t t1 = il_now_us();
    il_meas_roll(m);

    printf("iotlat-subscriber report (run %s, driver %s, topic %s, %.1fs)\n", c->run_id,
           d.vt->name, c->topic, (double)(t1 - t0) / 1e6);
    il_meas_report_text(m, stdout, h);
    if (d.disconnects)
        printf("  broker outages: %llu, %.3f s in all\n",
               (unsigned long long)d.disconnects,
               (double)il_driver_outage_us(&d, t1) / 1e6);
    fflush(stdout);
    sub_report r = {c, m, h};
    if (c->report_json && il_report_write(c, &d, "subscriber", t0, t1, report_body, &r))
        rc = 1;
out:
    free(h);
    il_meas_free(m);
    il_driver_close(&d);
    return rc;
}
