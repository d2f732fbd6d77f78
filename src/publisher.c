/*
 * publisher.c - the open-loop device emulator.
 *
 * One libuv loop drives everything: a timer wakes the loop shortly before the
 * next message is due, the callback waits out the last fraction of a
 * millisecond precisely (libuv timers have millisecond resolution; a latency
 * tool needs microseconds), then sends every message that is due, in bounded
 * batches so that signals, progress and round-trip receptions keep being
 * served even when the publisher is behind.  Lateness never moves the
 * schedule; it is recorded as send lag.
 */
#include "publisher.h"

#include "clock.h"
#include "coord.h"
#include "driver.h"
#include "envelope.h"
#include "histogram.h"
#include "log.h"
#include "measure.h"
#include "payload.h"
#include "report.h"
#include "scheduler.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 1024         /* messages per loop turn at most */
#define PRECISE_US 2000    /* wait the last stretch outside the libuv timer */

typedef struct pub {
    const il_config *c;
    char topic[256];    /* IOTLAT_TOPIC with {id} and {host} expanded */
    il_coord co;
    il_driver d;
    il_payload *payload;
    il_sched s;
    il_encoding enc;
    uint32_t pub_id;
    uv_loop_t *loop;
    uv_timer_t tick, progress, ender;
    uv_idle_t soon; /* runs the next tick after one turn of the loop */
    uv_signal_t sigint, sigterm;
    uv_poll_t rt_poll;
    int rt_fd;
    il_meas *rt; /* round-trip measurement, NULL when off */
    char *body, *msg;
    size_t body_cap, msg_cap;
    /* counters */
    uint64_t sent, send_failed, fins_sent, fin_failed, oversize;
    uint64_t sent_at_last_progress;
    il_hist lag_cur, lag_total;
    int64_t t_start, t_end_send, t_last_progress, t_stop_by;
    int interrupted, finishing, exit_status;
    char last_error[256];
} pub;

static void report_error_once(pub *p, const char *err)
{
    if (strcmp(err, p->last_error) != 0) {
        il_log(IL_LOG_WARN, "send failed: %s", err);
        snprintf(p->last_error, sizeof p->last_error, "%s", err);
    }
}

static int send_env(pub *p, il_env *e, const char *body, int body_len)
{
    char err[256];
    char key[12];
    il_env_device_key(e->dev, key);

    e->t_sent = il_now_us();
    int len = il_env_encode(p->enc, e, body, (size_t)body_len, (uint8_t *)p->msg,
                            p->msg_cap);
    if (len < 0) {
        p->oversize++;
        return -1;
    }
    int rc = p->d.vt->publish(p->d.inst, p->topic, key, p->msg, (size_t)len, err,
                              sizeof err);
    if (rc) {
        report_error_once(p, err);
        return rc;
    }
    return 0;
}

static void send_one(pub *p, uint32_t dev, uint64_t seq, int64_t t_intended)
{
    /* Only the fields the encoder reads: zero-filling the hop array for
     * every message was a measurable share of the send path. */
    il_env e;
    e.pub = p->pub_id;
    e.dev = dev;
    e.seq = seq;
    e.t_intended = t_intended;
    e.t_sent = 0;
    e.flags = 0;
    e.devices = 0;
    e.nhops = 0;
    int n = il_payload_render(p->payload, dev, seq, t_intended, p->body, p->body_cap);
    if (n < 0 || send_env(p, &e, p->body, n) != 0) {
        if (n < 0)
            p->oversize++;
        p->send_failed++;
        return;
    }
    p->sent++;
    il_hist_record(&p->lag_cur, e.t_sent - t_intended);
}

/* Messages device d was scheduled to send when the schedule stopped at
 * index `next` (every device has the same count unless interrupted). */
static uint64_t device_count(const il_sched *s, uint32_t d)
{
    return s->next / s->devices + (d < s->next % s->devices ? 1 : 0);
}

static void send_fins(pub *p)
{
    for (uint32_t d = 0; d < p->s.devices; d++) {
        il_env e = {.pub = p->pub_id,
                    .dev = d,
                    .seq = device_count(&p->s, d),
                    .flags = IL_ENV_FIN,
                    .devices = (uint32_t)p->s.devices};
        e.t_intended = il_now_us();
        /* An end marker refused because the queue is full is retried until
         * the grace period ends: without it the subscriber cannot close the
         * device's books. */
        int64_t until = il_now_us() + p->c->grace_us;
        int rc;
        while ((rc = send_env(p, &e, "{}", 2)) == IOTLAT_EAGAIN && il_now_us() < until) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        if (rc == 0)
            p->fins_sent++;
        else
            p->fin_failed++;
    }
}

