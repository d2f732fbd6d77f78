/*
 * measure.c - decoding, loss accounting and latency recording per message.
 */
#include "measure.h"

#include "envelope.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>

il_meas *il_meas_new(void)
{
    il_meas *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (il_seq_init(&m->seq) != 0) {
        free(m);
        return NULL;
    }
    il_meas_dist *all[] = {&m->lat, &m->svc, &m->lag, &m->seg[0], &m->seg[1],
                           &m->seg[2], &m->seg[3]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        il_hist_init(&all[i]->cur);
        il_hist_init(&all[i]->total);
    }
    return m;
}

void il_meas_free(il_meas *m)
{
    if (!m)
        return;
    il_seq_free(&m->seq);
    free(m);
}

static void on_fin(il_meas *m, const il_env *e)
{
    il_seq_dev_info before;
    int had = il_seq_get(&m->seq, e->pub, e->dev, &before) == 0 && before.has_fin;
    if (il_seq_fin(&m->seq, e->pub, e->dev, e->seq) < 0) {
        m->malformed++;
        m->malformed_cur++;
        return;
    }
    m->fins++;
    if (had)
        return; /* a repeated marker changes nothing */
    int i;
    for (i = 0; i < m->npubs && m->pubs[i].pub != e->pub; i++)
        ;
    if (i == m->npubs) {
        if (m->npubs == IL_MEAS_PUBS) {
            m->too_many_pubs++;
            return;
        }
        m->pubs[m->npubs++] = (il_meas_pub){.pub = e->pub};
    }
    if (e->devices > m->pubs[i].devices)
        m->pubs[i].devices = e->devices;
    m->pubs[i].fins++;
}

void il_meas_message(il_meas *m, const void *data, size_t len, int64_t t_recv)
{
    il_env e;
    int ok = il_env_decode(data, len, &e, NULL, NULL) == 0;
    il_meas_envelope(m, ok ? &e : NULL, t_recv);
}

void il_meas_envelope(il_meas *m, const il_env *e, int64_t t_recv)
{
    m->received_cur++;
    if (!m->first_us)
        m->first_us = t_recv;
    m->last_us = t_recv;
    if (!e) {
        m->malformed++;
        m->malformed_cur++;
        return;
    }
    if (e->flags & IL_ENV_FIN) {
        m->received_cur--; /* markers are not messages */
        on_fin(m, e);
        if (!m->all_ended_us && il_meas_all_ended(m))
            m->all_ended_us = t_recv;
        return;
    }
    if (e->flags & IL_ENV_SEED) {
        /* The old tool's messages carry a time but no identity: they give
         * latency, and nothing to account loss with. */
        m->untracked++;
        il_hist_record(&m->lat.cur, t_recv - e->t_intended);
        return;
    }
    int r = il_seq_record(&m->seq, e->pub, e->dev, e->seq);
    if (r < 0) {
        m->malformed++;
        m->malformed_cur++;
        return;
    }
    /* A duplicate or an unclassifiable old arrival says nothing new about
     * the latency of that message; only first arrivals are recorded. */
    if (r == IL_SEQ_DUPLICATE || r == IL_SEQ_STALE)
        return;
    il_hist_record(&m->lat.cur, t_recv - e->t_intended);
    il_hist_record(&m->svc.cur, t_recv - e->t_sent);
    il_hist_record(&m->lag.cur, e->t_sent - e->t_intended);
    if (e->nhops) {
        int64_t prev = e->t_sent;
        uint32_t n = e->nhops < IL_MEAS_SEGMENTS - 1 ? e->nhops : IL_MEAS_SEGMENTS - 1;
        for (uint32_t i = 0; i < n; i++) {
            il_hist_record(&m->seg[i].cur, e->t_hop[i] - prev);
            prev = e->t_hop[i];
        }
        il_hist_record(&m->seg[n].cur, t_recv - e->t_hop[e->nhops - 1]);
        if (e->nhops > m->max_hops)
            m->max_hops = e->nhops;
    }
}

void il_meas_roll(il_meas *m)
{
    il_meas_dist *all[] = {&m->lat, &m->svc, &m->lag, &m->seg[0], &m->seg[1],
                           &m->seg[2], &m->seg[3]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (all[i]->cur.total || all[i]->cur.negative) {
            il_hist_merge(&all[i]->total, &all[i]->cur);
            il_hist_init(&all[i]->cur);
        }
    }
    m->received_cur = 0;
    m->malformed_cur = 0;
}

int il_meas_all_ended(const il_meas *m)
{
    if (m->npubs == 0)
        return 0;
    for (int i = 0; i < m->npubs; i++)
        if (m->pubs[i].fins < m->pubs[i].devices || m->pubs[i].devices == 0)
            return 0;
    return 1;
}

void il_meas_total(const il_meas_dist *d, il_hist *out)
{
    memcpy(out, &d->total, sizeof *out);
    il_hist_merge(out, &d->cur);
}

void il_meas_progress(il_meas *m, FILE *f, const char *who, double elapsed_s,
                      double interval_s)
{
    char a[4][24];
    const il_hist *h = &m->lat.cur;
    const il_seq_totals *t = &m->seq.t;
    fprintf(f,
            "%s %6.1fs recv %llu (%.0f/s) lost %llu dup %llu reord %llu bad %llu | "
            "latency p50 %s p99 %s max %s | send lag p99 %s\n",
            who, elapsed_s, (unsigned long long)t->received,
            interval_s > 0 ? (double)m->received_cur / interval_s : 0.0,
            (unsigned long long)t->lost, (unsigned long long)t->duplicates,
            (unsigned long long)t->reordered, (unsigned long long)m->malformed,
            h->total ? il_fmt_us(il_hist_percentile(h, 50), a[0], 24) : "-",
            h->total ? il_fmt_us(il_hist_percentile(h, 99), a[1], 24) : "-",
            h->total ? il_fmt_us(h->max, a[2], 24) : "-",
            m->lag.cur.total ? il_fmt_us(il_hist_percentile(&m->lag.cur, 99), a[3], 24)
                             : "-");
    fflush(f);
}

