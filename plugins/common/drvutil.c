/*
 * drvutil.c - option parsing and the thread-to-poll() inbox for drivers.
 */
#include "drvutil.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

int drv_opt_str(drv_opts *o, const char *key, const char *def, char *out, size_t len,
                int *set)
{
    char var[128];
    snprintf(var, sizeof var, "%s%s", o->prefix, key);
    int r = o->host->option(o->host->host_ud, var, out, len, o->errbuf, o->errlen);
    if (r < 0)
        return IOTLAT_EINVAL;
    if (set)
        *set = r;
    if (r == 0)
        snprintf(out, len, "%s", def ? def : "");
    return 0;
}

int drv_opt_long(drv_opts *o, const char *key, long def, long min, long max, long *out)
{
    char buf[64], *end;
    int set;
    int r = drv_opt_str(o, key, NULL, buf, sizeof buf, &set);
    if (r)
        return r;
    if (!set) {
        *out = def;
        return 0;
    }
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || end == buf || *end || v < min || v > max) {
        snprintf(o->errbuf, o->errlen,
                 "%s%s='%s' is invalid: expected an integer from %ld to %ld", o->prefix,
                 key, buf, min, max);
        return IOTLAT_EINVAL;
    }
    *out = v;
    return 0;
}

int drv_opt_enum(drv_opts *o, const char *key, const char *def,
                 const char *const *choices, int *out)
{
    char buf[64];
    int r = drv_opt_str(o, key, def, buf, sizeof buf, NULL);
    if (r)
        return r;
    for (int i = 0; choices[i]; i++) {
        if (strcasecmp(buf, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    size_t n = (size_t)snprintf(o->errbuf, o->errlen, "%s%s='%s' is invalid: expected",
                                o->prefix, key, buf);
    for (int i = 0; choices[i] && n < o->errlen; i++)
        n += (size_t)snprintf(o->errbuf + n, o->errlen - n, "%s %s", i ? "," : "",
                              choices[i]);
    return IOTLAT_EINVAL;
}

int drv_opt_bool(drv_opts *o, const char *key, int def, int *out)
{
    static const char *const choices[] = {"false", "true", "0", "1", "no", "yes",
                                          "off",   "on",   NULL};
    int idx;
    int r = drv_opt_enum(o, key, def ? "true" : "false", choices, &idx);
    if (r == 0)
        *out = idx & 1;
    return r;
}

struct drv_msg {
    drv_msg *next;
    int tag;
    int64_t t_recv;
    size_t len;
    char *topic;
    char data[]; /* payload, then the topic string */
};

int drv_inbox_init(drv_inbox *q, size_t limit)
{
    memset(q, 0, sizeof *q);
    q->limit = limit;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0)
        return IOTLAT_EIO;
    pthread_mutex_init(&q->mu, NULL);
    return 0;
}

void drv_inbox_free(drv_inbox *q)
{
    drv_msg *m = q->head;
    while (m) {
        drv_msg *n = m->next;
        free(m);
        m = n;
    }
    q->head = q->tail = NULL;
    if (q->efd >= 0)
        close(q->efd);
    q->efd = -1;
    pthread_mutex_destroy(&q->mu);
}

int drv_inbox_push(drv_inbox *q, int tag, const char *topic, const void *data,
                   size_t len, int64_t t_recv)
{
    size_t tl = strlen(topic);
    drv_msg *m = malloc(sizeof *m + len + tl + 1);
    if (!m) {
        __atomic_add_fetch(&q->dropped, 1, __ATOMIC_RELAXED);
        return -1;
    }
    m->next = NULL;
    m->tag = tag;
    m->t_recv = t_recv;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    m->topic = m->data + len;
    memcpy(m->topic, topic, tl + 1);
    pthread_mutex_lock(&q->mu);
    if (q->count >= q->limit) {
        q->dropped++;
        pthread_mutex_unlock(&q->mu);
        free(m);
        return -1;
    }
    int was_empty = q->head == NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->count++;
    pthread_mutex_unlock(&q->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(q->efd, &one, sizeof one);
        (void)w; /* a full counter still leaves the fd readable */
    }
    return 0;
}

int drv_inbox_drain(drv_inbox *q, int timeout_ms, int max,
                    void (*fn)(void *ud, int tag, const char *topic, const void *data,
                               size_t len, int64_t t_recv),
                    void *ud)
{
    drv_msg *list;
    int n = 0;
    pthread_mutex_lock(&q->mu);
    if (!q->head && timeout_ms != 0) {
        pthread_mutex_unlock(&q->mu);
        struct pollfd p = {.fd = q->efd, .events = POLLIN};
        poll(&p, 1, timeout_ms);
        pthread_mutex_lock(&q->mu);
    }
    /* Take the whole list (up to max) under the lock, deliver outside it, so
     * library threads are never blocked by the host's processing. */
    list = q->head;
    drv_msg *last = NULL, *m = list;
    while (m && n < max) {
        last = m;
        m = m->next;
        n++;
    }
    if (last) {
        q->head = m;
        if (!m)
            q->tail = NULL;
        last->next = NULL;
        q->count -= (size_t)n;
    }
    if (!q->head) {
        uint64_t v;
        ssize_t r = read(q->efd, &v, sizeof v);
        (void)r;
    }
    pthread_mutex_unlock(&q->mu);
    for (m = last ? list : NULL; m;) {
        drv_msg *next = m->next;
        fn(ud, m->tag, m->topic, m->data, m->len, m->t_recv);
        free(m);
        m = next;
    }
    return n;
}
