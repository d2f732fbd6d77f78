/*
 * kafka_mock.c - a standalone Kafka cluster for tests, built on librdkafka's
 * own protocol-level mock (rdkafka_mock.h).
 *
 * Debian ships no Kafka broker, but librdkafka contains a mock cluster that
 * speaks enough of the protocol for producers, balanced consumer groups and
 * offset commits.  It lives inside an rd_kafka_t, so this program holds one
 * for the lifetime of the process and lets other processes (iotlat's
 * binaries) connect to its brokers on 127.0.0.1 like to any cluster.
 *
 *   kafka_mock [-b BROKERS] [-t TOPIC:PARTITIONS]... [-l MAX_SECONDS]
 *
 * It prints the bootstrap address list on stdout (one line, flushed) once the
 * cluster is up, then waits for signals:
 *   SIGTERM, SIGINT  stop (also after MAX_SECONDS, default 300, so a test
 *                    that forgot it never leaves it behind);
 *   SIGUSR1          take every broker down: connections are closed and new
 *                    ones refused, the mock's form of a broker outage (its
 *                    data lives in this process, so a real restart would
 *                    lose every topic and offset);
 *   SIGUSR2          bring every broker up again.
 * Each state change is written to stderr.
 *
 * The signals are blocked before librdkafka starts its threads, so they all
 * inherit the mask and only sigtimedwait() below ever sees them.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOPICS 32

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-b BROKERS] [-t TOPIC:PARTITIONS]... [-l MAX_SECONDS]\n"
            "  starts a librdkafka mock cluster on 127.0.0.1, prints its bootstrap\n"
            "  list; SIGUSR1 = all brokers down, SIGUSR2 = all up, SIGTERM = stop\n",
            argv0);
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = 3, lifetime = 300, ntopics = 0, opt;
    char *topics[MAX_TOPICS];
    int partitions[MAX_TOPICS];

    while ((opt = getopt(argc, argv, "b:t:l:h")) != -1) {
        switch (opt) {
        case 'b':
            if (parse_int(optarg, 1, 16, &brokers)) {
                fprintf(stderr, "kafka_mock: -b '%s': expected 1 to 16 brokers\n", optarg);
                return 2;
            }
            break;
        case 'l':
            if (parse_int(optarg, 1, 86400, &lifetime)) {
                fprintf(stderr, "kafka_mock: -l '%s': expected 1 to 86400 seconds\n",
                        optarg);
                return 2;
            }
            break;
        case 't': {
            char *colon = strrchr(optarg, ':');
            if (ntopics == MAX_TOPICS || !colon || colon == optarg ||
                parse_int(colon + 1, 1, 10000, &partitions[ntopics])) {
                fprintf(stderr,
                        "kafka_mock: -t '%s': expected TOPIC:PARTITIONS (at most %d "
                        "topics, 1 to 10000 partitions)\n",
                        optarg, MAX_TOPICS);
                return 2;
            }
            *colon = '\0';
            topics[ntopics++] = optarg;
            break;
        }
        default:
            usage(argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        usage(argv[0]);
        return 2;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The handle only hosts the mock; it is never used as a client, so its
     * own "no bootstrap servers" notices are noise. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_mock: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka_mock: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "kafka_mock: cannot create a mock cluster of %d brokers\n",
                brokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < ntopics; i++) {
        int rf = brokers < 3 ? brokers : 3;
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, topics[i], partitions[i], rf);
        if (err) {
            fprintf(stderr, "kafka_mock: cannot create topic %s with %d partitions: %s\n",
                    topics[i], partitions[i], rd_kafka_err2str(err));
            rc = 1;
            goto out;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    fprintf(stderr, "kafka_mock: %d brokers up at %s (librdkafka %s), at most %d s\n",
            brokers, rd_kafka_mock_cluster_bootstraps(mc), rd_kafka_version_str(),
            lifetime);

    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = lifetime - (long)(now.tv_sec - t0.tv_sec);
        if (left <= 0) {
            fprintf(stderr, "kafka_mock: lifetime of %d s reached, stopping\n", lifetime);
            break;
        }
        struct timespec ts = {.tv_sec = left < 1 ? 1 : left};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig < 0)
            continue; /* EAGAIN (timeout) or EINTR: re-check the lifetime */
        if (sig == SIGUSR1) {
            rd_kafka_mock_broker_set_down(mc, -1);
            fprintf(stderr, "kafka_mock: all brokers down\n");
        } else if (sig == SIGUSR2) {
            rd_kafka_mock_broker_set_up(mc, -1);
            fprintf(stderr, "kafka_mock: all brokers up\n");
        } else {
            fprintf(stderr, "kafka_mock: signal %d, stopping\n", sig);
            break;
        }
    }
out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
