/*
 * null_function.c - breaks a required function: the table has the right
 * major and full size, but publish is NULL.  publish is not optional (only fd
 * and wait_ready are), so the loader must refuse the driver at load time
 * with IL_DRIVER_EMISSING naming 'publish', rather than let a publisher
 * crash on a NULL call mid-run.
 */
#include "stubs.h"

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR,
    .abi_minor = IOTLAT_DRIVER_ABI_MINOR,
    .size = sizeof(iotlat_driver),
    .name = "null_function",
    .version = "null_function test driver",
    .open = stub_open,
    .subscribe = stub_subscribe,
    .publish = NULL,
    .poll = stub_poll,
    .flush = stub_flush,
    .close = stub_close,
};

const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,
                                          const iotlat_host *host, char *errbuf,
                                          size_t errlen)
{
    (void)major, (void)minor, (void)host, (void)errbuf, (void)errlen;
    return &table;
}
