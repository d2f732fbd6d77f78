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
#include "runctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int il_receive_loop(const il_config *c, il_driver *d, il_meas *m, const char *who,
                    int64_t t_start, int (*second)(void *ud, int64_t now_us), void *ud)
{
    char err[256];
    int64_t next_second = t_start + 1000000;
    int64_t next_progress = t_start + c->progress_us;
    int64_t last_roll = t_start;
    /* After the last end marker, a little longer for reordered stragglers. */
    int64_t linger = c->grace_us < 250000 ? c->grace_us : 250000;
    int failures = 0, stop = 0;

    il_runctl_install();
    while (!stop && !il_runctl_stop_requested()) {
        int n = d->vt->poll(d->inst, 50, err, sizeof err);
        int64_t now = il_now_us();
        if (n < 0) {
            il_log(IL_LOG_ERROR, "%s: poll: %s", d->label, err);
            if (++failures > 100)
                return 1;
        }
        /* Every second: the per-second record and lease (through `second`),
         * the progress line when due, then the interval is merged into the
         * run's totals. */
        if (now >= next_second) {
            if (second && second(ud, now))
                stop = 1;
            if (c->progress_us > 0 && now >= next_progress) {
                il_meas_progress(m, stderr, who, (double)(now - t_start) / 1e6,
                                 (double)(now - last_roll) / 1e6);
                while (next_progress <= now)
                    next_progress += c->progress_us;
            }
            il_meas_roll(m);
            last_roll = now;
            while (next_second <= now)
                next_second += 1000000;
        }
        if (c->duration_us > 0 && now >= t_start + c->duration_us)
            break;
        if (c->stop_at_end && m->all_ended_us && now >= m->all_ended_us + linger)
            break;
    }
    if (il_runctl_stop_requested())
        il_log(IL_LOG_INFO, "signal %d: stopping", il_runctl_stop_requested());
    /* Take what is already queued, without waiting. */
    for (int i = 0; i < 1000 && d->vt->poll(d->inst, 0, err, sizeof err) > 0; i++)
        ;
    /* The last partial second gets its record too. */
    if (second)
        second(ud, il_now_us());
    return 0;
}

typedef struct sub_report {
    const il_config *c;
    il_meas *m;
    il_hist *h;
    il_coord *co;
    const char *topic;
    int64_t pub_clock_error_us; /* -1 unknown */
} sub_report;

/* How far cross-host latencies can be trusted: both clocks' error bounds to
 * the common reference (the Redis server's clock) add up. */
static int64_t clock_bound(const sub_report *r)
{
    if (!r->co->clock_known || r->pub_clock_error_us < 0)
        return -1;
    return r->co->clock_error_us + r->pub_clock_error_us;
}

static void report_body(FILE *f, void *ud)
{
    sub_report *r = ud;
    fprintf(f, "\"topic\":");
    il_json_str(f, r->topic);
    fputc(',', f);
    il_meas_report_json(r->m, f, r->h);
    fputc(',', f);
    il_coord_report_json(r->co, f);
    if (r->co->store) {
        int64_t b = clock_bound(r);
        fprintf(f,
                "\"clock\":{\"offset_us\":%lld,\"error_us\":%lld,\"known\":%s,"
                "\"publisher_error_us\":%lld,\"bound_us\":%lld,\"warn_us\":%lld,"
                "\"warning\":%s},",
                (long long)r->co->clock_offset_us, (long long)r->co->clock_error_us,
                r->co->clock_known ? "true" : "false", (long long)r->pub_clock_error_us,
                (long long)b, (long long)r->c->clock_warn_us,
                b < 0 || b > r->c->clock_warn_us ? "true" : "false");
    }
}

static void on_message(void *ud, const char *topic, const void *data, size_t len,
                       int64_t t_recv)
{
    (void)topic;
    il_meas_message(ud, data, len, t_recv ? t_recv : il_now_us());
}

typedef struct sub_second {
    il_coord *co;
    il_meas *m;
    const char *topic;
} sub_second;

static int on_second(void *ud, int64_t now)
{
    sub_second *s = ud;
    return il_coord_second(s->co, s->m, s->topic, now);
}

