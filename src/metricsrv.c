/*
 * metricsrv.c - /metrics over libmicrohttpd (see metricsrv.h).
 *
 * The listening socket is made here rather than by libmicrohttpd so that a
 * port in use or an address that does not exist is reported with the
 * system's reason before the plotter starts reading.
 */
#include "metricsrv.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct il_metricsrv {
    struct MHD_Daemon *d;
    int fd;
    pthread_mutex_t lock;
    char *text; /* NULL until the first il_metricsrv_set */
    size_t len;
    unsigned long scrapes;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             size_t len, enum MHD_ResponseMemoryMode mode,
                             const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version,
                              const char *upload, size_t *upload_len, void **state)
{
    il_metricsrv *m = cls;
    static const char index_page[] =
        "iotlat-plotter: Prometheus metrics at /metrics\n";
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n", 9,
                     MHD_RESPMEM_PERSISTENT, "text/plain");
    if (strcmp(url, "/") == 0)
        return reply(c, MHD_HTTP_OK, index_page, sizeof index_page - 1,
                     MHD_RESPMEM_PERSISTENT, "text/plain");
    if (strcmp(url, "/metrics") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "not found\n", 10, MHD_RESPMEM_PERSISTENT,
                     "text/plain");
    pthread_mutex_lock(&m->lock);
    enum MHD_Result rc;
    if (!m->text) {
        rc = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no results read yet\n", 20,
                   MHD_RESPMEM_PERSISTENT, "text/plain");
    } else {
        /* Copied while locked: the plotter may replace the text at once. */
        rc = reply(c, MHD_HTTP_OK, m->text, m->len, MHD_RESPMEM_MUST_COPY, CONTENT_TYPE);
        m->scrapes++;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* "host:port" or "[addr]:port" -> a bound, listening socket. */
static int listen_on(const char *listen_addr, int *fd_out, int *v6, char *errbuf,
                     size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen_addr, ':');
    if (!colon || colon == listen_addr) {
        snprintf(errbuf, errlen, "'%s' is not host:port", listen_addr);
        return IL_METRICSRV_EADDR;
    }
    size_t hl = (size_t)(colon - listen_addr);
    const char *h = listen_addr;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']')
        h++, hl -= 2;
    if (hl >= sizeof host) {
        snprintf(errbuf, errlen, "host name too long in '%s'", listen_addr);
        return IL_METRICSRV_EADDR;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai) {
        snprintf(errbuf, errlen, "cannot resolve '%s': %s", listen_addr, gai_strerror(gai));
        return IL_METRICSRV_EADDR;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", listen_addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return IL_METRICSRV_EBIND;
    }
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    *fd_out = fd;
    return 0;
}

int il_metricsrv_start(il_metricsrv **out, const char *listen_addr, char *errbuf,
                       size_t errlen)
{
    int fd, v6 = 0;
    int rc = listen_on(listen_addr, &fd, &v6, errbuf, errlen);
    if (rc)
        return rc;
    il_metricsrv *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        snprintf(errbuf, errlen, "out of memory");
        return IL_METRICSRV_ESTART;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->fd = fd;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    m->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, m, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!m->d) {
        snprintf(errbuf, errlen, "libmicrohttpd did not start on %s", listen_addr);
        close(fd);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return IL_METRICSRV_ESTART;
    }
    *out = m;
    return 0;
}

void il_metricsrv_set(il_metricsrv *m, const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return; /* the previous text stays: stale beats none */
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&m->lock);
    char *old = m->text;
    m->text = copy;
    m->len = len;
    pthread_mutex_unlock(&m->lock);
    free(old);
}

unsigned long il_metricsrv_scrapes(il_metricsrv *m)
{
    pthread_mutex_lock(&m->lock);
    unsigned long n = m->scrapes;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void il_metricsrv_stop(il_metricsrv *m)
{
    if (!m)
        return;
    MHD_stop_daemon(m->d);
    /* A socket handed in with MHD_OPTION_LISTEN_SOCKET is closed by
     * MHD_stop_daemon. */
    pthread_mutex_destroy(&m->lock);
    free(m->text);
    free(m);
}
