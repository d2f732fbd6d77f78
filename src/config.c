/*
 * config.c - the table of IOTLAT_* variables, their parsers and --help.
 *
 * Everything a user can set is one row of `options` below.  Parsing walks the
 * table once: flag, else environment, else default; a value that does not
 * parse stops the program with a message built from the row, so every error
 * names the variable, the value and what is accepted in the same words.
 */
#include "config.h"

#include "envelope.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#ifndef IL_VERSION
#define IL_VERSION "0.1.0-dev"
#endif
#ifndef IL_PLUGIN_DIR
#define IL_PLUGIN_DIR "plugins"
#endif

extern char **environ;

const char *il_version(void) { return IL_VERSION; }

/* ---- unit parsers ---------------------------------------------------- */

int il_parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;
    int64_t mul = 1;
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (*end == 'k' || *end == 'K')
        mul = 1000, end++;
    else if (*end == 'M')
        mul = 1000000, end++;
    else if (*end == 'G')
        mul = 1000000000, end++;
    if (*end)
        return -1;
    if (v > INT64_MAX / mul || v < INT64_MIN / mul)
        return -1;
    *out = (int64_t)v * mul;
    return 0;
}

int il_parse_double(const char *s, double *out)
{
    char *end;
    double v;
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int il_parse_duration_us(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double us;
    } units[] = {{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {"m", 60e6}, {"h", 3600e6}, {"", 1e6}};
    char *end;
    double v;
    if (!s || !*s || isspace((unsigned char)*s) || *s == '-')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0) {
            double us = v * units[i].us;
            if (us > 1e15)
                return -1;
            *out = (int64_t)llround(us);
            return 0;
        }
    }
    return -1;
}

int il_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

int il_env_or_file(const char *var, char *out, size_t outlen, char *errbuf,
                   size_t errlen)
{
    char fvar[256];
    const char *v = getenv(var);
    if (v) {
        if (strlen(v) >= outlen) {
            snprintf(errbuf, errlen, "%s is longer than %zu bytes", var, outlen - 1);
            return -1;
        }
        memcpy(out, v, strlen(v) + 1);
        return 1;
    }
    snprintf(fvar, sizeof fvar, "%s_FILE", var);
    const char *path = getenv(fvar);
    if (!path)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errbuf, errlen, "%s='%s': cannot read the file: %s", fvar, path,
                 strerror(errno));
        return -1;
    }
    /* Read one byte more than fits, plus room for the newline that `echo`
     * or kubectl leaves at the end, which is not part of the value. */
    char *tmp = malloc(outlen + 3);
    size_t n = tmp ? fread(tmp, 1, outlen + 2, f) : 0;
    fclose(f);
    if (!tmp) {
        snprintf(errbuf, errlen, "%s: out of memory", fvar);
        return -1;
    }
    if (n > 0 && tmp[n - 1] == '\n')
        n--;
    if (n > 0 && tmp[n - 1] == '\r')
        n--;
    if (n >= outlen) {
        free(tmp);
        snprintf(errbuf, errlen, "%s='%s': the file is longer than %zu bytes", fvar,
                 path, outlen - 1);
        return -1;
    }
    memcpy(out, tmp, n);
    free(tmp);
    out[n] = '\0';
    return 1;
}

/* ---- the option table -------------------------------------------------- */

enum opt_type { T_STR, T_INT, T_DOUBLE, T_DURATION, T_BOOL, T_ENUM };

typedef struct opt {
    const char *var;     /* environment variable */
    int roles;           /* IL_ROLE_* using it */
    enum opt_type type;
    size_t off;          /* field in il_config */
    const char *def;     /* default as text, NULL = unset */
    const char *meaning;
    const char *example;
    double min, max;     /* numeric bounds (T_INT, T_DOUBLE, T_DURATION in s) */
    const char *const *choices; /* T_ENUM: NULL-terminated, index stored */
    int secret;          /* value may come from VAR_FILE and is never shown */
} opt;

#define OFF(f) offsetof(il_config, f)
#define PUB IL_ROLE_PUBLISHER
#define TRA IL_ROLE_TRANSFORMER
#define SUB IL_ROLE_SUBSCRIBER
#define PLOT IL_ROLE_PLOTTER

static const char *const encodings[] = {"json", "binary", NULL};
static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const claims[] = {"none", "publisher", "transformer", NULL};

