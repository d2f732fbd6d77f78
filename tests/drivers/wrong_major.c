/*
 * wrong_major.c - breaks the ABI version: the table claims ABI major
 * IOTLAT_DRIVER_ABI_MAJOR + 1 (a driver built against a future, incompatible
 * iotlat_driver.h that, wrongly, does not refuse an older host itself).  The
 * loader must notice the major mismatch in the returned table and refuse the
 * driver with IL_DRIVER_EABI instead of calling into a table whose layout it
 * does not know.
 */
#include "stubs.h"

STUB_DRIVER("wrong_major", IOTLAT_DRIVER_ABI_MAJOR + 1, sizeof(iotlat_driver), stub_open,
            stub_publish)