static const char *seg_name(uint32_t i, uint32_t hops, char *buf, size_t len)
{
    if (i == 0)
        snprintf(buf, len, "publisher->hop1");
    else if (i >= hops)
        snprintf(buf, len, "hop%u->subscriber", hops);
    else
        snprintf(buf, len, "hop%u->hop%u", i, i + 1);
    return buf;
}

static uint32_t segments(const il_meas *m)
{
    uint32_t n = m->max_hops < IL_MEAS_SEGMENTS - 1 ? m->max_hops : IL_MEAS_SEGMENTS - 1;
    return m->max_hops ? n + 1 : 0;
}

void il_meas_report_text(il_meas *m, FILE *f, il_hist *h)
{
    const il_seq_totals *t = &m->seq.t;
    char name[48];
    fprintf(f,
            "  messages: received %llu (unique %llu), lost %llu, duplicates %llu, "
            "reordered %llu, malformed %llu, stale %llu\n",
            (unsigned long long)t->received, (unsigned long long)t->received_unique,
            (unsigned long long)t->lost, (unsigned long long)t->duplicates,
            (unsigned long long)t->reordered, (unsigned long long)m->malformed,
            (unsigned long long)t->stale);
    fprintf(f,
            "  accounting: expected %llu = received %llu + lost %llu over %llu "
            "devices (%llu with end marker)%s\n",
            (unsigned long long)t->expected, (unsigned long long)t->received_unique,
            (unsigned long long)t->lost, (unsigned long long)t->devices,
            (unsigned long long)t->devices_with_fin,
            t->devices_with_fin < t->devices
                ? "; devices without an end marker may have lost their tail"
                : "");
    if (m->untracked)
        fprintf(f, "  old-format messages (latency only): %llu\n",
                (unsigned long long)m->untracked);
    il_meas_total(&m->lat, h);
    il_report_hist_text(f, "latency (intended)", h);
    il_meas_total(&m->svc, h);
    il_report_hist_text(f, "latency (sent)", h);
    il_meas_total(&m->lag, h);
    il_report_hist_text(f, "send lag", h);
    for (uint32_t i = 0; i < segments(m); i++) {
        il_meas_total(&m->seg[i], h);
        il_report_hist_text(f, seg_name(i, m->max_hops, name, sizeof name), h);
    }
}

static void count_unbalanced(const il_seq_dev_info *d, void *ud)
{
    if (d->expected != d->received_unique + d->lost)
        ++*(uint64_t *)ud;
}

void il_meas_report_json(il_meas *m, FILE *f, il_hist *h)
{
    /* Checked per device, not only in total: two devices' errors must not
     * cancel out. */
    uint64_t unbalanced = 0;
    il_seq_foreach(&m->seq, count_unbalanced, &unbalanced);
    const il_seq_totals *t = &m->seq.t;
    char name[48];
    fprintf(f,
            "\"received\":%llu,\"received_unique\":%llu,\"lost\":%llu,"
            "\"duplicates\":%llu,\"reordered\":%llu,\"malformed\":%llu,\"stale\":%llu,"
            "\"untracked\":%llu,\"expected\":%llu,\"devices\":%llu,"
            "\"devices_with_fin\":%llu,\"publishers_ended\":%s,"
            "\"accounting\":{\"expected\":%llu,\"received_unique\":%llu,\"lost\":%llu,"
            "\"balanced\":%s,\"devices_unbalanced\":%llu,\"tail_known\":%s},",
            (unsigned long long)t->received, (unsigned long long)t->received_unique,
            (unsigned long long)t->lost, (unsigned long long)t->duplicates,
            (unsigned long long)t->reordered, (unsigned long long)m->malformed,
            (unsigned long long)t->stale, (unsigned long long)m->untracked,
            (unsigned long long)t->expected, (unsigned long long)t->devices,
            (unsigned long long)t->devices_with_fin,
            il_meas_all_ended(m) ? "true" : "false", (unsigned long long)t->expected,
            (unsigned long long)t->received_unique, (unsigned long long)t->lost,
            t->expected == t->received_unique + t->lost && !unbalanced ? "true" : "false",
            (unsigned long long)unbalanced,
            t->devices_with_fin == t->devices ? "true" : "false");
    double window = (double)(m->last_us - m->first_us) / 1e6;
    fprintf(f, "\"first_receive_us\":%lld,\"last_receive_us\":%lld,\"receive_rate\":%.1f,",
            (long long)m->first_us, (long long)m->last_us,
            window > 0 ? (double)t->received / window : 0.0);
    il_meas_total(&m->lat, h);
    il_report_hist_json(f, "latency_us", h);
    fputc(',', f);
    il_meas_total(&m->svc, h);
    il_report_hist_json(f, "service_latency_us", h);
    fputc(',', f);
    il_meas_total(&m->lag, h);
    il_report_hist_json(f, "send_lag_us", h);
    fprintf(f, ",\"hops\":[");
    for (uint32_t i = 0; i < segments(m); i++) {
        il_meas_total(&m->seg[i], h);
        fprintf(f, "%s{\"segment\":\"%s\",", i ? "," : "",
                seg_name(i, m->max_hops, name, sizeof name));
        il_report_hist_json(f, "latency_us", h);
        fputc('}', f);
    }
    fputc(']', f);
}