/* ---- checks of plotter values that a type alone cannot express ---------- */

/* IOTLAT_PLOTTER_LISTEN: none, host:port or [v6-address]:port. */
static int check_listen(const char *v, char *why, size_t len)
{
    if (strcmp(v, "none") == 0)
        return 0;
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || (v[0] == '[' && colon[-1] != ']')) {
        snprintf(why, len, "no host:port");
        return -1;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 1 || port > 65535) {
        snprintf(why, len, "the port must be a number from 1 to 65535");
        return -1;
    }
    return 0;
}

/* IOTLAT_PLOTTER_TOPICS: all, none, or how many topics get their own series. */
static int check_topics(const char *v, char *why, size_t len)
{
    int64_t n;
    if (strcmp(v, "all") == 0 || strcmp(v, "none") == 0)
        return 0;
    if (il_parse_int(v, &n) || n < 1 || n > 1000000) {
        snprintf(why, len, "not all, none or a count");
        return -1;
    }
    return 0;
}

/* A value that is no duration at all is left to the type's own message. */
static int check_interval(const char *v, char *why, size_t len)
{
    int64_t us;
    if (il_parse_duration_us(v, &us) == 0 && us < 10000) {
        snprintf(why, len, "shorter than 10ms");
        return -1;
    }
    return 0;
}

static int check_http_url(const char *v, char *why, size_t len)
{
    const char *host = strncmp(v, "http://", 7) == 0    ? v + 7
                       : strncmp(v, "https://", 8) == 0 ? v + 8
                                                        : NULL;
    if (!host || !*host || *host == '/') {
        snprintf(why, len, "not an http:// or https:// URL with a host");
        return -1;
    }
    return 0;
}

/* Elasticsearch refuses index names with upper case, these characters, or a
 * leading -, _ or +; saying so at start beats a 400 on every request. */
static int check_es_index(const char *v, char *why, size_t len)
{
    if (strchr("-_+", v[0]) || strlen(v) > 255) {
        snprintf(why, len, "starts with -, _ or + or is longer than 255 bytes");
        return -1;
    }
    for (const char *p = v; *p; p++)
        if (isupper((unsigned char)*p) || strchr("\\/*?\"<>| ,#:", *p)) {
            snprintf(why, len, "'%c' is not allowed in an index name", *p);
            return -1;
        }
    return 0;
}

