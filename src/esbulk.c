/*
 * esbulk.c - the _bulk sender thread and its queue (see esbulk.h).
 *
 * Only the sender thread removes documents, and only from the front of the
 * queue, where the batch it is sending sits; il_esbulk_add only appends at
 * the back.  So the thread can read its batch without the lock while the
 * request is in flight, and take the lock only to append or to drop what
 * the answer settled.
 */
#include "esbulk.h"

#include "clock.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_DOCS 1000            /* documents per request at most */
#define BATCH_BYTES (4u << 20)     /* bytes per request at most (roughly) */
#define LINGER_US 1000000          /* send a partial batch after this long */
#define BACKOFF_MIN_US 500000
#define BACKOFF_MAX_US 30000000

typedef struct doc {
    struct doc *next;
    char id[64];
    size_t len;
    char body[];
} doc;

/* What the answer said about one document. */
enum { D_PENDING, D_DONE, D_RETRY, D_REJECTED };

struct il_esbulk {
    char url[2048];     /* <base>/_bulk */
    char shown[2048];   /* the same without credentials, for messages */
    char index[256];
    size_t queue_max;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    doc *head, *tail;
    int stop, kicked;
    int64_t deadline_us;
    int64_t backoff_us, next_try_us;
    il_esbulk_stats st;
    CURL *curl;
    char *resp;
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    il_esbulk *b = ud;
    size_t len = size * n;
    char *r = realloc(b->resp, b->resp_len + len + 1);
    if (!r)
        return 0; /* curl reports a write error; the request is retried */
    memcpy(r + b->resp_len, p, len);
    b->resp = r;
    b->resp_len += len;
    r[b->resp_len] = '\0';
    return len;
}

/* Wait on the condition until `until_us` (CLOCK_REALTIME, as il_now_us). */
static void wait_until(il_esbulk *b, int64_t until_us)
{
    struct timespec ts = {.tv_sec = (time_t)(until_us / 1000000),
                          .tv_nsec = (long)(until_us % 1000000) * 1000};
    pthread_cond_timedwait(&b->cond, &b->lock, &ts);
}

/* Mark each of the n batch documents from a 200 answer. */
static void read_items(il_esbulk *b, int *status, size_t n)
{
    cJSON *root = cJSON_ParseWithLength(b->resp ? b->resp : "", b->resp_len);
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (!root || !cJSON_IsArray(items)) {
        /* Not an answer we understand: nothing is known to be stored. */
        for (size_t i = 0; i < n; i++)
            status[i] = D_RETRY;
        cJSON_Delete(root);
        return;
    }
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        if (i == n)
            break;
        const cJSON *action = it->child; /* {"create":{...}} */
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(action, "status");
        int code = cJSON_IsNumber(st) ? st->valueint : 0;
        if ((code >= 200 && code < 300) || code == 409)
            status[i] = D_DONE;
        else if (code == 429 || code >= 500 || code == 0)
            status[i] = D_RETRY;
        else {
            status[i] = D_REJECTED;
            const cJSON *err = cJSON_GetObjectItemCaseSensitive(action, "error");
            char *why = err ? cJSON_PrintUnformatted(err) : NULL;
            il_log(IL_LOG_ERROR, "Elasticsearch %s refused a document (status %d): %.300s",
                   b->shown, code, why ? why : "no reason given");
            cJSON_free(why);
        }
        i++;
    }
    /* Fewer items than documents, or "errors":false with odd items: only
     * what was answered is settled. */
    for (; i < n; i++)
        status[i] = cJSON_IsFalse(errors) ? D_DONE : D_RETRY;
    cJSON_Delete(root);
}

/* One request with the first n documents (read without the lock: see the
 * top of the file).  Fills status[]. */