static void stop_loop(pub *p)
{
    uv_timer_stop(&p->tick);
    uv_idle_stop(&p->soon);
    uv_timer_stop(&p->progress);
    uv_timer_stop(&p->ender);
    uv_signal_stop(&p->sigint);
    uv_signal_stop(&p->sigterm);
    if (p->rt_fd >= 0)
        uv_poll_stop(&p->rt_poll);
    uv_stop(p->loop);
}

static void rt_drain(pub *p, int timeout_ms)
{
    char err[256];
    if (!p->rt)
        return;
    int n;
    do
        n = p->d.vt->poll(p->d.inst, timeout_ms, err, sizeof err);
    while (n > 0 && (timeout_ms = 0, 1));
}

/* After the last message: wait for round-trip stragglers until every device's
 * end marker came back or the grace period ends. */
static void ender_cb(uv_timer_t *t)
{
    pub *p = t->data;
    rt_drain(p, 0);
    if (!p->rt || il_meas_all_ended(p->rt) || il_now_us() >= p->t_stop_by)
        stop_loop(p);
}

static void finish(pub *p)
{
    char err[256];
    if (p->finishing)
        return;
    p->finishing = 1;
    p->t_end_send = il_now_us();
    uv_timer_stop(&p->tick);
    uv_idle_stop(&p->soon);
    send_fins(p);
    if (p->d.vt->flush(p->d.inst, (int)(p->c->grace_us / 1000), err, sizeof err))
        il_log(IL_LOG_WARN, "flush: %s", err);
    p->t_stop_by = il_now_us() + p->c->grace_us;
    uv_timer_start(&p->ender, ender_cb, 0, 5);
}

static void tick(pub *p);

static void tick_cb(uv_timer_t *t) { tick(t->data); }

static void soon_cb(uv_idle_t *h)
{
    uv_idle_stop(h);
    tick(h->data);
}

/* Schedule the next tick.  When the next message is due now (the publisher
 * is behind, or messages are closer than a millisecond), an idle handle runs
 * it after one full turn of the loop: a 0 ms timer would be run again by
 * libuv within the same timer phase, starving signals and received
 * messages for as long as the publisher stays behind. */
static void arm(pub *p)
{
    int64_t next = il_sched_next_time(&p->s);
    int64_t wait = next - il_now_us();
    uint64_t ms = wait > PRECISE_US ? (uint64_t)(wait - PRECISE_US / 2) / 1000 : 0;
    if (ms == 0) {
        uv_idle_start(&p->soon, soon_cb);
        return;
    }
    uv_update_time(p->loop);
    uv_timer_start(&p->tick, tick_cb, ms, 0);
}

static void tick(pub *p)
{
    int64_t now = il_now_us();
    int64_t next = il_sched_next_time(&p->s);
    uint32_t dev;
    uint64_t seq;
    int64_t ti;

    if (next > now) {
        if (next - now > PRECISE_US) {
            arm(p);
            return;
        }
        /* The last stretch: in round-trip mode keep receiving while waiting,
         * so returning messages are stamped when they arrive. */
        if (p->rt && p->rt_fd >= 0) {
            while ((now = il_now_us()) < next) {
                struct pollfd pfd = {.fd = p->rt_fd, .events = POLLIN};
                int64_t w = next - now;
                struct timespec ts = {.tv_sec = w / 1000000, .tv_nsec = (w % 1000000) * 1000};
                ppoll(&pfd, 1, &ts, NULL);
                rt_drain(p, 0);
            }
        } else {
            il_sleep_until_us(next - p->c->spin_us);
            while (il_now_us() < next)
                ;
        }
        now = il_now_us();
    }
    for (int n = 0; n < BATCH && il_sched_due(&p->s, now, &dev, &seq, &ti); n++) {
        send_one(p, dev, seq, ti);
        if ((n & 31) == 31)
            now = il_now_us();
    }
    if (p->rt)
        rt_drain(p, 0);
    if (il_sched_done(&p->s)) {
        finish(p);
        return;
    }
    arm(p);
}

