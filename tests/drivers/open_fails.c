/*
 * open_fails.c - breaks the connection, not the ABI: the table is valid and
 * loads, but open() always fails with IOTLAT_ECONNECT and the sentence
 * "broker at 127.0.0.1:1 refused the connection", like a driver whose broker
 * is down.  The host must pass the code and sentence through
 * il_driver_open, and il_driver_setup must map it to exit status 1 (a
 * runtime failure), not 2 (a configuration error).
 */
#include "stubs.h"

static int fail_open(const iotlat_host *host, int roles, void **inst, char *errbuf,
                     size_t errlen)
{
    (void)host, (void)roles, (void)inst;
    snprintf(errbuf, errlen, "broker at 127.0.0.1:1 refused the connection");
    return IOTLAT_ECONNECT;
}

STUB_DRIVER("open_fails", IOTLAT_DRIVER_ABI_MAJOR, sizeof(iotlat_driver), fail_open,
            stub_publish)
