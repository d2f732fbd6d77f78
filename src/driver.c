/*
 * driver.c - dlopen-based driver loader and the host services table.
 */
#include "driver.h"

#include "clock.h"
#include "config.h"
#include "log.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern char **environ;

static void host_log(void *ud, int level, const char *fmt, ...)
{
    il_driver *d = ud;
    va_list ap;
    va_start(ap, fmt);
    il_vlog(level, d->label, fmt, ap);
    va_end(ap);
}

static void host_event(void *ud, int event, const char *detail)
{
    il_driver *d = ud;
    int64_t now = il_now_us();
    if (event == IOTLAT_EVENT_DISCONNECTED && !d->disconnected) {
        d->disconnected = 1;
        d->disconnects++;
        d->outage_start_us = now;
        if (d->noutages < IL_DRIVER_MAX_OUTAGES) {
            il_outage *o = &d->outages[d->noutages++];
            o->start_us = now;
            o->end_us = 0;
            snprintf(o->why, sizeof o->why, "%s", detail ? detail : "");
        }
        il_log(IL_LOG_WARN, "%s: disconnected: %s", d->label, detail ? detail : "");
    } else if (event == IOTLAT_EVENT_RECONNECTED && d->disconnected) {
        d->disconnected = 0;
        d->outage_total_us += now - d->outage_start_us;
        if (d->noutages > 0 && d->outages[d->noutages - 1].end_us == 0)
            d->outages[d->noutages - 1].end_us = now;
        il_log(IL_LOG_WARN, "%s: reconnected after %.3f s", d->label,
               (double)(now - d->outage_start_us) / 1e6);
    }
}

static int host_option(void *ud, const char *var, char *out, size_t outlen,
                       char *errbuf, size_t errlen)
{
    int r = il_env_or_file(var, out, outlen, errbuf, errlen);
    (void)ud;
    return r < 0 ? IOTLAT_EINVAL : r;
}

static int host_check_options(void *ud, const char *prefix,
                              const char *const *known, char *errbuf,
                              size_t errlen)
{
    size_t plen = strlen(prefix);
    (void)ud;
    for (char **e = environ; *e; e++) {
        const char *name = *e;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int ok = 0;
        if (strncmp(name, prefix, plen) != 0)
            continue;
        for (const char *const *k = known; *k && !ok; k++) {
            size_t kl = strlen(*k);
            if (len == plen + kl && strncmp(name + plen, *k, kl) == 0)
                ok = 1;
            else if (len == plen + kl + 5 && strncmp(name + plen, *k, kl) == 0 &&
                     strncmp(name + plen + kl, "_FILE", 5) == 0)
                ok = 1;
        }
        if (!ok) {
            size_t n = (size_t)snprintf(errbuf, errlen,
                                        "unknown option %.*s; accepted:", (int)len,
                                        name);
            for (const char *const *k = known; *k && n < errlen; k++)
                n += (size_t)snprintf(errbuf + n, errlen - n, " %s%s", prefix, *k);
            return IOTLAT_EINVAL;
        }
    }
    return 0;
}

