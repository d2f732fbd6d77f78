/*
 * short_table.c - breaks the table size: every field is filled in, but the
 * size field says the table ends at offsetof(iotlat_driver, poll), as if the
 * driver had been built against a truncated header.  The loader must trust
 * the size, refuse the driver with IL_DRIVER_ESHORT ("short function table")
 * and never read the fields beyond it.
 */
#include "stubs.h"

STUB_DRIVER("short_table", IOTLAT_DRIVER_ABI_MAJOR, offsetof(iotlat_driver, poll),
            stub_open, stub_publish)
