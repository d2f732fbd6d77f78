/*
 * log.c - stderr diagnostics with a program prefix and a level filter.
 */
#include "log.h"

#include <stdio.h>

static const char *program = "iotlat";
static int max_level = IL_LOG_INFO;

void il_log_set_program(const char *name) { program = name; }
void il_log_set_level(int level) { max_level = level; }
int il_log_get_level(void) { return max_level; }

void il_vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    char line[1024];
    if (level > max_level)
        return;
    if (level < 0 || level > IL_LOG_DEBUG)
        level = IL_LOG_ERROR;
    vsnprintf(line, sizeof line, fmt, ap);
    /* One fprintf per line so concurrent writers do not interleave words. */
    fprintf(stderr, "%s: %s: %s%s%s\n", program, names[level],
            prefix ? prefix : "", prefix ? ": " : "", line);
}

void il_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    il_vlog(level, NULL, fmt, ap);
    va_end(ap);
}
