/*
 * elk.c - ECS documents of per-second results (see elk.h).
 */
#include "elk.h"

#include "envelope.h"
#include "report.h"

#include <inttypes.h>
#include <string.h>

#define ECS_VERSION "8.11.0"

void il_elk_id(const char *run, const char *topic, int64_t t_us, char *out)
{
    /* FNV-1a over run, a zero byte (so that "ab"+"c" differs from
     * "a"+"bc"), and topic. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = run; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h *= 0x100000001b3ull;
    for (const char *p = topic; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(out, IL_ELK_ID_LEN, "%016" PRIx64 "-%" PRId64, h, t_us);
}

static void dist(FILE *f, const char *name, const il_hist *h)
{
    il_qsum q;
    il_qsum_of(&q, h);
    fprintf(f, ",\"%s\":{\"count\":%llu,\"negative\":%llu", name,
            (unsigned long long)q.count, (unsigned long long)q.negative);
    /* Percentiles of nothing are left out rather than written as 0, which
     * Kibana would average into real numbers. */
    if (q.count) {
        static const char *const names[IL_NQ] = {"p50_us", "p90_us", "p99_us", "p999_us",
                                                 "max_us"};
        fprintf(f, ",\"min_us\":%lld", (long long)q.min_us);
        for (int k = 0; k < IL_NQ; k++)
            fprintf(f, ",\"%s\":%lld", names[k], (long long)q.q_us[k]);
        fprintf(f, ",\"mean_us\":%.1f", q.sum_us / (double)q.count);
    }
    fputc('}', f);
}

void il_elk_write(FILE *f, const il_elk_in *d)
{
    char id[IL_ELK_ID_LEN], end[40], start[40];
    il_elk_id(d->run, d->topic, d->t_us, id);
    if (il_env_format_iso8601(d->t_us, end, sizeof end) < 0)
        snprintf(end, sizeof end, "1970-01-01T00:00:00.000000Z");
    if (il_env_format_iso8601(d->t_us - d->window_us, start, sizeof start) < 0)
        snprintf(start, sizeof start, "1970-01-01T00:00:00.000000Z");
    fprintf(f,
            "{\"@timestamp\":\"%s\",\"ecs\":{\"version\":\"" ECS_VERSION "\"},"
            "\"event\":{\"id\":\"%s\",\"kind\":\"metric\",\"module\":\"iotlat\","
            "\"dataset\":\"" IL_ELK_DATASET "\",\"start\":\"%s\",\"end\":\"%s\","
            "\"duration\":%lld},\"iotlat\":{\"run\":",
            end, id, start, end, (long long)d->window_us * 1000);
    il_json_str(f, d->run);
    fputs(",\"topic\":", f);
    il_json_str(f, d->topic);
    fputs(",\"driver\":", f);
    il_json_str(f, d->driver && d->driver[0] ? d->driver : "unknown");
    /* The second's change first (what a sum over time adds up), the running
     * totals under "total". */
    for (int k = 0; k < IL_COUNTS; k++)
        if (k != IL_C_DEVICES)
            fprintf(f, ",\"%s\":%lld", il_count_names[k], (long long)d->delta->v[k]);
    fprintf(f, ",\"devices\":%lld,\"total\":{", (long long)d->total->v[IL_C_DEVICES]);
    for (int k = 0, first = 1; k < IL_COUNTS; k++) {
        if (k == IL_C_DEVICES)
            continue;
        fprintf(f, "%s\"%s\":%lld", first ? "" : ",", il_count_names[k],
                (long long)d->total->v[k]);
        first = 0;
    }
    fputc('}', f);
    for (int i = 0; i < IL_DISTS; i++)
        dist(f, il_dist_names[i], d->h ? d->h[i] : NULL);
    if (d->clock_bound_us >= 0)
        fprintf(f, ",\"clock_bound_us\":%lld", (long long)d->clock_bound_us);
    if (d->records)
        fprintf(f, ",\"records\":%u", (unsigned)d->records);
    fputs("}}", f);
}
