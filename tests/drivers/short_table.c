/*
 * short_table.c - breaks the table size: every field is filled in, but the
 * size field says the table ends at offsetof(iotlat_driver, poll), as if the
 * driver had been built against a truncated header.  The loader must trust
 * the size, refuse the driver with IL_DRIVER_ESHORT ("short function table")
 * and never read the fields beyond it.
 */
#include "stubs.h"

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR,
    .abi_minor = IOTLAT_DRIVER_ABI_MINOR,
    .size = offsetof(iotlat_driver, poll),
    .name = "short_table",
    .version = "short_table test driver",
    .open = stub_open,
    .subscribe = stub_subscribe,
    .publish = stub_publish,
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
