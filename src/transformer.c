/*
 * transformer.c - receive, stamp, (re)write, forward.
 */
#include "transformer.h"

#include "clock.h"
#include "envelope.h"
#include "log.h"
#include "payload.h"
#include "report.h"
#include "coord.h"
#include "subscriber.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct tra {
    const il_config *c;
    const char *out_topic;
    il_driver d;
    il_meas *m;
    il_payload *action;
    char *body, *out;
    size_t body_cap, out_cap;
    uint64_t forwarded, send_failed, dropped;
    char last_error[256];
} tra;

static void on_message(void *ud, const char *topic, const void *data, size_t len,
                       int64_t t_recv)
{
    tra *t = ud;
    char err[256], key[16];
    const char *body = NULL;
    int body_len = 0;
    il_env e;
    (void)topic;
    if (!t_recv)
        t_recv = il_now_us();
    /* Decoded once, for both the input's accounting and the action. */
    if (il_env_decode(data, len, &e, NULL, NULL) != 0) {
        il_meas_envelope(t->m, NULL, t_recv);
        t->dropped++;
        return;
    }
    il_meas_envelope(t->m, &e, t_recv);
    if (t->action && !(e.flags & IL_ENV_FIN)) {
        body_len = il_payload_render(t->action, e.dev, e.seq, e.t_intended, t->body,
                                     t->body_cap);
        if (body_len >= 0)
            body = t->body;
    }
    int n = il_env_add_hop(data, len, t_recv, body, (size_t)(body ? body_len : 0),
                           (uint8_t *)t->out, t->out_cap);
    if (n < 0) {
        t->dropped++;
        return;
    }
    il_env_device_key(e.dev, key);
    if (t->d.vt->publish(t->d.inst, t->out_topic, key, t->out, (size_t)n, err,
                         sizeof err) == 0) {
        t->forwarded++;
        return;
    }
    t->send_failed++;
    if (strcmp(err, t->last_error) != 0) {
        il_log(IL_LOG_WARN, "forward to %s failed: %s", t->out_topic, err);
        snprintf(t->last_error, sizeof t->last_error, "%s", err);
    }
}

static int load_action(tra *t)
{
    const il_config *c = t->c;
    char err[512];
    int rc = 0;
    if (c->action_file)
        rc = il_payload_from_file(c->action_file, (uint64_t)c->seed, &t->action, err,
                                  sizeof err);
    else if (c->action)
        rc = il_payload_from_template(c->action, (uint64_t)c->seed, &t->action, err,
                                      sizeof err);
    if (rc) {
        il_log(IL_LOG_ERROR, "%s='%s' is invalid: %s",
               c->action_file ? "IOTLAT_ACTION_FILE" : "IOTLAT_ACTION",
               c->action_file ? c->action_file : c->action, err);
        return 2;
    }
    t->body_cap = t->action ? il_payload_max_len(t->action) + 1 : 1;
    t->out_cap = (size_t)c->max_message + t->body_cap + 256;
    t->body = malloc(t->body_cap);
    t->out = malloc(t->out_cap);
    return t->body && t->out ? 0 : 1;
}

typedef struct tra_report {
    tra *t;
    il_hist *h;
    il_coord *co;
} tra_report;

static void report_body(FILE *f, void *ud)
{
    tra_report *r = ud;
    fprintf(f, "\"forwarded\":%llu,\"send_failed\":%llu,\"dropped\":%llu,\"input\":{",
            (unsigned long long)r->t->forwarded, (unsigned long long)r->t->send_failed,
            (unsigned long long)r->t->dropped);
    il_meas_report_json(r->t->m, f, r->h);
    fprintf(f, "},");
    il_coord_report_json(r->co, f);
}

static int on_second(void *ud, int64_t now)
{
    return il_coord_second(ud, NULL, NULL, now);
}

/* With a claimed input, the output topic is IOTLAT_OUT_TOPIC with "{topic}"
 * replaced by the input topic, or the input topic + ".out" when it has no
 * such placeholder (every replica needs its own output). */
static void derive_out_topic(const il_config *c, const char *in, char *out, size_t len)
{
    const char *ph = strstr(c->out_topic, "{topic}");
    if (ph)
        snprintf(out, len, "%.*s%s%s", (int)(ph - c->out_topic), c->out_topic, in, ph + 7);
    else
        snprintf(out, len, "%s.out", in);
}