static void progress_cb(uv_timer_t *t)
{
    pub *p = t->data;
    int64_t now = il_now_us();
    double iv = (double)(now - p->t_last_progress) / 1e6;
    char a[3][24];
    fprintf(stderr,
            "[pub] %6.1fs sent %llu (%.0f/s) failed %llu | send lag p50 %s p99 %s max %s\n",
            (double)(now - p->t_start) / 1e6, (unsigned long long)p->sent,
            iv > 0 ? (double)(p->sent - p->sent_at_last_progress) / iv : 0.0,
            (unsigned long long)p->send_failed,
            il_fmt_us(il_hist_percentile(&p->lag_cur, 50), a[0], 24),
            il_fmt_us(il_hist_percentile(&p->lag_cur, 99), a[1], 24),
            il_fmt_us(p->lag_cur.total ? p->lag_cur.max : 0, a[2], 24));
    if (p->rt) {
        il_meas_progress(p->rt, stderr, "[rtt]", (double)(now - p->t_start) / 1e6, iv);
        il_meas_roll(p->rt);
    }
    il_hist_merge(&p->lag_total, &p->lag_cur);
    il_hist_init(&p->lag_cur);
    p->sent_at_last_progress = p->sent;
    p->t_last_progress = now;
}

static void signal_cb(uv_signal_t *s, int signum)
{
    pub *p = s->data;
    il_log(IL_LOG_WARN, "signal %d: stopping the schedule and sending end markers",
           signum);
    p->interrupted = 1;
    if (p->finishing) {
        stop_loop(p);
        return;
    }
    finish(p);
}

static void rt_msg(void *ud, const char *topic, const void *data, size_t len,
                   int64_t t_recv)
{
    pub *p = ud;
    (void)topic;
    il_meas_message(p->rt, data, len, t_recv ? t_recv : il_now_us());
}

static void rt_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    rt_drain(h->data, 0);
}

typedef struct pub_report {
    pub *p;
    il_hist *h;
} pub_report;

static void report_body(FILE *f, void *ud)
{
    pub *p = ((pub_report *)ud)->p;
    const il_config *c = p->c;
    double send_s = (double)(p->t_end_send - p->t_start) / 1e6;
    fprintf(f, "\"topic\":");
    il_json_str(f, p->topic);
    fprintf(f,
            ",\"publisher_id\":%u,\"devices\":%llu,"
            "\"rate_per_device\":%g,\"planned\":%llu,\"scheduled\":%llu,\"sent\":%llu,"
            "\"send_failed\":%llu,\"oversize\":%llu,\"fin_sent\":%llu,"
            "\"fin_failed\":%llu,\"interrupted\":%s,\"achieved_rate\":%.1f,",
            p->pub_id, (unsigned long long)p->s.devices, p->s.rate,
            (unsigned long long)p->s.total, (unsigned long long)p->s.next,
            (unsigned long long)p->sent, (unsigned long long)p->send_failed,
            (unsigned long long)p->oversize, (unsigned long long)p->fins_sent,
            (unsigned long long)p->fin_failed, p->interrupted ? "true" : "false",
            send_s > 0 ? (double)p->sent / send_s : 0.0);
    il_report_hist_json(f, "send_lag_us", &p->lag_total);
    if (p->rt) {
        fprintf(f, ",\"round_trip\":{\"topic\":");
        il_json_str(f, c->return_topic);
        fputc(',', f);
        il_meas_report_json(p->rt, f, ((pub_report *)ud)->h);
        fputc('}', f);
    }
    fputc(',', f);
    il_coord_report_json(&p->co, f);
}