static void send_batch(il_esbulk *b, doc *first, size_t n, int *status)
{
    char *body = NULL;
    size_t body_len = 0;
    FILE *f = open_memstream(&body, &body_len);
    doc *d = first;
    for (size_t i = 0; i < n && f; i++, d = d->next) {
        fprintf(f, "{\"create\":{\"_index\":\"%s\",\"_id\":\"%s\"}}\n", b->index, d->id);
        fwrite(d->body, 1, d->len, f);
        fputc('\n', f);
    }
    if (!f || fclose(f) != 0) {
        free(body);
        for (size_t i = 0; i < n; i++)
            status[i] = D_RETRY;
        return;
    }
    free(b->resp);
    b->resp = NULL;
    b->resp_len = 0;
    b->errbuf[0] = '\0';
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
    curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(b->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    CURLcode rc = curl_easy_perform(b->curl);
    long code = 0;
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    free(body);
    pthread_mutex_lock(&b->lock);
    b->st.requests++;
    pthread_mutex_unlock(&b->lock);
    if (rc == CURLE_OK && code == 200) {
        read_items(b, status, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        status[i] = D_RETRY;
    pthread_mutex_lock(&b->lock);
    b->st.failures++;
    pthread_mutex_unlock(&b->lock);
    if (rc != CURLE_OK)
        il_log(IL_LOG_WARN, "Elasticsearch %s: %s: %zu document(s) kept for a retry", b->shown,
               b->errbuf[0] ? b->errbuf : curl_easy_strerror(rc), n);
    else
        il_log(IL_LOG_WARN,
               "Elasticsearch %s answered %ld: %zu document(s) kept for a retry%s%.200s",
               b->shown, code, n, b->resp_len ? ": " : "", b->resp ? b->resp : "");
}

static void *sender(void *arg)
{
    il_esbulk *b = arg;
    int *status = malloc(BATCH_DOCS * sizeof *status);
    pthread_mutex_lock(&b->lock);
    int64_t oldest_wait_start = 0;
    while (status) {
        int64_t now = il_now_us();
        if (b->stop && (!b->head || now >= b->deadline_us))
            break;
        if (!b->head) {
            oldest_wait_start = 0;
            if (b->stop)
                break;
            pthread_cond_wait(&b->cond, &b->lock);
            continue;
        }
        if (now < b->next_try_us) {
            int64_t until = b->next_try_us;
            if (b->stop && b->deadline_us < until)
                until = b->deadline_us;
            wait_until(b, until);
            continue;
        }
        /* Batch documents that arrive together: wait for a kick, a full
         * batch, the end, or LINGER_US. */
        if (!oldest_wait_start)
            oldest_wait_start = now;
        if (!b->stop && !b->kicked && b->st.queued < BATCH_DOCS &&
            now - oldest_wait_start < LINGER_US) {
            wait_until(b, oldest_wait_start + LINGER_US);
            continue;
        }
        b->kicked = 0;
        oldest_wait_start = 0;
        size_t n = 0, bytes = 0;
        doc *first = b->head;
        for (doc *d = first; d && n < BATCH_DOCS && (n == 0 || bytes + d->len < BATCH_BYTES);
             d = d->next)
            n++, bytes += d->len + 100;
        pthread_mutex_unlock(&b->lock);
        send_batch(b, first, n, status);
        pthread_mutex_lock(&b->lock);
        /* Settle the batch: it is still the front of the queue. */
        doc **link = &b->head, *prev = NULL;
        size_t retry = 0;
        for (size_t i = 0; i < n; i++) {
            doc *d = *link;
            if (status[i] == D_RETRY) {
                retry++;
                prev = d;
                link = &d->next;
                continue;
            }
            if (status[i] == D_DONE)
                b->st.sent++;
            else
                b->st.rejected++;
            *link = d->next;
            if (b->tail == d)
                b->tail = prev;
            b->st.queued--;
            free(d);
        }
        if (retry) {
            b->backoff_us = b->backoff_us ? b->backoff_us * 2 : BACKOFF_MIN_US;
            if (b->backoff_us > BACKOFF_MAX_US)
                b->backoff_us = BACKOFF_MAX_US;
            b->next_try_us = il_now_us() + b->backoff_us;
            if (retry < n)
                b->st.retried += retry;
        } else {
            b->backoff_us = 0;
            b->next_try_us = 0;
        }
    }
    pthread_mutex_unlock(&b->lock);
    free(status);
    return NULL;
}

int il_esbulk_open(il_esbulk **out, const char *url, const char *index, size_t queue_max,
                   char *errbuf, size_t errlen)
{
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    if (ul + 7 > sizeof ((il_esbulk *)0)->url || strlen(index) >= 256) {
        snprintf(errbuf, errlen, "Elasticsearch URL or index name too long");
        return IL_ESBULK_EINVAL;
    }
    il_esbulk *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(errbuf, errlen, "out of memory");
        return IL_ESBULK_EINVAL;
    }
    snprintf(b->url, sizeof b->url, "%.*s/_bulk", (int)ul, url);
    /* Drop user:password@ from what is ever printed. */
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : url;
    const char *at = memchr(host, '@', strcspn(host, "/"));
    snprintf(b->shown, sizeof b->shown, "%.*s%.*s", (int)(host - url), url,
             (int)(url + ul - (at ? at + 1 : host)), at ? at + 1 : host);
    snprintf(b->index, sizeof b->index, "%s", index);
    b->queue_max = queue_max;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(b->curl = curl_easy_init())) {
        snprintf(errbuf, errlen, "libcurl did not initialize");
        free(b);
        return IL_ESBULK_EINVAL;
    }
    curl_easy_setopt(b->curl, CURLOPT_URL, b->url);
    curl_easy_setopt(b->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(b->curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(b->curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(b->curl, CURLOPT_USERAGENT, "iotlat-plotter");
    curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(b->curl, CURLOPT_ERRORBUFFER, b->errbuf);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    if (pthread_create(&b->thread, NULL, sender, b) != 0) {
        snprintf(errbuf, errlen, "cannot start the Elasticsearch sender thread");
        curl_easy_cleanup(b->curl);
        curl_global_cleanup();
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->cond);
        free(b);
        return IL_ESBULK_EINVAL;
    }
    *out = b;
    return 0;
}

int il_esbulk_add(il_esbulk *b, const char *id, const char *body, size_t len)
{
    doc *d = malloc(sizeof *d + len);
    pthread_mutex_lock(&b->lock);
    if (!d || b->st.queued >= b->queue_max) {
        b->st.dropped++;
        uint64_t dropped = b->st.dropped;
        pthread_mutex_unlock(&b->lock);
        free(d);
        /* Said once, then at every power of ten, so a long outage does not
         * flood the log. */
        for (uint64_t p = 1; p <= dropped; p *= 10)
            if (p == dropped)
                il_log(IL_LOG_ERROR,
                       "Elasticsearch queue full (IOTLAT_PLOTTER_ES_QUEUE=%zu): %llu "
                       "document(s) dropped so far",
                       b->queue_max, (unsigned long long)dropped);
        return IL_ESBULK_EFULL;
    }
    d->next = NULL;
    snprintf(d->id, sizeof d->id, "%s", id);
    d->len = len;
    memcpy(d->body, body, len);
    if (b->tail)
        b->tail->next = d;
    else
        b->head = d;
    b->tail = d;
    b->st.queued++;
    if (b->st.queued >= BATCH_DOCS)
        pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

void il_esbulk_kick(il_esbulk *b)
{
    pthread_mutex_lock(&b->lock);
    b->kicked = 1;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

void il_esbulk_stats_get(il_esbulk *b, il_esbulk_stats *st)
{
    pthread_mutex_lock(&b->lock);
    *st = b->st;
    pthread_mutex_unlock(&b->lock);
}

uint64_t il_esbulk_close(il_esbulk *b, int64_t timeout_us)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    b->deadline_us = il_now_us() + timeout_us;
    /* At the end, waiting out a long backoff would only lose time. */
    if (b->next_try_us > il_now_us() + BACKOFF_MIN_US)
        b->next_try_us = il_now_us() + BACKOFF_MIN_US;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    uint64_t left = b->st.queued;
    while (b->head) {
        doc *d = b->head;
        b->head = d->next;
        free(d);
    }
    curl_easy_cleanup(b->curl);
    curl_global_cleanup();
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    free(b->resp);
    free(b);
    return left;
}
