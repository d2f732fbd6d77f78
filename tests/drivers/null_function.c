/*
 * null_function.c - breaks a required function: the table has the right
 * major and full size, but publish is NULL.  publish is not optional (only fd
 * and wait_ready are), so the loader must refuse the driver at load time
 * with IL_DRIVER_EMISSING naming 'publish', rather than let a publisher
 * crash on a NULL call mid-run.
 */
#include "stubs.h"

STUB_DRIVER("null_function", IOTLAT_DRIVER_ABI_MAJOR, sizeof(iotlat_driver), stub_open,
            NULL)
