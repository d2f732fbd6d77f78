/*
 * driver.h - loading broker drivers and the host side of the driver ABI.
 *
 * The binaries never link a broker client: they dlopen the driver named by
 * IOTLAT_DRIVER, check that it speaks our ABI, and give it the host services
 * (log, clock, options, connection events).  A driver that is built for
 * another ABI major, whose table is shorter than the ABI requires, or that
 * lacks a required function is refused with a message naming the cause, so
 * a stale out-of-tree .so fails at start instead of crashing mid-run.
 *
 * Connection events from the driver are kept here as outage windows, which
 * the reports print: a load test that lost its broker for 3 s must say so.
 */
#ifndef IL_DRIVER_H
#define IL_DRIVER_H

#include "iotlat_driver.h"

#include <stddef.h>
#include <stdint.h>

#define IL_DRIVER_MAX_OUTAGES 32 /* windows kept in detail; more are summed */

/* Error codes (besides the driver's own IOTLAT_E*). */
#define IL_DRIVER_ELOAD -1001    /* dlopen failed */
#define IL_DRIVER_ENOENTRY -1002 /* no IOTLAT_DRIVER_ENTRY_NAME symbol */
#define IL_DRIVER_EREFUSED -1003 /* entry returned NULL */
#define IL_DRIVER_EABI -1004     /* major mismatch */
#define IL_DRIVER_ESHORT -1005   /* table smaller than ABI 1.0 */
#define IL_DRIVER_EMISSING -1006 /* required function is NULL */

typedef struct il_outage {
    int64_t start_us, end_us; /* end_us == 0 while still disconnected */
    char why[96];
} il_outage;

typedef struct il_driver {
    void *dl;                 /* dlopen handle */
    const iotlat_driver *vt;  /* the driver's table */
    void *inst;               /* open instance, NULL if none */
    iotlat_host host;         /* services handed to the driver */
    char path[512];           /* the .so that was loaded */
    char label[64];           /* log prefix: "driver zeromq" */
    /* Connection history, filled by driver events. */
    uint64_t disconnects;
    int64_t outage_total_us;  /* closed windows only */
    size_t noutages;          /* windows recorded (<= IL_DRIVER_MAX_OUTAGES) */
    il_outage outages[IL_DRIVER_MAX_OUTAGES];
    int disconnected;         /* 1 while an outage is open */
    int64_t outage_start_us;
} il_driver;

/* Resolve `name` (a driver name looked up as <plugin_dir>/<name>.so, or a
 * path containing '/'), dlopen it and validate its table.  On success returns
 * 0 and d must later be released with il_driver_close.  On failure returns
 * an IL_DRIVER_E* code with one sentence in errbuf, and d holds nothing. */
int il_driver_load(il_driver *d, const char *name, const char *plugin_dir,
                   char *errbuf, size_t errlen);

/* Open the driver instance for roles (IOTLAT_ROLE_*).  Returns 0 or the
 * driver's negative code with errbuf filled. */
int il_driver_open(il_driver *d, int roles, char *errbuf, size_t errlen);

/* Load and open in one step for a binary: prints the reason on failure and
 * returns the exit status to use (2 for a configuration problem: unknown
 * driver, bad or unknown option; 1 for anything else), or 0 on success. */
int il_driver_setup(il_driver *d, const char *name, const char *plugin_dir,
                    int roles);

/* Close the instance (if open) and unload the driver. */
void il_driver_close(il_driver *d);

/* Forget an outage still open that began at or after t_us: the peer went
 * away because the stream ended (a brokerless publisher that finished), not
 * because of a failure. */
void il_driver_forget_outage_after(il_driver *d, int64_t t_us);

/* Outage time so far, including an outage still open at `now_us`. */
int64_t il_driver_outage_us(const il_driver *d, int64_t now_us);

#endif