int il_transformer_run(const il_config *c)
{
    tra *t = calloc(1, sizeof *t);
    il_hist *h = malloc(sizeof(il_hist));
    il_coord co;
    char err[512], in_topic[256], out_topic[300], source[256];
    int rc;
    if (!t || !h) {
        free(t);
        free(h);
        return 1;
    }
    t->c = c;
    snprintf(in_topic, sizeof in_topic, "%s", c->in_topic);
    snprintf(out_topic, sizeof out_topic, "%s", c->out_topic);
    if ((rc = il_coord_open(&co, c, "transformer", NULL))) {
        free(t);
        free(h);
        return rc;
    }
    if ((rc = load_action(t)))
        goto out;
    snprintf(source, sizeof source, "%s", in_topic);
    if (c->claim != IL_CLAIM_NONE) {
        const char *stage = c->claim == IL_CLAIM_PUBLISHER ? "publisher" : "transformer";
        if (!co.store) {
            il_log(IL_LOG_ERROR, "IOTLAT_CLAIM='%s' needs IOTLAT_REDIS_URL: claims are made "
                                 "in the results store",
                   stage);
            rc = 2;
            goto out;
        }
        if (!il_coord_claim(&co, stage)) {
            il_log(IL_LOG_INFO, "no topic claimed: nothing to forward");
            goto out;
        }
        snprintf(in_topic, sizeof in_topic, "%s", co.topic);
        derive_out_topic(c, in_topic, out_topic, sizeof out_topic);
        if (il_store_topic_field(co.store, stage, in_topic, "source", source,
                                 sizeof source) != 1)
            snprintf(source, sizeof source, "%s", in_topic);
    }
    t->out_topic = out_topic;
    if ((rc = il_driver_setup(&t->d, c->driver, c->plugin_dir,
                              IOTLAT_ROLE_PUBLISH | IOTLAT_ROLE_SUBSCRIBE)))
        goto out;
    t->m = il_meas_new();
    if (!t->m) {
        rc = 1;
        goto close;
    }
    if (co.endpoint[0] && t->d.vt->abi_minor >= 1 && t->d.vt->attach &&
        t->d.vt->attach(t->d.inst, co.endpoint, err, sizeof err)) {
        il_log(IL_LOG_ERROR, "%s: %s", t->d.label, err);
        rc = 1;
        goto close;
    }
    il_coord_advertise(&co, &t->d, "transformer", out_topic, source);
    /* Subscribe only once the way downstream is ready, so the publisher's
     * wait for us also covers the rest of the chain. */
    if (t->d.vt->wait_ready && c->wait_ready_us > 0 &&
        t->d.vt->wait_ready(t->d.inst, out_topic, (int)(c->wait_ready_us / 1000), err,
                            sizeof err))
        il_log(IL_LOG_WARN, "starting anyway: %s", err);
    if (c->claim != IL_CLAIM_NONE)
        il_coord_wait_ready(&co, "transformer", out_topic, c->wait_ready_us);
    if (t->d.vt->subscribe(t->d.inst, in_topic, on_message, t, err, sizeof err)) {
        il_log(IL_LOG_ERROR, "IOTLAT_IN_TOPIC='%s': %s", in_topic, err);
        rc = 1;
        goto close;
    }
    il_coord_mark_ready(&co, co.stage ? co.stage : "publisher", in_topic);
    il_log(IL_LOG_INFO, "forwarding %s -> %s via %s%s", in_topic, out_topic,
           t->d.vt->name, t->action ? " with an action body" : "");
    int64_t t0 = il_now_us();
    rc = il_receive_loop(c, &t->d, t->m, "[tra]", t0, co.store ? on_second : NULL, &co);
    if (t->d.vt->flush(t->d.inst, (int)(c->grace_us / 1000), err, sizeof err))
        il_log(IL_LOG_WARN, "flush: %s", err);
    int64_t t1 = il_now_us();
    il_meas_roll(t->m);
    if (t->m->all_ended_us)
        il_driver_forget_outage_after(&t->d, t->m->all_ended_us);
    il_coord_release(&co, il_meas_all_ended(t->m));
    printf("iotlat-transformer report (run %s, driver %s, %s -> %s, %.1fs)\n", c->run_id,
           t->d.vt->name, in_topic, out_topic, (double)(t1 - t0) / 1e6);
    printf("  forwarded %llu, forward failed %llu, dropped (malformed) %llu\n",
           (unsigned long long)t->forwarded, (unsigned long long)t->send_failed,
           (unsigned long long)t->dropped);
    printf("input:\n");
    il_meas_report_text(t->m, stdout, h);
    il_coord_report_text(&co, stdout);
    fflush(stdout);
    tra_report r = {t, h, &co};
    if (c->report_json && il_report_write(c, &t->d, "transformer", t0, t1, report_body, &r))
        rc = 1;
    il_coord_end(&co);
close:
    il_driver_close(&t->d);
out:
    il_coord_close(&co);
    il_meas_free(t->m);
    il_payload_free(t->action);
    free(t->body);
    free(t->out);
    free(t);
    free(h);
    return rc;
}
