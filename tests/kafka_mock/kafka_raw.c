/*
 * kafka_raw.c - the baseline for tests/bench/driver_kafka.sh: a bare
 * librdkafka producer loop with the driver's settings, so the benchmark can
 * tell what the driver and iotlat's publisher cost on top of librdkafka.
 *
 *   kafka_raw BROKERS TOPIC COUNT SIZE
 *
 * Produces COUNT messages of SIZE bytes as fast as librdkafka takes them
 * (keyed by i % 1000, like 1000 devices; linger.ms=1, acks=1, Nagle off),
 * serving delivery reports after every message as the driver does, waits for
 * every delivery and prints one line: messages, seconds, messages/s.
 *
 * It lives here rather than in tests/bench/ because the Makefile links every
 * C file in tests/bench/ with -lzmq only.
 */
#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    if (m->err)
        failed++;
    else
        delivered++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s BROKERS TOPIC COUNT SIZE\n", argv[0]);
        return 2;
    }
    long count = atol(argv[3]), size = atol(argv[4]);
    if (count <= 0 || size <= 0 || size > 1000000) {
        fprintf(stderr, "kafka_raw: COUNT must be > 0 and SIZE 1..1000000\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *props[][2] = {{"bootstrap.servers", argv[1]},
                              {"linger.ms", "1"},
                              {"acks", "1"},
                              {"socket.nagle.disable", "true"}};
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof err)) {
            fprintf(stderr, "kafka_raw: %s\n", err);
            return 1;
        }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kafka_raw: %s\n", err);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[2], NULL);
    char *payload = malloc((size_t)size);
    if (!payload)
        return 1;
    memset(payload, 'x', (size_t)size);

    double t0 = now_s();
    for (long i = 0; i < count; i++) {
        char key[12];
        int klen = snprintf(key, sizeof key, "%ld", i % 1000);
        for (;;) {
            rd_kafka_poll(rk, 0);
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, (size_t)klen),
                RD_KAFKA_V_VALUE(payload, (size_t)size),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "kafka_raw: %s\n", rd_kafka_err2str(e));
                return 1;
            }
            rd_kafka_poll(rk, 1); /* queue full: let deliveries drain */
        }
    }
    rd_kafka_flush(rk, 30000);
    double dt = now_s() - t0;
    printf("raw librdkafka: %ld messages of %ld bytes in %.2f s = %.0f msg/s "
           "(delivered %llu, failed %llu)\n",
           count, size, dt, (double)count / dt, delivered, failed);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(payload);
    return failed ? 1 : 0;
}
