/*
 * stubs.h - do-nothing driver functions shared by the deliberately broken
 * test drivers, so that each of them shows only the one thing it breaks.
 * Not a driver itself (the Makefile builds only the .c files here).  The
 * functions are static inline so that a driver that leaves some of them out
 * of its table gets no unused-function warning.
 */
#ifndef IL_TEST_DRIVER_STUBS_H
#define IL_TEST_DRIVER_STUBS_H

#include "iotlat_driver.h"

#include <stdio.h>

static inline int stub_open(const iotlat_host *host, int roles, void **inst,
                            char *errbuf, size_t errlen)
{
    (void)host, (void)roles, (void)inst;
    snprintf(errbuf, errlen, "stub driver cannot be opened");
    return IOTLAT_EIO;
}

static inline int stub_subscribe(void *inst, const char *topic, iotlat_msg_fn fn,
                                 void *ud, char *errbuf, size_t errlen)
{
    (void)inst, (void)topic, (void)fn, (void)ud, (void)errbuf, (void)errlen;
    return 0;
}

static inline int stub_publish(void *inst, const char *topic, const char *key,
                               const void *data, size_t len, char *errbuf,
                               size_t errlen)
{
    (void)inst, (void)topic, (void)key, (void)data, (void)len, (void)errbuf,
        (void)errlen;
    return 0;
}

static inline int stub_poll(void *inst, int timeout_ms, char *errbuf, size_t errlen)
{
    (void)inst, (void)timeout_ms, (void)errbuf, (void)errlen;
    return 0;
}

static inline int stub_flush(void *inst, int timeout_ms, char *errbuf, size_t errlen)
{
    (void)inst, (void)timeout_ms, (void)errbuf, (void)errlen;
    return 0;
}

static inline void stub_close(void *inst)
{
    (void)inst;
}

/* The table and entry point of a stub driver; each broken driver passes the
 * one field it breaks. */
#define STUB_DRIVER(NAME, MAJOR, SIZE, OPEN, PUBLISH)                           \
    static const iotlat_driver table = {                                       \
        .abi_major = (MAJOR),                                                  \
        .abi_minor = 0,                                                        \
        .size = (SIZE),                                                        \
        .name = NAME,                                                          \
        .version = NAME " test driver",                                        \
        .open = OPEN,                                                          \
        .subscribe = stub_subscribe,                                           \
        .publish = PUBLISH,                                                    \
        .poll = stub_poll,                                                     \
        .flush = stub_flush,                                                   \
        .close = stub_close,                                                   \
    };                                                                         \
    const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,   \
                                              const iotlat_host *host,         \
                                              char *errbuf, size_t errlen)     \
    {                                                                          \
        (void)major, (void)minor, (void)host, (void)errbuf, (void)errlen;      \
        return &table;                                                         \
    }

#endif
