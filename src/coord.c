/*
 * coord.c - the binaries' use of the Redis store (see coord.h).
 */
#include "coord.h"

#include "clock.h"
#include "log.h"
#include "report.h"
#include "runctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLOCK_SAMPLES 16
#define CLAIM_RETRY_US 500000

static void field_i64(char *buf, size_t len, int64_t v) { snprintf(buf, len, "%lld", (long long)v); }

int il_coord_open(il_coord *co, const il_config *c, const char *role, const char *id)
{
    char err[512];
    memset(co, 0, sizeof *co);
    co->c = c;
    co->role = role;
    if (gethostname(co->host, sizeof co->host) != 0)
        snprintf(co->host, sizeof co->host, "unknown");
    if (id)
        snprintf(co->id, sizeof co->id, "%s", id);
    else
        snprintf(co->id, sizeof co->id, "%.64s-%ld", co->host, (long)getpid());
    if (!c->redis_url)
        return 0;
    int rc = il_store_open(&co->store, c, role, co->id, err, sizeof err);
    if (rc) {
        il_log(IL_LOG_ERROR, "%s", err);
        return rc == IL_STORE_EINVAL || rc == IL_STORE_EAUTH ? 2 : 1;
    }
    if (!il_store_connected(co->store))
        il_log(IL_LOG_WARN, "results store not reachable yet: measuring anyway, "
                            "records are buffered until it is");
    if (il_store_clock(co->store, CLOCK_SAMPLES, &co->clock_offset_us, &co->clock_error_us) ==
        0) {
        co->clock_known = 1;
        il_log(IL_LOG_INFO, "clock offset to the results store: %+lld us (+-%lld us)",
               (long long)co->clock_offset_us, (long long)co->clock_error_us);
    }
    char cfg[4096], start[32], off[32], errb[32];
    il_config_to_json(c, cfg, sizeof cfg);
    field_i64(start, sizeof start, il_now_us());
    field_i64(off, sizeof off, co->clock_offset_us);
    field_i64(errb, sizeof errb, co->clock_error_us);
    const char *fields[] = {"role",     role,  "id", co->id, "host", co->host,
                            "version",  il_version(), "driver", c->driver,
                            "config",   cfg,   "start_us", start,
                            "clock_offset_us", co->clock_known ? off : "",
                            "clock_error_us", co->clock_known ? errb : "", NULL, NULL};
    il_store_meta(co->store, fields);
    return 0;
}

void il_coord_close(il_coord *co)
{
    il_store_close(co->store);
    co->store = NULL;
}

/* "tcp://0.0.0.0:40123" -> "tcp://<advertise host>:40123". */
static void rewrite_endpoint(const il_config *c, const char *bound, char *out, size_t len)
{
    const char *host = c->advertise_host ? c->advertise_host : getenv("POD_IP");
    char name[256];
    const char *sep = strstr(bound, "://");
    const char *colon = strrchr(bound, ':');
    if (!sep || !colon || colon < sep + 3) {
        snprintf(out, len, "%s", bound);
        return;
    }
    if (!host) {
        /* A wildcard address means nothing to another host: use our name. */
        if (strncmp(sep + 3, "0.0.0.0:", 8) == 0 || strncmp(sep + 3, "*:", 2) == 0 ||
            strncmp(sep + 3, "[::]:", 5) == 0) {
            if (gethostname(name, sizeof name) != 0)
                snprintf(name, sizeof name, "localhost");
            host = name;
        } else {
            snprintf(out, len, "%s", bound);
            return;
        }
    }
    snprintf(out, len, "%.*s%s%s", (int)(sep + 3 - bound), bound, host, colon);
}

