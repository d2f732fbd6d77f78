/*
 * report.c - text and JSON rendering of results.
 */
#include "report.h"

#include "clock.h"
#include "config.h"
#include "driver.h"
#include "envelope.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *il_fmt_us(int64_t us, char *buf, size_t len)
{
    int64_t a = us < 0 ? -us : us;
    if (a < 1000)
        snprintf(buf, len, "%lldus", (long long)us);
    else if (a < 1000000)
        snprintf(buf, len, "%.2fms", (double)us / 1e3);
    else
        snprintf(buf, len, "%.2fs", (double)us / 1e6);
    return buf;
}

void il_report_hist_json(FILE *f, const char *key, const il_hist *h)
{
    fprintf(f,
            "\"%s\":{\"count\":%llu,\"min\":%lld,\"p50\":%lld,\"p90\":%lld,"
            "\"p99\":%lld,\"p999\":%lld,\"p9999\":%lld,\"max\":%lld,\"mean\":%.1f,"
            "\"negative\":%llu,\"min_negative\":%lld,\"overflow\":%llu}",
            key, (unsigned long long)h->total,
            (long long)(h->total ? h->min : 0), (long long)il_hist_percentile(h, 50),
            (long long)il_hist_percentile(h, 90), (long long)il_hist_percentile(h, 99),
            (long long)il_hist_percentile(h, 99.9),
            (long long)il_hist_percentile(h, 99.99), (long long)(h->total ? h->max : 0),
            il_hist_mean(h), (unsigned long long)h->negative,
            (long long)h->min_negative, (unsigned long long)h->overflow);
}

void il_report_hist_text(FILE *f, const char *label, const il_hist *h)
{
    char a[6][24];
    if (!h->total) {
        fprintf(f, "  %-22s no samples%s\n", label,
                h->negative ? " (all negative: clock skew)" : "");
        return;
    }
    fprintf(f, "  %-22s min %-8s p50 %-8s p90 %-8s p99 %-8s p99.9 %-8s max %-8s (n=%llu)\n",
            label, il_fmt_us(h->min, a[0], 24), il_fmt_us(il_hist_percentile(h, 50), a[1], 24),
            il_fmt_us(il_hist_percentile(h, 90), a[2], 24),
            il_fmt_us(il_hist_percentile(h, 99), a[3], 24),
            il_fmt_us(il_hist_percentile(h, 99.9), a[4], 24), il_fmt_us(h->max, a[5], 24),
            (unsigned long long)h->total);
    if (h->negative)
        fprintf(f, "  %-22s %llu samples were negative (clock skew), most negative %s\n", "",
                (unsigned long long)h->negative, il_fmt_us(h->min_negative, a[0], 24));
}

FILE *il_report_open(const char *path, char *tmp_path, size_t tmp_len)
{
    snprintf(tmp_path, tmp_len, "%s.tmp.%ld", path, (long)getpid());
    return fopen(tmp_path, "w");
}

int il_report_commit(FILE *f, const char *tmp_path, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        unlink(tmp_path);
        errno = errno ? errno : EIO;
        return -1;
    }
    if (rename(tmp_path, path) != 0) {
        int e = errno;
        unlink(tmp_path);
        errno = e;
        return -1;
    }
    return 0;
}

void il_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void il_report_json_head(FILE *f, const char *role, const il_config *c,
                         const il_driver *d, int64_t start_us, int64_t end_us)
{
    char a[40], b[40];
    il_env_format_iso8601(start_us, a, sizeof a);
    il_env_format_iso8601(end_us, b, sizeof b);
    fprintf(f, "{\"role\":\"%s\",\"version\":", role);
    il_json_str(f, il_version());
    fprintf(f, ",\"run_id\":");
    il_json_str(f, c->run_id);
    fprintf(f, ",\"driver\":");
    il_json_str(f, d->vt ? d->vt->name : "");
    fprintf(f, ",\"driver_version\":");
    il_json_str(f, d->vt ? d->vt->version : "");
    fprintf(f, ",\"start\":\"%s\",\"end\":\"%s\",\"duration_s\":%.3f,", a, b,
            (double)(end_us - start_us) / 1e6);
}

void il_report_json_tail(FILE *f, const il_config *c, const il_driver *d)
{
    char cfg[4096];
    int64_t now = il_now_us();
    fprintf(f, "\"outages\":{\"disconnects\":%llu,\"total_us\":%lld,\"windows\":[",
            (unsigned long long)d->disconnects, (long long)il_driver_outage_us(d, now));
    for (size_t i = 0; i < d->noutages; i++) {
        const il_outage *o = &d->outages[i];
        fprintf(f, "%s{\"start_us\":%lld,\"end_us\":%lld,\"why\":", i ? "," : "",
                (long long)o->start_us, (long long)(o->end_us ? o->end_us : now));
        il_json_str(f, o->why);
        fputc('}', f);
    }
    il_config_to_json(c, cfg, sizeof cfg);
    fprintf(f, "]},\"config\":%s", cfg);
}

int il_report_write(const il_config *c, const il_driver *d, const char *role,
                    int64_t start_us, int64_t end_us, void (*body)(FILE *f, void *ud),
                    void *ud)
{
    char tmp[4200];
    FILE *f = il_report_open(c->report_json, tmp, sizeof tmp);
    if (f) {
        il_report_json_head(f, role, c, d, start_us, end_us);
        body(f, ud);
        il_report_json_tail(f, c, d);
        fprintf(f, "}\n");
        if (il_report_commit(f, tmp, c->report_json) == 0)
            return 0;
    }
    il_log(IL_LOG_ERROR, "IOTLAT_REPORT_JSON='%s': cannot write: %s", c->report_json,
           strerror(errno));
    return 1;
}