static int valid_name(const char *name)
{
    if (!*name || strlen(name) > 32)
        return 0;
    for (const char *p = name; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}

int il_driver_load(il_driver *d, const char *name, const char *plugin_dir,
                   char *errbuf, size_t errlen)
{
    char why[256] = "";
    iotlat_driver_entry_fn entry;
    const iotlat_driver *vt;

    memset(d, 0, sizeof *d);
    if (strchr(name, '/')) {
        snprintf(d->path, sizeof d->path, "%s", name);
    } else if (valid_name(name)) {
        snprintf(d->path, sizeof d->path, "%s/%s.so", plugin_dir, name);
    } else {
        snprintf(errbuf, errlen,
                 "IOTLAT_DRIVER='%s' is invalid: expected a driver name (zeromq, "
                 "kafka, nats, mqtt, redis) or a path to a .so",
                 name);
        return IL_DRIVER_ELOAD;
    }
    d->dl = dlopen(d->path, RTLD_NOW | RTLD_LOCAL);
    if (!d->dl) {
        snprintf(errbuf, errlen, "IOTLAT_DRIVER='%s': cannot load the driver from %s: %s",
                 name, d->path, dlerror());
        return IL_DRIVER_ELOAD;
    }
    /* POSIX allows converting dlsym's void* to a function pointer; the
     * memcpy keeps -Wpedantic quiet about it. */
    void *sym = dlsym(d->dl, IOTLAT_DRIVER_ENTRY_NAME);
    if (!sym) {
        snprintf(errbuf, errlen,
                 "driver %s has no entry symbol %s: not an iotlat driver", d->path,
                 IOTLAT_DRIVER_ENTRY_NAME);
        dlclose(d->dl);
        d->dl = NULL;
        return IL_DRIVER_ENOENTRY;
    }
    memcpy(&entry, &sym, sizeof entry);

    d->host.abi_major = IOTLAT_DRIVER_ABI_MAJOR;
    d->host.abi_minor = IOTLAT_DRIVER_ABI_MINOR;
    d->host.size = sizeof d->host;
    d->host.log = host_log;
    d->host.now_us = il_now_us;
    d->host.event = host_event;
    d->host.host_ud = d;
    d->host.option = host_option;
    d->host.check_options = host_check_options;
    snprintf(d->label, sizeof d->label, "driver %s", name);

    vt = entry(IOTLAT_DRIVER_ABI_MAJOR, IOTLAT_DRIVER_ABI_MINOR, &d->host, why,
               sizeof why);
    if (!vt) {
        snprintf(errbuf, errlen, "driver %s refused host ABI %d.%d: %s", d->path,
                 IOTLAT_DRIVER_ABI_MAJOR, IOTLAT_DRIVER_ABI_MINOR,
                 why[0] ? why : "no reason given");
        dlclose(d->dl);
        d->dl = NULL;
        return IL_DRIVER_EREFUSED;
    }
    if (vt->abi_major != IOTLAT_DRIVER_ABI_MAJOR) {
        snprintf(errbuf, errlen,
                 "driver %s speaks ABI major version %u, this host speaks %d: "
                 "rebuild the driver against this iotlat_driver.h",
                 d->path, vt->abi_major, IOTLAT_DRIVER_ABI_MAJOR);
        dlclose(d->dl);
        d->dl = NULL;
        return IL_DRIVER_EABI;
    }
    if (vt->size < sizeof(iotlat_driver)) {
        snprintf(errbuf, errlen,
                 "driver %s has a short function table (%u bytes, ABI %d.0 needs "
                 "%zu)",
                 d->path, vt->size, IOTLAT_DRIVER_ABI_MAJOR, sizeof(iotlat_driver));
        dlclose(d->dl);
        d->dl = NULL;
        return IL_DRIVER_ESHORT;
    }
    const char *missing = !vt->name        ? "name"
                          : !vt->version   ? "version"
                          : !vt->open      ? "open"
                          : !vt->subscribe ? "subscribe"
                          : !vt->publish   ? "publish"
                          : !vt->poll      ? "poll"
                          : !vt->flush     ? "flush"
                          : !vt->close     ? "close"
                                           : NULL;
    if (missing) {
        snprintf(errbuf, errlen, "driver %s is missing required function '%s'",
                 d->path, missing);
        dlclose(d->dl);
        d->dl = NULL;
        return IL_DRIVER_EMISSING;
    }
    d->vt = vt;
    snprintf(d->label, sizeof d->label, "driver %s", vt->name);
    return 0;
}

int il_driver_open(il_driver *d, int roles, char *errbuf, size_t errlen)
{
    return d->vt->open(&d->host, roles, &d->inst, errbuf, errlen);
}

void il_driver_close(il_driver *d)
{
    if (d->inst && d->vt)
        d->vt->close(d->inst);
    d->inst = NULL;
    if (d->dl)
        dlclose(d->dl);
    d->dl = NULL;
    d->vt = NULL; /* it pointed into the unloaded object */
}

int64_t il_driver_outage_us(const il_driver *d, int64_t now_us)
{
    return d->outage_total_us + (d->disconnected ? now_us - d->outage_start_us : 0);
}

int il_driver_setup(il_driver *d, const char *name, const char *plugin_dir, int roles)
{
    char err[2048] = ""; /* room for a driver's list of accepted options */
    int rc = il_driver_load(d, name, plugin_dir, err, sizeof err);
    if (rc) {
        il_log(IL_LOG_ERROR, "%s", err);
        return 2;
    }
    rc = il_driver_open(d, roles, err, sizeof err);
    if (rc) {
        il_log(IL_LOG_ERROR, "%s: %s", d->label, err[0] ? err : "open failed");
        il_driver_close(d);
        return rc == IOTLAT_EINVAL ? 2 : 1;
    }
    return 0;
}

void il_driver_forget_outage_after(il_driver *d, int64_t t_us)
{
    if (!d->disconnected || d->outage_start_us < t_us)
        return;
    d->disconnected = 0;
    d->disconnects--;
    if (d->noutages > 0 && d->outages[d->noutages - 1].end_us == 0)
        d->noutages--;
}