int il_coord_advertise(il_coord *co, il_driver *d, const char *stage, const char *topic,
                       const char *source_topic)
{
    char bound[512] = "", ep[600] = "", off[32], errb[32], pid[32];
    if (!co->store)
        return 0;
    if (d->vt->abi_minor >= 1 && d->vt->endpoint &&
        d->vt->endpoint(d->inst, bound, sizeof bound) == 0)
        rewrite_endpoint(co->c, bound, ep, sizeof ep);
    field_i64(off, sizeof off, co->clock_offset_us);
    field_i64(errb, sizeof errb, co->clock_error_us);
    field_i64(pid, sizeof pid, getpid());
    const char *fields[] = {"endpoint", ep,
                            "driver", d->vt->name,
                            "claimer", co->id,
                            "host", co->host,
                            "source", source_topic ? source_topic : topic,
                            "clock_offset_us", co->clock_known ? off : "",
                            "clock_error_us", co->clock_known ? errb : "",
                            NULL, NULL};
    int rc = il_store_advertise(co->store, stage, topic, fields);
    if (rc)
        il_log(IL_LOG_WARN, "could not advertise topic %s (results store unreachable?)",
               topic);
    else
        il_log(IL_LOG_INFO, "advertised %s topic %s%s%s", stage, topic, ep[0] ? " at " : "",
               ep);
    return rc;
}

int il_coord_claim(il_coord *co, const char *stage)
{
    int64_t t0 = il_now_us();
    int waited = 0;
    co->stage = stage;
    while (!il_runctl_stop_requested()) {
        int rc = il_store_claim(co->store, stage, co->topic, sizeof co->topic, co->endpoint,
                                sizeof co->endpoint);
        if (rc == 1) {
            co->claimed = 1;
            co->next_renew_us = il_now_us() + il_store_lease_us(co->store) / 3;
            co->takeover_prev_us = il_store_last_record_us(co->store, co->topic);
            il_log(IL_LOG_INFO, "claimed %s topic %s%s%s%s", stage, co->topic,
                   co->endpoint[0] ? " at " : "", co->endpoint,
                   co->takeover_prev_us ? " (taking over from a previous claimer)" : "");
            return 1;
        }
        if (!waited++)
            il_log(IL_LOG_INFO, "waiting for a free %s topic to claim", stage);
        if (co->c->duration_us > 0 && il_now_us() - t0 >= co->c->duration_us)
            break;
        usleep(CLAIM_RETRY_US);
    }
    return 0;
}

int il_coord_second(il_coord *co, il_meas *m, const char *topic, int64_t now)
{
    if (!co->store)
        return 0;
    il_store_poll(co->store);
    if (co->claimed && now >= co->next_renew_us) {
        int r = il_store_renew(co->store, co->stage, co->topic);
        if (r == 0) {
            il_log(IL_LOG_ERROR, "lost the lease on %s topic %s to another claimer", co->stage,
                   co->topic);
            co->lease_lost = 1;
            co->claimed = 0;
            return 1;
        }
        /* Unreachable: keep going; the lease may expire, in which case the
         * renewal after the outage tells. */
        co->next_renew_us = now + il_store_lease_us(co->store) / 3;
    }
    if (m && topic) {
        const il_seq_totals *t = &m->seq.t;
        il_record r = {.t_us = now,
                       .received = t->received,
                       .received_unique = t->received_unique,
                       .lost = t->lost,
                       .duplicates = t->duplicates,
                       .reordered = t->reordered,
                       .malformed = m->malformed,
                       .stale = t->stale,
                       .expected = t->expected,
                       .devices = t->devices,
                       .lat = &m->lat.cur,
                       .svc = &m->svc.cur,
                       .lag = &m->lag.cur};
        il_store_record(co->store, topic, &r);
    }
    return 0;
}

void il_coord_mark_ready(il_coord *co, const char *stage, const char *topic)
{
    if (!co->store)
        return;
    const char *fields[] = {"ready", co->id, NULL, NULL};
    il_store_topic_set(co->store, stage, topic, fields);
}

int il_coord_wait_ready(il_coord *co, const char *stage, const char *topic,
                        int64_t timeout_us)
{
    char v[128];
    int64_t until = il_now_us() + timeout_us;
    if (!co->store || timeout_us <= 0)
        return 1;
    while (!il_runctl_stop_requested()) {
        if (il_store_topic_field(co->store, stage, topic, "ready", v, sizeof v) == 1 && v[0])
            return 1;
        if (il_now_us() >= until)
            break;
        usleep(100000);
    }
    il_log(IL_LOG_WARN, "nobody marked %s topic %s ready within %.1f s: starting anyway", stage,
           topic, (double)timeout_us / 1e6);
    return 0;
}

void il_coord_release(il_coord *co, int done)
{
    if (co->store && co->claimed)
        il_store_release(co->store, co->stage, co->topic, done);
    co->claimed = 0;
}

