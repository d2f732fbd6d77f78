/*
 * wrong_major.c - breaks the ABI version: the table claims ABI major
 * IOTLAT_DRIVER_ABI_MAJOR + 1 (a driver built against a future, incompatible
 * iotlat_driver.h that, wrongly, does not refuse an older host itself).  The
 * loader must notice the major mismatch in the returned table and refuse the
 * driver with IL_DRIVER_EABI instead of calling into a table whose layout it
 * does not know.
 */
#include "stubs.h"

static const iotlat_driver table = {
    .abi_major = IOTLAT_DRIVER_ABI_MAJOR + 1,
    .abi_minor = 0,
    .size = sizeof(iotlat_driver),
    .name = "wrong_major",
    .version = "wrong_major test driver",
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
