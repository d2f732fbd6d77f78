/*
 * config.h - run configuration from environment variables and flags.
 *
 * Kubernetes and Swarm configure containers with environment variables, and
 * people at a terminal prefer flags, so every setting is an IOTLAT_* variable
 * with a mirrored flag (IOTLAT_DEVICES <-> --devices).  One table describes
 * every variable once: its parser, default, meaning and example; --help and
 * the README's variable table are printed from it, so they cannot drift.
 *
 * Every invalid value stops the program before anything runs, with one line
 * that names the variable, the bad value and what is accepted, and exit
 * status 2.  An IOTLAT_* variable that nothing knows (a typo such as
 * IOTLAT_DEVICE) is an error too.  Variables marked secret may instead name a
 * file with <VAR>_FILE, as Kubernetes secrets are mounted; their values never
 * appear in logs or reports.
 */
#ifndef IL_CONFIG_H
#define IL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Which binary is parsing (bit mask, an option lists the roles using it). */
#define IL_ROLE_PUBLISHER 0x1
#define IL_ROLE_TRANSFORMER 0x2
#define IL_ROLE_SUBSCRIBER 0x4
#define IL_ROLE_ALL 0x7 /* the three measuring binaries, not the plotter */
#define IL_ROLE_PLOTTER 0x8 /* reads results from Redis; measures nothing */

#define IL_CONFIG_EXIT_USAGE 2 /* exit status for every configuration error */

/* IOTLAT_CLAIM: where a transformer or subscriber gets its topic. */
#define IL_CLAIM_NONE 0        /* use IOTLAT_TOPIC / IOTLAT_IN_TOPIC as given */
#define IL_CLAIM_PUBLISHER 1   /* claim a topic a publisher advertised */
#define IL_CLAIM_TRANSFORMER 2 /* claim a transformer's output topic */

typedef struct il_config {
    int role;
    const char *program;   /* "iotlat-publisher", ... */
    char *driver;          /* IOTLAT_DRIVER */
    char *plugin_dir;      /* IOTLAT_PLUGIN_DIR */
    char *topic;           /* IOTLAT_TOPIC */
    char *in_topic;        /* IOTLAT_IN_TOPIC */
    char *out_topic;       /* IOTLAT_OUT_TOPIC */
    char *return_topic;    /* IOTLAT_RETURN_TOPIC: round-trip mode if set */
    int64_t devices;       /* IOTLAT_DEVICES */
    double rate;           /* IOTLAT_RATE, msg/s per device */
    int64_t duration_us;   /* IOTLAT_DURATION; 0 = until end/signal */
    char *payload;         /* IOTLAT_PAYLOAD */
    char *payload_file;    /* IOTLAT_PAYLOAD_FILE */
    char *action;          /* IOTLAT_ACTION (transformer body template) */
    char *action_file;     /* IOTLAT_ACTION_FILE */
    int encoding;          /* IOTLAT_ENCODING: il_encoding */
    char *report_json;     /* IOTLAT_REPORT_JSON */
    char *run_id;          /* IOTLAT_RUN_ID */
    int64_t publisher_id;  /* IOTLAT_PUBLISHER_ID, -1 = random */
    int64_t seed;          /* IOTLAT_SEED */
    int64_t progress_us;   /* IOTLAT_PROGRESS: interval, 0 = off */
    int64_t wait_ready_us; /* IOTLAT_WAIT_READY */
    int64_t grace_us;      /* IOTLAT_GRACE */
    int64_t spin_us;       /* IOTLAT_SPIN */
    int stop_at_end;       /* IOTLAT_STOP_AT_END */
    int log_level;         /* IOTLAT_LOG_LEVEL */
    int64_t max_message;   /* IOTLAT_MAX_MESSAGE: bytes */
    char *redis_url;       /* IOTLAT_REDIS_URL (secret: may be _FILE) */
    int64_t lease_us;      /* IOTLAT_LEASE */
    int64_t retention_us;  /* IOTLAT_RETENTION */
    int64_t redis_buffer;  /* IOTLAT_REDIS_BUFFER: records kept while down */
    int claim;             /* IOTLAT_CLAIM: IL_CLAIM_* */
    char *advertise_host;  /* IOTLAT_ADVERTISE_HOST */
    int64_t clock_warn_us; /* IOTLAT_CLOCK_WARN */
    int64_t plotter_interval_us; /* IOTLAT_PLOTTER_INTERVAL: Redis poll period */
    char *plotter_listen;  /* IOTLAT_PLOTTER_LISTEN: host:port of /metrics, or none */
    char *plotter_topics;  /* IOTLAT_PLOTTER_TOPICS: all, none or a count */
    char *plotter_ndjson;  /* IOTLAT_PLOTTER_NDJSON: ELK documents, path or - */
    char *plotter_es_url;  /* IOTLAT_PLOTTER_ES_URL (secret: may be _FILE) */
    char *plotter_es_index; /* IOTLAT_PLOTTER_ES_INDEX */
    int64_t plotter_es_queue; /* IOTLAT_PLOTTER_ES_QUEUE: documents kept unsent */
    char *plotter_png;     /* IOTLAT_PLOTTER_PNG: directory for gnuplot pictures */
    int plotter_once;      /* IOTLAT_PLOTTER_ONCE: read what is there, then exit */
} il_config;

/* Parse environment and argv for `role`.  --help prints usage and exits 0,
 * --version prints the version and exits 0; any invalid value prints one
 * line and exits IL_CONFIG_EXIT_USAGE.  Strings in *c are owned by c and
 * released by il_config_free. */
void il_config_load(il_config *c, int role, const char *program, int argc,
                    char **argv);
void il_config_free(il_config *c);

/* Print the variable table as Markdown (for the README), every role. */
void il_config_print_markdown(FILE *out);

/* Write the configuration as a JSON object (no secrets) into out, for
 * reports.  Returns the length, or the needed length if cap is too small. */
size_t il_config_to_json(const il_config *c, char *out, size_t cap);

/* Unit parsers, also used by drivers' option code through the host.  Each
 * returns 0 or -1.  Integers accept k/M/G suffixes (x1000); durations accept
 * us, ms, s, m, h (a bare number is seconds); rates are decimal numbers. */
int il_parse_int(const char *s, int64_t *out);
int il_parse_duration_us(const char *s, int64_t *out);
int il_parse_double(const char *s, double *out);
int il_parse_bool(const char *s, int *out);

/* Read an option value: VAR from the environment, or the content of the
 * file named by VAR_FILE (trailing newline removed).  Returns 1 and copies
 * into out when found, 0 when neither is set, -1 with errbuf filled when the
 * file cannot be read or the value does not fit. */
int il_env_or_file(const char *var, char *out, size_t outlen, char *errbuf,
                   size_t errlen);

/* The build's version string ("1.0.0-<git>"). */
const char *il_version(void);

#endif