/* A file to append to: "-" (stdout) or a path in a writable directory. */
static int check_out_file(const char *v, char *why, size_t len)
{
    char dir[4096];
    if (strcmp(v, "-") == 0)
        return 0;
    snprintf(dir, sizeof dir, "%s", v);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0) {
        snprintf(why, len, "directory %s is not writable (%s)", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* A directory that exists and is writable, or can be made in one that is. */
static int check_out_dir(const char *v, char *why, size_t len)
{
    char parent[4096];
    if (access(v, W_OK) == 0)
        return 0;
    if (errno != ENOENT) {
        snprintf(why, len, "not writable (%s)", strerror(errno));
        return -1;
    }
    snprintf(parent, sizeof parent, "%s", v);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    if (slash == parent)
        parent[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(parent, sizeof parent, ".");
    if (access(parent, W_OK) != 0) {
        snprintf(why, len, "it does not exist and %s is not writable (%s)", parent,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static const opt options[] = {
    {"IOTLAT_DRIVER", IL_ROLE_ALL, T_STR, OFF(driver), "zeromq",
     "broker driver: zeromq, kafka, nats, mqtt, redis, or a path to a driver .so",
     "mqtt", 0, 0, NULL, 0},
    {"IOTLAT_PLUGIN_DIR", IL_ROLE_ALL, T_STR, OFF(plugin_dir), IL_PLUGIN_DIR,
     "directory searched for <driver>.so", "/usr/local/lib/iotlat", 0, 0, NULL, 0},
    {"IOTLAT_TOPIC", PUB | SUB, T_STR, OFF(topic), "iotlat",
     "topic / subject / channel the publisher writes and the subscriber reads; "
     "in the publisher {id} becomes its publisher id and {host} the host name, "
     "so replicas get distinct topics",
     "metro.checkin", 0, 0, NULL, 0},
    {"IOTLAT_IN_TOPIC", TRA, T_STR, OFF(in_topic), "iotlat",
     "topic the transformer reads", "metro.checkin", 0, 0, NULL, 0},
    {"IOTLAT_OUT_TOPIC", TRA, T_STR, OFF(out_topic), "iotlat.out",
     "topic the transformer writes", "metro.action", 0, 0, NULL, 0},
    {"IOTLAT_RETURN_TOPIC", PUB, T_STR, OFF(return_topic), NULL,
     "round-trip mode: the publisher also reads this (final) topic and reports "
     "round-trip latency on its own clock",
     "metro.action", 0, 0, NULL, 0},
    {"IOTLAT_DEVICES", PUB, T_INT, OFF(devices), "100", "emulated devices", "10000", 1,
     1000000, NULL, 0},
    {"IOTLAT_RATE", PUB, T_DOUBLE, OFF(rate), "1", "messages per second per device",
     "0.5", 1e-6, 1e7, NULL, 0},
    {"IOTLAT_DURATION", IL_ROLE_ALL, T_DURATION, OFF(duration_us), NULL,
     "how long to run (us, ms, s, m, h; bare number = seconds). Publisher: "
     "sending time, default 10s. Subscriber, transformer: default 0 = until the "
     "publishers end or a signal",
     "5m", 0, 31 * 86400, NULL, 0},
    {"IOTLAT_PAYLOAD", PUB, T_STR, OFF(payload),
     "{\"device\":\"dev-{{device}}\",\"temperature\":{{randf:15:30}}}",
     "message template (JSON object for the json encoding); placeholders "
     "{{device}} {{device1}} {{seq}} {{rand:A:B}} {{randf:A:B}} "
     "{{choice:a|b}} {{hex:N}} {{now}}",
     "{\"Metro\":{\"CheckIn\":{\"Token\":\"{{hex:16}}\",\"Station\":{{rand:1:50}}}}}",
     0, 0, NULL, 0},
    {"IOTLAT_PAYLOAD_FILE", PUB, T_STR, OFF(payload_file), NULL,
     "template file, or dataset replayed line by line (.ndjson, .jsonl, .csv); "
     "overrides IOTLAT_PAYLOAD",
     "checkins.csv", 0, 0, NULL, 0},
    {"IOTLAT_ENCODING", PUB, T_ENUM, OFF(encoding), "json",
     "envelope encoding: json (envelope under key \"iotlat\") or binary (compact "
     "header, maximum rate)",
     "binary", 0, 0, encodings, 0},
    {"IOTLAT_ACTION", TRA, T_STR, OFF(action), NULL,
     "transformer: replace the message body with this template (the envelope is "
     "kept); unset = forward the body unchanged",
     "{\"Gate\":{\"Open\":true,\"Device\":{{device}}}}", 0, 0, NULL, 0},
    {"IOTLAT_ACTION_FILE", TRA, T_STR, OFF(action_file), NULL,
     "transformer: the action template from a file", "open-gate.json", 0, 0, NULL, 0},
    {"IOTLAT_REPORT_JSON", IL_ROLE_ALL, T_STR, OFF(report_json), NULL,
     "write the final report as JSON to this path", "/tmp/report.json", 0, 0, NULL, 0},
    {"IOTLAT_RUN_ID", IL_ROLE_ALL | PLOT, T_STR, OFF(run_id), "default",
     "names the run in reports and prefixes its Redis keys (iotlat:<run>:); "
     "replicas of one test share it",
     "mec-kafka-01", 0, 0, NULL, 0},
    {"IOTLAT_PUBLISHER_ID", PUB, T_INT, OFF(publisher_id), "-1",
     "publisher instance id carried in every message (-1 = random), tells "
     "replicas apart",
     "7", -1, 4294967295.0, NULL, 0},
    {"IOTLAT_SEED", PUB | TRA, T_INT, OFF(seed), "1",
     "seed of the template random generator (runs are reproducible)", "42", 0,
     9.2e18, NULL, 0},
    {"IOTLAT_PROGRESS", IL_ROLE_ALL | PLOT, T_DURATION, OFF(progress_us), "1s",
     "interval of the live progress line on stderr, 0 = off", "5s", 0, 3600, NULL, 0},
    {"IOTLAT_WAIT_READY", PUB | TRA, T_DURATION, OFF(wait_ready_us), "5s",
     "how long to wait for the path downstream to be ready (brokerless drivers: "
     "subscribers connected) before sending",
     "30s", 0, 3600, NULL, 0},
    {"IOTLAT_SPIN", PUB, T_DURATION, OFF(spin_us), "0",
     "busy-wait this long before each due message instead of sleeping: the "
     "kernel wakes a sleeper tens of us late, a spin is on time but costs CPU",
     "100us", 0, 0.01, NULL, 0},
    {"IOTLAT_GRACE", IL_ROLE_ALL | PLOT, T_DURATION, OFF(grace_us), "2s",
     "after the end: how long to wait for messages still in flight (plotter: to "
     "deliver queued Elasticsearch documents)",
     "5s", 0, 3600,
     NULL, 0},
    {"IOTLAT_STOP_AT_END", SUB | TRA, T_BOOL, OFF(stop_at_end), "true",
     "stop once every publisher seen has sent its end markers", "false", 0, 0, NULL, 0},
    {"IOTLAT_LOG_LEVEL", IL_ROLE_ALL | PLOT, T_ENUM, OFF(log_level), "info",
     "error, warn, info or debug", "debug", 0, 0, levels, 0},
    {"IOTLAT_REDIS_URL", IL_ROLE_ALL | PLOT, T_STR, OFF(redis_url), NULL,
     "results and coordination store, redis://[[user]:password@]host[:port][/db]; "
     "unset = standalone (the plotter needs it) (secret: may be given as "
     "IOTLAT_REDIS_URL_FILE)",
     "redis://:s3cret@redis:6379/0", 0, 0, NULL, 1},
    {"IOTLAT_CLAIM", TRA | SUB, T_ENUM, OFF(claim), "none",
     "with Redis: take the topic from the pool instead of IOTLAT_TOPIC / "
     "IOTLAT_IN_TOPIC: publisher (a publisher's topic) or transformer (a "
     "transformer's output); each topic is held by one claimer at a time",
     "transformer", 0, 0, claims, 0},
    {"IOTLAT_ADVERTISE_HOST", PUB | TRA, T_STR, OFF(advertise_host), NULL,
     "host others connect to for brokerless drivers (default: $POD_IP, else the "
     "host name)",
     "10.1.2.3", 0, 0, NULL, 0},
    {"IOTLAT_LEASE", TRA | SUB, T_DURATION, OFF(lease_us), "10s",
     "claim lease: renewed every third of it (at most once a second); a dead claimer's topic is free "
     "again after it expires",
     "30s", 0.2, 3600, NULL, 0},
    {"IOTLAT_RETENTION", IL_ROLE_ALL, T_DURATION, OFF(retention_us), "168h",
     "how long results and metadata stay in Redis", "720h", 1, 31 * 86400, NULL, 0},
    {"IOTLAT_REDIS_BUFFER", IL_ROLE_ALL, T_INT, OFF(redis_buffer), "86400",
     "per-second records kept in memory while Redis is unreachable (older ones "
     "are kept, newer ones dropped and counted)",
     "3600", 1, 10000000, NULL, 0},
    {"IOTLAT_CLOCK_WARN", SUB, T_DURATION, OFF(clock_warn_us), "1ms",
     "warn when the clock-offset error bound between publisher and subscriber "
     "is larger than this",
     "200us", 0, 3600, NULL, 0},
    {"IOTLAT_MAX_MESSAGE", PUB | TRA, T_INT, OFF(max_message), "65536",
     "largest message in bytes (envelope + body)", "1M", 256, 64e6, NULL, 0},
    {"IOTLAT_PLOTTER_INTERVAL", PLOT, T_DURATION, OFF(plotter_interval_us), "1s",
     "how often the plotter reads new results from Redis", "5s", 0.01, 3600, NULL, 0},
    {"IOTLAT_PLOTTER_LISTEN", PLOT, T_STR, OFF(plotter_listen), "127.0.0.1:9464",
     "address of the Prometheus endpoint /metrics (host:port, [v6]:port), or none",
     "0.0.0.0:9464", 0, 0, NULL, 0},
    {"IOTLAT_PLOTTER_TOPICS", PLOT, T_STR, OFF(plotter_topics), "100",
     "topics that get their own Prometheus series (the first N seen, all, or none); "
     "the series of all topics together (topic=\"_all\") always exist",
     "all", 0, 0, NULL, 0},
    {"IOTLAT_PLOTTER_NDJSON", PLOT, T_STR, OFF(plotter_ndjson), NULL,
     "append one ECS JSON document per topic per second to this file (- = stdout), "
     "for Filebeat",
     "/var/log/iotlat/latency.ndjson", 0, 0, NULL, 0},
    {"IOTLAT_PLOTTER_ES_URL", PLOT, T_STR, OFF(plotter_es_url), NULL,
     "Elasticsearch URL: the documents are also POSTed to its _bulk API, retried "
     "until accepted (secret: may be given as IOTLAT_PLOTTER_ES_URL_FILE)",
     "http://elastic:s3cret@es:9200", 0, 0, NULL, 1},
    {"IOTLAT_PLOTTER_ES_INDEX", PLOT, T_STR, OFF(plotter_es_index), "iotlat-latency",
     "Elasticsearch index (or data stream) the documents go to", "metrics-iotlat", 0, 0,
     NULL, 0},
    {"IOTLAT_PLOTTER_ES_QUEUE", PLOT, T_INT, OFF(plotter_es_queue), "100000",
     "documents kept while Elasticsearch does not accept them (older ones are kept, "
     "newer ones dropped and counted)",
     "1M", 1, 100000000, NULL, 0},
    {"IOTLAT_PLOTTER_PNG", PLOT, T_STR, OFF(plotter_png), NULL,
     "directory where the plotter renders latency-over-time and distribution "
     "pictures with gnuplot when it stops",
     "report", 0, 0, NULL, 0},
    {"IOTLAT_PLOTTER_ONCE", PLOT, T_BOOL, OFF(plotter_once), "false",
     "read the run's results once, write the documents and pictures, and exit "
     "(no /metrics endpoint)",
     "true", 0, 0, NULL, 0},
};
#define NOPTS (sizeof options / sizeof options[0])

/* Checks beyond an option's type (0, or -1 with the reason in why), and the
 * text then saying what is accepted; kept beside the table so that its rows
 * stay short. */
static const struct opt_check {
    const char *var;
    int (*check)(const char *v, char *why, size_t len);
    const char *accepts;
} checks[] = {
    {"IOTLAT_PLOTTER_INTERVAL", check_interval,
     "a duration from 10ms to 3600s such as 500ms, 1s, 5s"},
    {"IOTLAT_PLOTTER_LISTEN", check_listen, "host:port with a port from 1 to 65535, or none"},
    {"IOTLAT_PLOTTER_TOPICS", check_topics, "all, none or a count from 1 to 1000000"},
    {"IOTLAT_PLOTTER_NDJSON", check_out_file, "- or a path in a writable directory"},
    {"IOTLAT_PLOTTER_ES_URL", check_http_url, "an http:// or https:// URL"},
    {"IOTLAT_PLOTTER_ES_INDEX", check_es_index, "a lower-case index name"},
    {"IOTLAT_PLOTTER_PNG", check_out_dir, "a writable directory"},
};

static const struct opt_check *check_of(const opt *o)
{
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if (strcmp(checks[i].var, o->var) == 0)
            return &checks[i];
    return NULL;
}

/* Variable prefixes that belong to drivers (checked by the driver itself). */
static const char *const driver_prefixes[] = {"IOTLAT_ZEROMQ_", "IOTLAT_KAFKA_",
                                              "IOTLAT_NATS_",   "IOTLAT_MQTT_",
                                              "IOTLAT_REDIS_",  NULL};

static const char *role_names(int roles)
{
    switch (roles) {
    /* "all" means the three measuring binaries; the plotter is named. */
    case IL_ROLE_ALL: return "all";
    case IL_ROLE_ALL | PLOT: return "all, plotter";
    case PLOT: return "plotter";
    case PUB: return "publisher";
    case TRA: return "transformer";
    case SUB: return "subscriber";
    case PUB | SUB: return "publisher, subscriber";
    case PUB | TRA: return "publisher, transformer";
    case SUB | TRA: return "subscriber, transformer";
    }
    return "?";
}

/* "--devices" for IOTLAT_DEVICES. */
static void flag_of(const opt *o, char *buf, size_t len)
{
    size_t j = 0;
    buf[j++] = '-', buf[j++] = '-';
    for (const char *p = o->var + 7; *p && j + 1 < len; p++)
        buf[j++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    buf[j] = '\0';
}

static void accepted(const opt *o, char *buf, size_t len)
{
    const struct opt_check *ck = check_of(o);
    if (ck) {
        snprintf(buf, len, "%s", ck->accepts);
        return;
    }
    switch (o->type) {
    case T_INT:
        snprintf(buf, len, "an integer from %.0f to %.0f (k/M/G suffixes allowed)",
                 o->min, o->max);
        break;
    case T_DOUBLE:
        snprintf(buf, len, "a number from %g to %g", o->min, o->max);
        break;
    case T_DURATION:
        snprintf(buf, len, "a duration up to %gs such as 500ms, 10s, 5m, 1h",
                 o->max);
        break;
    case T_BOOL:
        snprintf(buf, len, "true or false (1/0, yes/no, on/off)");
        break;
    case T_ENUM: {
        size_t n = 0;
        n += (size_t)snprintf(buf, len, "one of:");
        for (const char *const *c = o->choices; *c && n < len; c++)
            n += (size_t)snprintf(buf + n, len - n, " %s", *c);
        break;
    }
    case T_STR:
        snprintf(buf, len, "a non-empty string");
        break;
    }
}

static void die_bad(const il_config *c, const opt *o, const char *value,
                    const char *why)
{
    char acc[256];
    accepted(o, acc, sizeof acc);
    fprintf(stderr, "%s: error: %s='%s' is invalid%s%s: expected %s (e.g. %s)\n",
            c->program, o->var, o->secret ? "***" : value, why ? ": " : "",
            why ? why : "", acc, o->example);
    exit(IL_CONFIG_EXIT_USAGE);
}

static void set_value(il_config *c, const opt *o, const char *v)
{
    char *field = (char *)c + o->off;
    int64_t i;
    double d;
    char why[256];
    /* Only for the binaries that use the option: a shared environment (one
     * ConfigMap for every pod) may name a file only the plotter's has. */
    const struct opt_check *ck = check_of(o);
    if (ck && (o->roles & c->role) && *v && ck->check(v, why, sizeof why))
        die_bad(c, o, v, why);
    switch (o->type) {
    case T_STR:
        if (!*v)
            die_bad(c, o, v, NULL);
        free(*(char **)field);
        *(char **)field = strdup(v);
        return;
    case T_INT:
        if (il_parse_int(v, &i) || i < o->min || i > o->max)
            die_bad(c, o, v, NULL);
        *(int64_t *)field = i;
        return;
    case T_DOUBLE:
        if (il_parse_double(v, &d) || d < o->min || d > o->max)
            die_bad(c, o, v, NULL);
        *(double *)field = d;
        return;
    case T_DURATION:
        if (il_parse_duration_us(v, &i) || (double)i > o->max * 1e6)
            die_bad(c, o, v, NULL);
        *(int64_t *)field = i;
        return;
    case T_BOOL:
        if (il_parse_bool(v, (int *)field))
            die_bad(c, o, v, NULL);
        return;
    case T_ENUM:
        for (int k = 0; o->choices[k]; k++) {
            if (strcasecmp(v, o->choices[k]) == 0) {
                *(int *)field = k;
                return;
            }
        }
        die_bad(c, o, v, NULL);
    }
}

static void usage(const il_config *c, FILE *out)
{
    char flag[64];
    fprintf(out,
            "usage: %s [--option value | --option=value]...\n"
            "Every option is also an environment variable (flags win).\n\n",
            c->program);
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &options[i];
        if (!(o->roles & c->role))
            continue;
        flag_of(o, flag, sizeof flag);
        fprintf(out, "  %-22s %-20s %s\n%45s default: %s, e.g. %s\n", flag, o->var,
                o->meaning, "", o->def ? o->def : "(unset)", o->example);
    }
    fprintf(out,
            "\n  --help, --version\n\nDriver options are IOTLAT_<DRIVER>_* "
            "variables; see the README.\n");
}

void il_config_print_markdown(FILE *out)
{
    fprintf(out, "| variable | used by | meaning | default | example |\n"
                 "|---|---|---|---|---|\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &options[i];
        fprintf(out, "| `%s` | %s | ", o->var, role_names(o->roles));
        for (const char *p = o->meaning; *p; p++)
            fputs(*p == '|' ? "\\|" : (char[]){*p, 0}, out);
        /* The compiled-in plugin directory is an absolute path of the build
         * machine; the table documents what it means instead. */
        if (o->off == OFF(plugin_dir))
            fprintf(out, " | the build's `plugins/` | `");
        else
            fprintf(out, " | %s%s%s | `", o->def ? "`" : "", o->def ? o->def : "unset",
                    o->def ? "`" : "");
        for (const char *p = o->example; *p; p++)
            fputs(*p == '|' ? "\\|" : (char[]){*p, 0}, out);
        fprintf(out, "` |\n");
    }
}

static const opt *find_var(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(options[i].var) == len && strncmp(options[i].var, name, len) == 0)
            return &options[i];
    return NULL;
}

/* A misspelt variable silently ignored would run the wrong test, so every
 * IOTLAT_* variable must be known, to this table or to a driver. */
static void check_unknown_env(const il_config *c)
{
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        int ok = 0;
        if (strncmp(*e, "IOTLAT_", 7) != 0)
            continue;
        if (find_var(*e, len))
            continue;
        if (len > 5 && strncmp(*e + len - 5, "_FILE", 5) == 0) {
            const opt *o = find_var(*e, len - 5);
            if (o && o->secret)
                continue;
        }
        for (const char *const *p = driver_prefixes; *p && !ok; p++)
            ok = strncmp(*e, *p, strlen(*p)) == 0;
        /* A driver also owns IOTLAT_<NAME>_*: its name, or for a path the
         * file's base name without ".so" (the driver checks its own
         * options once loaded). */
        if (!ok && c->driver) {
            char pre[64];
            const char *base = strrchr(c->driver, '/') ? strrchr(c->driver, '/') + 1 : c->driver;
            int blen = (int)strcspn(base, ".");
            size_t n = (size_t)snprintf(pre, sizeof pre, "IOTLAT_%.*s_", blen, base);
            for (size_t k = 7; k < n && k < sizeof pre; k++)
                pre[k] = (char)toupper((unsigned char)pre[k]);
            ok = strncmp(*e, pre, strlen(pre)) == 0;
        }
        if (!ok) {
            fprintf(stderr,
                    "%s: error: unknown variable %.*s: not an iotlat option "
                    "(see --help or the README's table)\n",
                    c->program, (int)len, *e);
            exit(IL_CONFIG_EXIT_USAGE);
        }
    }
}

void il_config_load(il_config *c, int role, const char *program, int argc,
                    char **argv)
{
    const char *given[NOPTS] = {0};
    char flag[64];
    int duration_set = 0;

    memset(c, 0, sizeof *c);
    c->role = role;
    c->program = program;
    il_log_set_program(program);

    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        const char *val = NULL;
        size_t i, n;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(c, stdout);
            exit(0);
        }
        if (strcmp(arg, "--version") == 0) {
            printf("%s %s\n", program, il_version());
            exit(0);
        }
        if (strcmp(arg, "--markdown-options") == 0) {
            il_config_print_markdown(stdout);
            exit(0);
        }
        const char *eq = strchr(arg, '=');
        n = eq ? (size_t)(eq - arg) : strlen(arg);
        for (i = 0; i < NOPTS; i++) {
            if (!(options[i].roles & role))
                continue;
            flag_of(&options[i], flag, sizeof flag);
            if (strlen(flag) == n && strncmp(flag, arg, n) == 0)
                break;
        }
        if (i == NOPTS) {
            fprintf(stderr, "%s: error: unknown option '%s' (see --help)\n", program,
                    arg);
            exit(IL_CONFIG_EXIT_USAGE);
        }
        if (eq)
            val = eq + 1;
        else if (a + 1 < argc)
            val = argv[++a];
        else {
            fprintf(stderr, "%s: error: option %s needs a value (%s)\n", program, flag,
                    options[i].var);
            exit(IL_CONFIG_EXIT_USAGE);
        }
        given[i] = val;
    }

    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &options[i];
        const char *v = given[i] ? given[i] : getenv(o->var);
        char secret[4096];
        if (!v && o->secret) {
            char err[512];
            int r = il_env_or_file(o->var, secret, sizeof secret, err, sizeof err);
            if (r < 0) {
                fprintf(stderr, "%s: error: %s\n", program, err);
                exit(IL_CONFIG_EXIT_USAGE);
            }
            if (r == 1)
                v = secret;
        }
        if (v && o->off == OFF(duration_us))
            duration_set = 1;
        if (v)
            set_value(c, o, v);
        else if (o->def)
            set_value(c, o, o->def);
    }
    /* IOTLAT_DURATION has no single default: the publisher sends for 10 s,
     * the others run until the publishers end. */
    if (!duration_set)
        c->duration_us = (c->role & PUB) ? 10000000 : 0;
    if ((c->role & PUB) && c->duration_us == 0) {
        fprintf(stderr,
                "%s: error: IOTLAT_DURATION='0' is invalid for the publisher: "
                "expected a duration above 0 such as 10s\n",
                program);
        exit(IL_CONFIG_EXIT_USAGE);
    }
    /* A report that cannot be written is only discovered at the end of a
     * long run unless its directory is checked now. */
    if (c->report_json) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", c->report_json);
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            dir[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        if (access(dir, W_OK) != 0) {
            fprintf(stderr,
                    "%s: error: IOTLAT_REPORT_JSON='%s' is invalid: directory %s is "
                    "not writable (%s): expected a path in a writable directory\n",
                    program, c->report_json, dir, strerror(errno));
            exit(IL_CONFIG_EXIT_USAGE);
        }
    }
    il_log_set_level(c->log_level);
    check_unknown_env(c);
}

void il_config_free(il_config *c)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (options[i].type == T_STR) {
            char **f = (char **)((char *)c + options[i].off);
            free(*f);
            *f = NULL;
        }
}

