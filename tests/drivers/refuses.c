/*
 * refuses.c - breaks the handshake from the driver's side: the entry point
 * declines every host, returning NULL with the reason "needs ABI 9" in
 * errbuf (as a driver built for a future ABI would).  The loader must report
 * IL_DRIVER_EREFUSED and pass the driver's own reason through in its
 * message.
 */
#include "iotlat_driver.h"

#include <stdio.h>

const iotlat_driver *IOTLAT_DRIVER_ENTRY(uint16_t major, uint16_t minor,
                                          const iotlat_host *host, char *errbuf,
                                          size_t errlen)
{
    (void)major, (void)minor, (void)host;
    snprintf(errbuf, errlen, "needs ABI 9");
    return NULL;
}