int il_subscriber_run(const il_config *c)
{
    il_driver d = {0};
    il_coord co;
    char err[512], source[256], v[32];
    const char *topic = c->topic;
    int64_t pub_clock_error = -1;
    int rc = il_coord_open(&co, c, "subscriber", NULL);
    if (rc)
        return rc;
    il_meas *m = il_meas_new();
    il_hist *h = malloc(sizeof *h);
    if (!m || !h) {
        il_log(IL_LOG_ERROR, "out of memory");
        rc = 1;
        goto out;
    }
    snprintf(source, sizeof source, "%s", topic);
    if (c->claim != IL_CLAIM_NONE) {
        if (!co.store) {
            il_log(IL_LOG_ERROR, "IOTLAT_CLAIM='%s' needs IOTLAT_REDIS_URL: claims are made "
                                 "in the results store",
                   c->claim == IL_CLAIM_PUBLISHER ? "publisher" : "transformer");
            rc = 2;
            goto out;
        }
        const char *stage = c->claim == IL_CLAIM_PUBLISHER ? "publisher" : "transformer";
        if (!il_coord_claim(&co, stage)) {
            il_log(IL_LOG_INFO, "no topic claimed: nothing to measure");
            goto out;
        }
        topic = co.topic;
        if (il_store_topic_field(co.store, stage, topic, "source", source, sizeof source) != 1)
            snprintf(source, sizeof source, "%s", topic);
    }
    rc = il_driver_setup(&d, c->driver, c->plugin_dir, IOTLAT_ROLE_SUBSCRIBE);
    if (rc)
        goto out;
    if (co.endpoint[0] && d.vt->abi_minor >= 1 && d.vt->attach &&
        d.vt->attach(d.inst, co.endpoint, err, sizeof err)) {
        il_log(IL_LOG_ERROR, "%s: %s", d.label, err);
        rc = 1;
        goto out;
    }
    if (d.vt->subscribe(d.inst, topic, on_message, m, err, sizeof err)) {
        il_log(IL_LOG_ERROR, "IOTLAT_TOPIC='%s': %s", topic, err);
        rc = 1;
        goto out;
    }
    il_log(IL_LOG_INFO, "subscribed to %s via %s", topic, d.vt->name);
    il_coord_mark_ready(&co, co.stage ? co.stage : "publisher", topic);
    int64_t t0 = il_now_us();
    sub_second sec = {&co, m, topic};
    rc = il_receive_loop(c, &d, m, "[sub]", t0, co.store ? on_second : NULL, &sec);
    int64_t t1 = il_now_us();
    il_meas_roll(m);
    if (m->all_ended_us)
        il_driver_forget_outage_after(&d, m->all_ended_us);
    il_coord_settle_tail(&co, m, source);
    /* Looked up at the end: the publisher may have advertised after we
     * started. */
    if (co.store && il_store_topic_field(co.store, "publisher", source, "clock_error_us", v,
                                         sizeof v) == 1 && v[0])
        pub_clock_error = strtoll(v, NULL, 10);
    il_coord_release(&co, il_meas_all_ended(m));

    sub_report r = {c, m, h, &co, topic, pub_clock_error};
    printf("iotlat-subscriber report (run %s, driver %s, topic %s, %.1fs)\n", c->run_id,
           d.vt->name, topic, (double)(t1 - t0) / 1e6);
    il_meas_report_text(m, stdout, h);
    if (d.disconnects)
        printf("  broker outages: %llu, %.3f s in all\n",
               (unsigned long long)d.disconnects,
               (double)il_driver_outage_us(&d, t1) / 1e6);
    il_coord_report_text(&co, stdout);
    if (co.store) {
        int64_t b = clock_bound(&r);
        if (b < 0)
            printf("  clock: the error bound between publisher and subscriber clocks is "
                   "unknown: cross-host latencies cannot be trusted\n");
        else
            printf("  clock: cross-host latencies are good to +-%lld us (offset to the store "
                   "%+lld us)%s\n",
                   (long long)b, (long long)co.clock_offset_us,
                   b > c->clock_warn_us ? "  WARNING: above IOTLAT_CLOCK_WARN" : "");
    }
    fflush(stdout);
    if (c->report_json && il_report_write(c, &d, "subscriber", t0, t1, report_body, &r))
        rc = 1;
    il_coord_end(&co);
out:
    free(h);
    il_meas_free(m);
    il_driver_close(&d);
    il_coord_close(&co);
    return rc;
}