/* JSON string escaping for report output. */
static size_t json_str(char *out, size_t cap, size_t n, const char *s)
{
#define PUT(ch) (n < cap ? (out[n] = (ch)) : 0, n++)
    PUT('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            PUT('\\');
            PUT((char)ch);
        } else if (ch < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            for (char *e = esc; *e; e++)
                PUT(*e);
        } else {
            PUT((char)ch);
        }
    }
    PUT('"');
#undef PUT
    return n;
}

size_t il_config_to_json(const il_config *c, char *out, size_t cap)
{
    size_t n = 0;
    int first = 1;
#define APPEND(...)                                                              \
    do {                                                                         \
        int k_ = snprintf(n < cap ? out + n : NULL, n < cap ? cap - n : 0,       \
                          __VA_ARGS__);                                          \
        n += (size_t)(k_ > 0 ? k_ : 0);                                          \
    } while (0)
    APPEND("{");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &options[i];
        const char *field = (const char *)c + o->off;
        if (!(o->roles & c->role) || o->secret)
            continue;
        char key[64];
        size_t k = 0;
        for (const char *p = o->var + 7; *p && k + 4 < sizeof key; p++)
            key[k++] = (char)tolower((unsigned char)*p);
        key[k] = '\0';
        APPEND("%s\"%s%s\":", first ? "" : ",", key, o->type == T_DURATION ? "_us" : "");
        first = 0;
        switch (o->type) {
        case T_STR: {
            const char *s = *(char *const *)field;
            if (s)
                n = json_str(out, cap, n, s);
            else {
                APPEND("null");
            }
            break;
        }
        case T_INT:
        case T_DURATION:
            APPEND("%lld", (long long)*(const int64_t *)field);
            break;
        case T_DOUBLE:
            APPEND("%.17g", *(const double *)field);
            break;
        case T_BOOL:
            APPEND("%s", *(const int *)field ? "true" : "false");
            break;
        case T_ENUM:
            APPEND("\"%s\"", o->choices[*(const int *)field]);
            break;
        }
    }
    if (c->redis_url) {
        /* The store's address is useful in a report; its credentials are
         * not. */
        const char *at = strrchr(c->redis_url, '@');
        const char *rest = at ? at + 1 : c->redis_url + (strncmp(c->redis_url, "redis://", 8) ? 0 : 8);
        APPEND("%s\"redis\":\"redis://", first ? "" : ",");
        for (const char *p = rest; *p; p++)
            if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                APPEND("%c", *p);
        APPEND("\"");
    }
    APPEND("}");
    if (n < cap)
        out[n] = '\0';
#undef APPEND
    return n;
}