static void write_reports(pub *p)
{
    const il_config *c = p->c;
    il_hist *h = malloc(sizeof *h);
    double send_s = (double)(p->t_end_send - p->t_start) / 1e6;
    il_hist_merge(&p->lag_total, &p->lag_cur);
    il_hist_init(&p->lag_cur);

    printf("iotlat-publisher report (run %s, driver %s, topic %s)\n", c->run_id,
           p->d.vt->name, p->topic);
    printf("  schedule: %llu devices x %g msg/s for %.1fs = %llu planned, %llu "
           "scheduled%s\n",
           (unsigned long long)p->s.devices, p->s.rate, send_s,
           (unsigned long long)p->s.total, (unsigned long long)p->s.next,
           p->interrupted ? " (interrupted)" : "");
    printf("  sent %llu, send failed %llu (oversize %llu), end markers %llu, rate %.0f "
           "msg/s\n",
           (unsigned long long)p->sent, (unsigned long long)p->send_failed,
           (unsigned long long)p->oversize, (unsigned long long)p->fins_sent,
           send_s > 0 ? (double)p->sent / send_s : 0.0);
    il_report_hist_text(stdout, "send lag", &p->lag_total);
    if (p->d.disconnects)
        printf("  broker outages: %llu, %.3f s in all\n",
               (unsigned long long)p->d.disconnects,
               (double)il_driver_outage_us(&p->d, il_now_us()) / 1e6);
    if (p->rt && h) {
        printf("round trip (topic %s, publisher's own clock):\n", c->return_topic);
        il_meas_report_text(p->rt, stdout, h);
    }
    fflush(stdout);

    if (!c->report_json || !h) {
        free(h);
        return;
    }
    pub_report r = {p, h};
    if (il_report_write(c, &p->d, "publisher", p->t_start, p->t_end_send, report_body, &r))
        p->exit_status = 1;
    free(h);
}

/* Replicas started with one environment need distinct topics: "{id}"
 * becomes the publisher id and "{host}" the host name (a pod's name). */
static void expand_topic(const char *tmpl, uint32_t id, char *out, size_t len)
{
    char host[128];
    size_t n = 0;
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "host");
    for (const char *q = tmpl; *q && n + 1 < len;) {
        if (strncmp(q, "{id}", 4) == 0) {
            n += (size_t)snprintf(out + n, len - n, "%u", id);
            q += 4;
        } else if (strncmp(q, "{host}", 6) == 0) {
            n += (size_t)snprintf(out + n, len - n, "%s", host);
            q += 6;
        } else {
            out[n++] = *q++;
        }
        if (n >= len)
            n = len - 1;
    }
    out[n] = '\0';
}

static int load_payload(pub *p)
{
    const il_config *c = p->c;
    char err[512];
    int rc = c->payload_file
                 ? il_payload_from_file(c->payload_file, (uint64_t)c->seed, &p->payload,
                                        err, sizeof err)
                 : il_payload_from_template(c->payload, (uint64_t)c->seed, &p->payload,
                                            err, sizeof err);
    const char *var = c->payload_file ? "IOTLAT_PAYLOAD_FILE" : "IOTLAT_PAYLOAD";
    const char *val = c->payload_file ? c->payload_file : c->payload;
    if (rc) {
        il_log(IL_LOG_ERROR, "%s='%s' is invalid: %s", var, val, err);
        return 2;
    }
    if (p->enc == IL_ENC_JSON && !il_payload_is_object(p->payload)) {
        il_log(IL_LOG_ERROR,
               "%s='%s' is invalid: expected a JSON object, since the json encoding "
               "puts the envelope under the key \"iotlat\" of an object (or use "
               "IOTLAT_ENCODING=binary)",
               var, val);
        return 2;
    }
    p->body_cap = il_payload_max_len(p->payload) + 1;
    p->msg_cap = (size_t)c->max_message;
    if (p->body_cap + IL_ENV_BIN_HEADER + 256 > p->msg_cap) {
        il_log(IL_LOG_ERROR,
               "IOTLAT_MAX_MESSAGE='%lld' is too small: the payload can render to %zu "
               "bytes plus the envelope",
               (long long)c->max_message, p->body_cap - 1);
        return 2;
    }
    p->body = malloc(p->body_cap);
    p->msg = malloc(p->msg_cap);
    return p->body && p->msg ? 0 : 1;
}

