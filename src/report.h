/*
 * report.h - turning counters and histograms into text and JSON.
 *
 * The final JSON report is a stable interface that CI pipelines diff, so the
 * field names for a latency distribution are written in one place:
 * {"count","min","p50","p90","p99","p999","max","mean","negative"}, all in
 * microseconds.  The text report and the live progress line use the same
 * numbers with human units.  Nothing here is on the per-message path.
 */
#ifndef IL_REPORT_H
#define IL_REPORT_H

#include "histogram.h"

#include <stdint.h>
#include <stdio.h>

/* Human-readable microseconds: "850us", "1.25ms", "3.40s". */
const char *il_fmt_us(int64_t us, char *buf, size_t len);

/* "key":{...} for a distribution (no leading comma). */
void il_report_hist_json(FILE *f, const char *key, const il_hist *h);

/* One text line: label, count, min/p50/p90/p99/p99.9/max/mean. */
void il_report_hist_text(FILE *f, const char *label, const il_hist *h);

/* Open `path` for a report written atomically: the data goes to a temporary
 * file beside it, renamed over `path` by il_report_commit.  Returns NULL with
 * errno set on failure. */
FILE *il_report_open(const char *path, char *tmp_path, size_t tmp_len);
/* Close and rename; returns 0 or -1 with errno set. */
int il_report_commit(FILE *f, const char *tmp_path, const char *path);

struct il_config;
struct il_driver;

/* The members every JSON report starts with ("role", "version", "run_id",
 * "driver", "start", "end"), followed by a comma. */
void il_report_json_head(FILE *f, const char *role, const struct il_config *c,
                         const struct il_driver *d, int64_t start_us, int64_t end_us);

/* "outages":{...} from the driver's connection events, and the
 * configuration as "config":{...} (no secrets), no trailing comma. */
void il_report_json_tail(FILE *f, const struct il_config *c,
                         const struct il_driver *d);

/* Write a whole JSON report to c->report_json atomically: the head, then
 * body(f, ud) which writes its members each followed by a comma, then the
 * tail.  Logs the reason and returns 1 if the file cannot be written, else
 * 0. */
int il_report_write(const struct il_config *c, const struct il_driver *d,
                    const char *role, int64_t start_us, int64_t end_us,
                    void (*body)(FILE *f, void *ud), void *ud);

/* JSON string with escaping. */
void il_json_str(FILE *f, const char *s);

#endif