void il_coord_final(il_coord *co, const char *topic, uint32_t pub_id, uint64_t devices,
                    uint64_t per_device, uint64_t scheduled, uint64_t sent,
                    uint64_t send_failed)
{
    char v[6][32];
    if (!co->store)
        return;
    snprintf(v[0], 32, "%u", pub_id);
    snprintf(v[1], 32, "%llu", (unsigned long long)devices);
    snprintf(v[2], 32, "%llu", (unsigned long long)per_device);
    snprintf(v[3], 32, "%llu", (unsigned long long)scheduled);
    snprintf(v[4], 32, "%llu", (unsigned long long)sent);
    snprintf(v[5], 32, "%llu", (unsigned long long)send_failed);
    const char *fields[] = {"publisher_id", v[0], "devices",     v[1], "per_device", v[2],
                            "scheduled",    v[3], "sent",        v[4], "send_failed", v[5],
                            NULL,           NULL};
    /* The end markers may be lost in an outage; these counts are what the
     * subscriber settles the tail with then.  Retry briefly: they matter. */
    for (int i = 0; i < 10 && il_store_final(co->store, topic, fields) != 0; i++)
        usleep(200000);
}

void il_coord_settle_tail(il_coord *co, il_meas *m, const char *source_topic)
{
    char v[3][32];
    if (!co->store || m->seq.t.devices_with_fin == m->seq.t.devices)
        return;
    if (il_store_get_final(co->store, source_topic, "publisher_id", v[0], 32) != 1 ||
        il_store_get_final(co->store, source_topic, "devices", v[1], 32) != 1 ||
        il_store_get_final(co->store, source_topic, "per_device", v[2], 32) != 1)
        return;
    uint32_t pub = (uint32_t)strtoul(v[0], NULL, 10);
    uint64_t devices = strtoull(v[1], NULL, 10), per = strtoull(v[2], NULL, 10);
    uint64_t settled = 0;
    for (uint64_t d = 0; d < devices && d <= UINT32_MAX; d++) {
        il_seq_dev_info info;
        if (il_seq_get(&m->seq, pub, (uint32_t)d, &info) == 0 && info.has_fin)
            continue;
        il_seq_fin(&m->seq, pub, (uint32_t)d, per);
        settled++;
    }
    if (settled)
        il_log(IL_LOG_INFO,
               "settled the tail of %llu devices from the publisher's final counts",
               (unsigned long long)settled);
}

void il_coord_end(il_coord *co)
{
    char end[32];
    if (!co->store)
        return;
    field_i64(end, sizeof end, il_now_us());
    const char *fields[] = {"end_us", end, NULL, NULL};
    il_store_meta(co->store, fields);
}

void il_coord_report_json(il_coord *co, FILE *f)
{
    if (!co->store)
        return;
    fprintf(f,
            "\"store\":{\"outages\":%llu,\"unreachable_us\":%lld,\"buffered\":%zu,"
            "\"dropped\":%llu,\"writes\":%llu",
            (unsigned long long)il_store_outages(co->store),
            (long long)il_store_outage_us(co->store), il_store_buffered(co->store),
            (unsigned long long)il_store_dropped(co->store),
            (unsigned long long)il_store_writes(co->store));
    if (co->stage) {
        fprintf(f, ",\"claimed_stage\":");
        il_json_str(f, co->stage);
        fprintf(f, ",\"claimed_topic\":");
        il_json_str(f, co->topic);
        fprintf(f, ",\"lease_lost\":%s,\"takeover\":%s,\"previous_last_record_us\":%lld",
                co->lease_lost ? "true" : "false", co->takeover_prev_us ? "true" : "false",
                (long long)co->takeover_prev_us);
    }
    fprintf(f, "},");
}

void il_coord_report_text(il_coord *co, FILE *f)
{
    if (!co->store)
        return;
    fprintf(f, "  results store: %llu outages, unreachable %.1f s, %zu records still buffered, "
               "%llu dropped\n",
            (unsigned long long)il_store_outages(co->store),
            (double)il_store_outage_us(co->store) / 1e6, il_store_buffered(co->store),
            (unsigned long long)il_store_dropped(co->store));
    if (co->takeover_prev_us)
        fprintf(f, "  took over topic %s: the previous claimer's last record was at %lld us\n",
                co->topic, (long long)co->takeover_prev_us);
}