int il_publisher_run(const il_config *c)
{
    pub *p = calloc(1, sizeof *p);
    char err[512];
    int rc;
    if (!p)
        return 1;
    p->c = c;
    p->enc = (il_encoding)c->encoding;
    p->rt_fd = -1;
    il_hist_init(&p->lag_cur);
    il_hist_init(&p->lag_total);
    /* Timer slack would add up to 50 us to every precise wait. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);

    if (c->publisher_id >= 0)
        p->pub_id = (uint32_t)c->publisher_id;
    else if (getrandom(&p->pub_id, sizeof p->pub_id, 0) != sizeof p->pub_id)
        p->pub_id = (uint32_t)il_now_us() ^ (uint32_t)getpid();

    expand_topic(c->topic, p->pub_id, p->topic, sizeof p->topic);
    char id[16];
    snprintf(id, sizeof id, "%u", p->pub_id);
    if ((rc = il_coord_open(&p->co, c, "publisher", id)))
        goto out;
    if ((rc = load_payload(p)))
        goto out;
    rc = il_driver_setup(&p->d, c->driver, c->plugin_dir,
                         IOTLAT_ROLE_PUBLISH | (c->return_topic ? IOTLAT_ROLE_SUBSCRIBE : 0));
    if (rc)
        goto out;
    if (c->return_topic) {
        p->rt = il_meas_new();
        if (!p->rt || p->d.vt->subscribe(p->d.inst, c->return_topic, rt_msg, p, err,
                                          sizeof err)) {
            il_log(IL_LOG_ERROR, "IOTLAT_RETURN_TOPIC='%s': %s", c->return_topic,
                   p->rt ? err : "out of memory");
            rc = 1;
            goto close;
        }
        p->rt_fd = p->d.vt->fd ? p->d.vt->fd(p->d.inst) : -1;
    }
    il_coord_advertise(&p->co, &p->d, "publisher", p->topic, NULL);
    if (p->d.vt->wait_ready && c->wait_ready_us > 0) {
        rc = p->d.vt->wait_ready(p->d.inst, p->topic, (int)(c->wait_ready_us / 1000), err,
                                 sizeof err);
        if (rc)
            il_log(IL_LOG_WARN, "starting anyway: %s", err);
    }
    il_coord_wait_ready(&p->co, "publisher", p->topic, c->wait_ready_us);

    p->loop = uv_default_loop();
    uv_timer_init(p->loop, &p->tick);
    uv_idle_init(p->loop, &p->soon);
    p->soon.data = p;
    uv_timer_init(p->loop, &p->progress);
    uv_timer_init(p->loop, &p->ender);
    uv_signal_init(p->loop, &p->sigint);
    uv_signal_init(p->loop, &p->sigterm);
    p->tick.data = p->progress.data = p->ender.data = p;
    p->sigint.data = p->sigterm.data = p;
    uv_signal_start(&p->sigint, signal_cb, SIGINT);
    uv_signal_start(&p->sigterm, signal_cb, SIGTERM);
    if (p->rt_fd >= 0) {
        uv_poll_init(p->loop, &p->rt_poll, p->rt_fd);
        p->rt_poll.data = p;
        uv_poll_start(&p->rt_poll, UV_READABLE, rt_poll_cb);
    }

    p->t_start = il_now_us() + 10000;
    p->t_last_progress = p->t_start;
    il_sched_init(&p->s, (uint64_t)c->devices, c->rate, c->duration_us, p->t_start);
    il_log(IL_LOG_INFO,
           "publisher %u: %lld devices x %g msg/s for %.1fs to topic %s via %s (%s)",
           p->pub_id, (long long)c->devices, c->rate, (double)c->duration_us / 1e6,
           p->topic, p->d.vt->name, p->enc == IL_ENC_JSON ? "json" : "binary");
    uv_timer_start(&p->tick, tick_cb, 0, 0);
    if (c->progress_us > 0)
        uv_timer_start(&p->progress, progress_cb, (uint64_t)c->progress_us / 1000,
                       (uint64_t)c->progress_us / 1000);
    uv_run(p->loop, UV_RUN_DEFAULT);
    rt_drain(p, 0);
    il_coord_final(&p->co, p->topic, p->pub_id, p->s.devices,
                   p->interrupted ? 0 : p->s.per_device, p->s.next, p->sent, p->send_failed);
    write_reports(p);
    il_coord_end(&p->co);
    rc = p->exit_status;

    uv_close((uv_handle_t *)&p->tick, NULL);
    uv_close((uv_handle_t *)&p->soon, NULL);
    uv_close((uv_handle_t *)&p->progress, NULL);
    uv_close((uv_handle_t *)&p->ender, NULL);
    uv_close((uv_handle_t *)&p->sigint, NULL);
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    if (p->rt_fd >= 0)
        uv_close((uv_handle_t *)&p->rt_poll, NULL);
    uv_run(p->loop, UV_RUN_DEFAULT);
    uv_loop_close(p->loop);
close:
    il_driver_close(&p->d);
out:
    il_coord_close(&p->co);
    il_meas_free(p->rt);
    il_payload_free(p->payload);
    free(p->body);
    free(p->msg);
    free(p);
    return rc;
}
