/*
 * test_driver.c - unit tests for the driver loader and the host services.
 *
 * Each deliberately broken driver in tests/drivers/ (built into
 * $IL_TEST_DRIVERS_DIR) must be refused by il_driver_load with its own
 * IL_DRIVER_E* code and a message that names the cause, because that message
 * is all a user sees when a stale or foreign .so is pointed at.  The good
 * loopback driver then proves the accepted path: a message round-trips
 * through open/subscribe/publish/poll, the option services read variables
 * and _FILE secrets, unknown options are rejected, and il_driver_setup turns
 * failures into the documented exit statuses.  The real ZeroMQ plugin (from
 * $IL_TEST_PLUGIN_DIR) is loaded by name to check that the shipped driver
 * validates its options the same way.  Finally, connection events are fed to
 * the host directly to check the outage bookkeeping.
 *
 * Both directories come from the test runner; a missing one fails the test
 * loudly instead of skipping it, so a broken runner cannot pass silently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "log.h"

/* Every environment variable a test here may set; the teardown unsets all of
 * them so that a failing test cannot leak options into the next one. */
static const char *const test_vars[] = {
    "IOTLAT_GOOD_GREETING",  "IOTLAT_GOOD_GREETING_FILE", "IOTLAT_GOOD_COLOUR",
    "IOTLAT_GOOD_GREETINGS", "IOTLAT_ZEROMQ_SNDHWM",      "IOTLAT_ZEROMQ_BOGUS",
    NULL};

static char tmp_path[512]; /* temp file a test created, removed in teardown */

static void unset_test_vars(void)
{
    for (const char *const *v = test_vars; *v; v++)
        unsetenv(*v);
}

static void remove_tmp(void)
{
    if (tmp_path[0])
        unlink(tmp_path);
    tmp_path[0] = '\0';
}

static int setup(void **state)
{
    (void)state;
    unset_test_vars();
    tmp_path[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unset_test_vars();
    remove_tmp();
    return 0;
}

static const char *required_dir(const char *var)
{
    const char *v = getenv(var);
    if (!v || !*v)
        fail_msg("%s is not set: run this test through tests/run.sh, or set it to "
                 "the directory holding the %s",
                 var,
                 strcmp(var, "IL_TEST_DRIVERS_DIR") == 0 ? "built test drivers (*.so)"
                                                         : "real plugins (zeromq.so)");
    return v;
}

static void test_driver_path(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s.so", required_dir("IL_TEST_DRIVERS_DIR"), name);
    assert_true(n > 0 && (size_t)n < len);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected \"%s\" in the message \"%s\"", needle, haystack);
}

/* Creates a temp file holding `content`; its path is left in tmp_path. */
static void make_tmp_file(const char *content)
{
    const char *dir = getenv("TMPDIR");
    snprintf(tmp_path, sizeof tmp_path, "%s/iotlat-test-driver-XXXXXX",
             dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* Loads test driver `name`, expecting failure `code`; returns the message. */
static void expect_load_failure(const char *name, int code, char *err, size_t errlen)
{
    char path[512];
    il_driver d;
    test_driver_path(path, sizeof path, name);
    err[0] = '\0';
    int rc = il_driver_load(&d, path, NULL, err, errlen);
    if (rc != code)
        fail_msg("loading %s returned %d, expected %d (message: \"%s\")", path, rc,
                 code, err);
    /* Every refusal names the file, so a user knows which .so to rebuild. */
    assert_contains(err, path);
}

static void load_test_driver(il_driver *d, const char *name)
{
    char path[512], err[512] = "";
    test_driver_path(path, sizeof path, name);
    int rc = il_driver_load(d, path, NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("loading %s failed with %d: %s", path, rc, err);
    assert_non_null(d->vt);
    assert_non_null(d->dl);
}

/* ---- refusals ------------------------------------------------------------ */

static void test_wrong_major(void **state)
{
    char err[512];
    (void)state;
    expect_load_failure("wrong_major", IL_DRIVER_EABI, err, sizeof err);
    assert_contains(err, "major");
    assert_contains(err, "rebuild");
}

static void test_no_entry(void **state)
{
    char err[512];
    (void)state;
    expect_load_failure("no_entry", IL_DRIVER_ENOENTRY, err, sizeof err);
    assert_contains(err, "entry symbol");
    assert_contains(err, IOTLAT_DRIVER_ENTRY_NAME);
}

static void test_short_table(void **state)
{
    char err[512], size[32];
    (void)state;
    expect_load_failure("short_table", IL_DRIVER_ESHORT, err, sizeof err);
    assert_contains(err, "short");
    /* The message gives the size the driver claimed. */
    snprintf(size, sizeof size, "%zu bytes", offsetof(iotlat_driver, poll));
    assert_contains(err, size);
}

static void test_null_function(void **state)
{
    char err[512];
    (void)state;
    expect_load_failure("null_function", IL_DRIVER_EMISSING, err, sizeof err);
    assert_contains(err, "publish");
}

static void test_refuses(void **state)
{
    char err[512];
    (void)state;
    expect_load_failure("refuses", IL_DRIVER_EREFUSED, err, sizeof err);
    assert_contains(err, "refused");
    assert_contains(err, "needs ABI 9"); /* the driver's own reason */
}

static void test_missing_file(void **state)
{
    char path[512], err[512] = "";
    il_driver d;
    (void)state;
    test_driver_path(path, sizeof path, "does_not_exist");
    assert_int_equal(il_driver_load(&d, path, NULL, err, sizeof err), IL_DRIVER_ELOAD);
    assert_contains(err, path);
}

static void test_missing_by_name(void **state)
{
    char path[512], err[512] = "";
    il_driver d;
    const char *dir = required_dir("IL_TEST_DRIVERS_DIR");
    (void)state;
    /* A bare name is looked up as <plugin_dir>/<name>.so. */
    snprintf(path, sizeof path, "%s/nosuchdriver.so", dir);
    assert_int_equal(il_driver_load(&d, "nosuchdriver", dir, err, sizeof err),
                     IL_DRIVER_ELOAD);
    assert_contains(err, path);
}

static void test_invalid_name(void **state)
{
    char err[512] = "";
    il_driver d;
    (void)state;
    assert_int_equal(il_driver_load(&d, "Bad Name", required_dir("IL_TEST_PLUGIN_DIR"),
                                    err, sizeof err),
                     IL_DRIVER_ELOAD);
    assert_contains(err, "IOTLAT_DRIVER");
    assert_contains(err, "Bad Name");
}

/* driver.h: "On failure returns an IL_DRIVER_E* code ... and d holds
 * nothing" - in particular no handle that il_driver_close would dlclose a
 * second time. */
static void test_failed_load_leaves_nothing(void **state)
{
    static const char *const broken[] = {"wrong_major", "no_entry",      "short_table",
                                         "null_function", "refuses", NULL};
    (void)state;
    for (const char *const *b = broken; *b; b++) {
        char path[512], err[512] = "";
        il_driver d;
        test_driver_path(path, sizeof path, *b);
        assert_true(il_driver_load(&d, path, NULL, err, sizeof err) < 0);
        if (d.dl != NULL)
            fail_msg("after the failed load of %s, d.dl still holds the handle that "
                     "was already dlclose()d; il_driver_close(&d) would close it again",
                     *b);
        assert_null(d.vt);
        assert_null(d.inst);
        il_driver_close(&d); /* harmless on a failed load */
    }
}

/* ---- the good driver ----------------------------------------------------- */

typedef struct rx {
    int calls;
    char topic[64];
    unsigned char data[256];
    size_t len;
    int64_t t_recv_us;
} rx;

static void on_msg(void *ud, const char *topic, const void *data, size_t len,
                   int64_t t_recv_us)
{
    rx *r = ud;
    r->calls++;
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    assert_true(len <= sizeof r->data);
    memcpy(r->data, data, len);
    r->len = len;
    r->t_recv_us = t_recv_us;
}

static void test_good_round_trip(void **state)
{
    static const unsigned char payload[] = {'h', 'i', 0, 0xff, 0x7f, '\n', 'x'};
    char err[512] = "";
    il_driver d;
    rx r = {0};
    (void)state;
    load_test_driver(&d, "good");
    assert_string_equal(d.vt->name, "good");
    assert_string_equal(d.label, "driver good");
    assert_int_equal(d.vt->abi_major, IOTLAT_DRIVER_ABI_MAJOR);

    assert_int_equal(il_driver_open(&d, IOTLAT_ROLE_PUBLISH | IOTLAT_ROLE_SUBSCRIBE,
                                    err, sizeof err),
                     0);
    assert_non_null(d.inst);
    assert_int_equal(d.vt->subscribe(d.inst, "t/1", on_msg, &r, err, sizeof err), 0);
    int64_t before = d.host.now_us();
    assert_int_equal(d.vt->publish(d.inst, "t/1", "key", payload, sizeof payload, err,
                                   sizeof err),
                     0);
    /* Nobody subscribed to t/2: never delivered. */
    assert_int_equal(d.vt->publish(d.inst, "t/2", NULL, "zz", 2, err, sizeof err), 0);
    assert_int_equal(r.calls, 0); /* callbacks only from inside poll() */
    assert_int_equal(d.vt->flush(d.inst, 100, err, sizeof err), 0);

    assert_int_equal(d.vt->poll(d.inst, 0, err, sizeof err), 1);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.topic, "t/1");
    assert_int_equal(r.len, sizeof payload);
    assert_memory_equal(r.data, payload, sizeof payload);
    assert_true(r.t_recv_us >= before);
    assert_true(r.t_recv_us <= d.host.now_us());

    assert_int_equal(d.vt->poll(d.inst, 0, err, sizeof err), 0);
    assert_int_equal(r.calls, 1);

    il_driver_close(&d);
    assert_null(d.inst);
    assert_null(d.dl);
    il_driver_close(&d); /* a second close is harmless */
}

/* ---- option() ------------------------------------------------------------ */

static void test_option_env(void **state)
{
    char out[64], err[256] = "";
    il_driver d;
    (void)state;
    load_test_driver(&d, "good");

    assert_int_equal(d.host.option(d.host.host_ud, "IOTLAT_GOOD_GREETING", out,
                                   sizeof out, err, sizeof err),
                     0); /* neither the variable nor _FILE is set */

    assert_int_equal(setenv("IOTLAT_GOOD_GREETING", "hi there", 1), 0);
    assert_int_equal(d.host.option(d.host.host_ud, "IOTLAT_GOOD_GREETING", out,
                                   sizeof out, err, sizeof err),
                     1);
    assert_string_equal(out, "hi there");

    /* A value that does not fit is an error naming the variable. */
    assert_int_equal(d.host.option(d.host.host_ud, "IOTLAT_GOOD_GREETING", out, 4, err,
                                   sizeof err),
                     IOTLAT_EINVAL);
    assert_contains(err, "IOTLAT_GOOD_GREETING");

    unsetenv("IOTLAT_GOOD_GREETING");
    il_driver_close(&d);
}

static void test_option_file(void **state)
{
    char out[64], err[256] = "";
    il_driver d;
    (void)state;
    load_test_driver(&d, "good");
    make_tmp_file("hello\n");
    assert_int_equal(setenv("IOTLAT_GOOD_GREETING_FILE", tmp_path, 1), 0);
    assert_int_equal(d.host.option(d.host.host_ud, "IOTLAT_GOOD_GREETING", out,
                                   sizeof out, err, sizeof err),
                     1);
    assert_string_equal(out, "hello"); /* trailing newline removed */

    unsetenv("IOTLAT_GOOD_GREETING_FILE");
    remove_tmp();
    il_driver_close(&d);
}

static void test_option_file_missing(void **state)
{
    char out[64], err[256] = "";
    il_driver d;
    (void)state;
    load_test_driver(&d, "good");
    /* A fresh temp file's name, removed again: a path that does not exist. */
    char gone[sizeof tmp_path];
    make_tmp_file("");
    snprintf(gone, sizeof gone, "%s", tmp_path);
    remove_tmp();
    assert_int_not_equal(access(gone, F_OK), 0);

    assert_int_equal(setenv("IOTLAT_GOOD_GREETING_FILE", gone, 1), 0);
    assert_int_equal(d.host.option(d.host.host_ud, "IOTLAT_GOOD_GREETING", out,
                                   sizeof out, err, sizeof err),
                     IOTLAT_EINVAL);
    assert_contains(err, "IOTLAT_GOOD_GREETING_FILE");
    assert_contains(err, gone);

    unsetenv("IOTLAT_GOOD_GREETING_FILE");
    il_driver_close(&d);
}

/* iotlat_driver.h: option() fails only when "the value does not fit"; the
 * value of a file is its content with the trailing newline removed, so
 * "hello\n" fits a 6-byte buffer exactly like IOTLAT_GOOD_GREETING=hello. */
static void test_option_file_exact_fit(void **state)
{
    char out[6], err[256] = "";
    il_driver d;
    (void)state;
    load_test_driver(&d, "good");

    assert_int_equal(setenv("IOTLAT_GOOD_GREETING", "hello", 1), 0);
    assert_int_equal(d.host.option(d.host.host_ud, "IOTLAT_GOOD_GREETING", out,
                                   sizeof out, err, sizeof err),
                     1);
    assert_string_equal(out, "hello");
    unsetenv("IOTLAT_GOOD_GREETING");

    make_tmp_file("hello\n");
    assert_int_equal(setenv("IOTLAT_GOOD_GREETING_FILE", tmp_path, 1), 0);
    int rc = d.host.option(d.host.host_ud, "IOTLAT_GOOD_GREETING", out, sizeof out,
                           err, sizeof err);
    if (rc != 1)
        fail_msg("a file holding \"hello\\n\" does not fit a 6-byte buffer: "
                 "option() returned %d (%s)",
                 rc, err);
    assert_string_equal(out, "hello");

    unsetenv("IOTLAT_GOOD_GREETING_FILE");
    remove_tmp();
    il_driver_close(&d);
}

/* The good driver reads IOTLAT_GOOD_GREETING in open() and hands it back as
 * a message on topic "greeting": the option reaches the driver itself. */
static void test_option_through_driver(void **state)
{
    char err[256] = "";
    il_driver d;
    rx r = {0};
    (void)state;
    load_test_driver(&d, "good");

    make_tmp_file("hello\n");
    assert_int_equal(setenv("IOTLAT_GOOD_GREETING_FILE", tmp_path, 1), 0);
    assert_int_equal(il_driver_open(&d, IOTLAT_ROLE_SUBSCRIBE, err, sizeof err), 0);
    assert_int_equal(d.vt->subscribe(d.inst, "greeting", on_msg, &r, err, sizeof err),
                     0);
    assert_int_equal(d.vt->poll(d.inst, 0, err, sizeof err), 1);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.data, "hello", 5);
    il_driver_close(&d);
    unsetenv("IOTLAT_GOOD_GREETING_FILE");
    remove_tmp();

    /* An unreadable secret file makes open() fail, naming the variable. */
    load_test_driver(&d, "good");
    assert_int_equal(setenv("IOTLAT_GOOD_GREETING_FILE", "/nonexistent/iotlat/secret", 1),
                     0);
    err[0] = '\0';
    assert_int_equal(il_driver_open(&d, IOTLAT_ROLE_SUBSCRIBE, err, sizeof err),
                     IOTLAT_EINVAL);
    assert_null(d.inst);
    assert_contains(err, "IOTLAT_GOOD_GREETING_FILE");
    unsetenv("IOTLAT_GOOD_GREETING_FILE");
    il_driver_close(&d);
}

/* ---- check_options() ----------------------------------------------------- */

static void test_check_options_direct(void **state)
{
    static const char *const known[] = {"GREETING", NULL};
    char err[256] = "";
    il_driver d;
    (void)state;
    load_test_driver(&d, "good");

    assert_int_equal(d.host.check_options(d.host.host_ud, "IOTLAT_GOOD_", known, err,
                                          sizeof err),
                     0);
    /* "X" also allows "X_FILE". */
    assert_int_equal(setenv("IOTLAT_GOOD_GREETING", "a", 1), 0);
    assert_int_equal(setenv("IOTLAT_GOOD_GREETING_FILE", "/dev/null", 1), 0);
    assert_int_equal(d.host.check_options(d.host.host_ud, "IOTLAT_GOOD_", known, err,
                                          sizeof err),
                     0);

    /* A known name plus a suffix is not known. */
    assert_int_equal(setenv("IOTLAT_GOOD_GREETINGS", "a", 1), 0);
    assert_int_equal(d.host.check_options(d.host.host_ud, "IOTLAT_GOOD_", known, err,
                                          sizeof err),
                     IOTLAT_EINVAL);
    assert_contains(err, "IOTLAT_GOOD_GREETINGS");
    unsetenv("IOTLAT_GOOD_GREETINGS");

    assert_int_equal(setenv("IOTLAT_GOOD_COLOUR", "red", 1), 0);
    assert_int_equal(d.host.check_options(d.host.host_ud, "IOTLAT_GOOD_", known, err,
                                          sizeof err),
                     IOTLAT_EINVAL);
    assert_contains(err, "IOTLAT_GOOD_COLOUR");
    assert_contains(err, "IOTLAT_GOOD_GREETING"); /* lists the accepted ones */
    assert_null(strstr(err, "red"));               /* the name, not the value */

    /* A tiny errbuf is truncated, not overrun (ASan watches the heap copy). */
    char *small = malloc(20);
    assert_non_null(small);
    assert_int_equal(d.host.check_options(d.host.host_ud, "IOTLAT_GOOD_", known, small,
                                          20),
                     IOTLAT_EINVAL);
    assert_true(strlen(small) < 20);
    free(small);

    unsetenv("IOTLAT_GOOD_COLOUR");
    unsetenv("IOTLAT_GOOD_GREETING");
    unsetenv("IOTLAT_GOOD_GREETING_FILE");
    il_driver_close(&d);
}

static void test_unknown_option_fails_open(void **state)
{
    char err[512] = "";
    il_driver d;
    (void)state;
    load_test_driver(&d, "good");
    assert_int_equal(setenv("IOTLAT_GOOD_COLOUR", "red", 1), 0);
    assert_int_equal(il_driver_open(&d, IOTLAT_ROLE_PUBLISH, err, sizeof err),
                     IOTLAT_EINVAL);
    assert_null(d.inst);
    assert_contains(err, "IOTLAT_GOOD_COLOUR");
    unsetenv("IOTLAT_GOOD_COLOUR");
    il_driver_close(&d);
}

/* ---- il_driver_setup exit statuses --------------------------------------- */

static void test_setup_exit_status(void **state)
{
    char path[512];
    il_driver d;
    (void)state;

    /* A bad option is a configuration problem: 2. */
    test_driver_path(path, sizeof path, "good");
    assert_int_equal(setenv("IOTLAT_GOOD_COLOUR", "red", 1), 0);
    assert_int_equal(il_driver_setup(&d, path, NULL, IOTLAT_ROLE_PUBLISH), 2);
    assert_null(d.inst);
    assert_null(d.dl); /* setup cleaned up after itself */
    unsetenv("IOTLAT_GOOD_COLOUR");

    /* A broker that refuses us is a runtime failure: 1. */
    test_driver_path(path, sizeof path, "open_fails");
    assert_int_equal(il_driver_setup(&d, path, NULL, IOTLAT_ROLE_PUBLISH), 1);
    assert_null(d.inst);
    assert_null(d.dl);

    /* A driver that cannot be loaded is a configuration problem: 2. */
    test_driver_path(path, sizeof path, "does_not_exist");
    assert_int_equal(il_driver_setup(&d, path, NULL, IOTLAT_ROLE_PUBLISH), 2);
    test_driver_path(path, sizeof path, "wrong_major");
    assert_int_equal(il_driver_setup(&d, path, NULL, IOTLAT_ROLE_PUBLISH), 2);

    /* And the good one works. */
    test_driver_path(path, sizeof path, "good");
    assert_int_equal(il_driver_setup(&d, path, NULL,
                                     IOTLAT_ROLE_PUBLISH | IOTLAT_ROLE_SUBSCRIBE),
                     0);
    assert_non_null(d.inst);
    il_driver_close(&d);
}

static void test_open_fails(void **state)
{
    char err[512] = "";
    il_driver d;
    (void)state;
    load_test_driver(&d, "open_fails");
    assert_string_equal(d.vt->name, "open_fails");
    assert_int_equal(il_driver_open(&d, IOTLAT_ROLE_SUBSCRIBE, err, sizeof err),
                     IOTLAT_ECONNECT);
    assert_string_equal(err, "broker at 127.0.0.1:1 refused the connection");
    assert_null(d.inst);
    il_driver_close(&d);
}

/* ---- the real ZeroMQ plugin ---------------------------------------------- */

static void test_zeromq_plugin(void **state)
{
    const char *dir = required_dir("IL_TEST_PLUGIN_DIR");
    char path[512], err[512] = "";
    il_driver d;
    (void)state;

    int rc = il_driver_load(&d, "zeromq", dir, err, sizeof err);
    if (rc != 0)
        fail_msg("loading zeromq from %s failed with %d: %s", dir, rc, err);
    snprintf(path, sizeof path, "%s/zeromq.so", dir);
    assert_string_equal(d.path, path);
    assert_string_equal(d.vt->name, "zeromq");
    assert_string_equal(d.label, "driver zeromq");
    assert_contains(d.vt->version, "libzmq");

    assert_int_equal(setenv("IOTLAT_ZEROMQ_SNDHWM", "abc", 1), 0);
    assert_int_equal(il_driver_open(&d, IOTLAT_ROLE_SUBSCRIBE, err, sizeof err),
                     IOTLAT_EINVAL);
    assert_null(d.inst);
    assert_contains(err, "IOTLAT_ZEROMQ_SNDHWM");
    assert_contains(err, "abc");
    unsetenv("IOTLAT_ZEROMQ_SNDHWM");

    assert_int_equal(setenv("IOTLAT_ZEROMQ_BOGUS", "1", 1), 0);
    err[0] = '\0';
    assert_int_equal(il_driver_open(&d, IOTLAT_ROLE_SUBSCRIBE, err, sizeof err),
                     IOTLAT_EINVAL);
    assert_null(d.inst);
    assert_contains(err, "IOTLAT_ZEROMQ_BOGUS");
    unsetenv("IOTLAT_ZEROMQ_BOGUS");

    il_driver_close(&d);
}

/* ---- connection events --------------------------------------------------- */

static void test_host_event(void **state)
{
    il_driver d;
    (void)state;
    load_test_driver(&d, "good");
    assert_int_equal(d.disconnects, 0);
    assert_int_equal(d.noutages, 0);

    d.host.event(d.host.host_ud, IOTLAT_EVENT_DISCONNECTED, "x");
    assert_int_equal(d.disconnected, 1);
    assert_int_equal(d.noutages, 1);
    assert_int_equal(d.outages[0].end_us, 0); /* still open */
    /* A repeated DISCONNECTED during the same outage is not a new one. */
    d.host.event(d.host.host_ud, IOTLAT_EVENT_DISCONNECTED, "again");
    usleep(2000);
    assert_true(il_driver_outage_us(&d, d.host.now_us()) > 0);
    d.host.event(d.host.host_ud, IOTLAT_EVENT_RECONNECTED, NULL);

    assert_int_equal(d.disconnects, 1);
    assert_int_equal(d.noutages, 1);
    assert_int_equal(d.disconnected, 0);
    assert_string_equal(d.outages[0].why, "x");
    assert_true(d.outages[0].start_us > 0);
    assert_true(d.outages[0].end_us >= d.outages[0].start_us);
    assert_true(d.outage_total_us == d.outages[0].end_us - d.outages[0].start_us);
    assert_true(il_driver_outage_us(&d, d.host.now_us()) == d.outage_total_us);

    /* A RECONNECTED with no outage open changes nothing. */
    d.host.event(d.host.host_ud, IOTLAT_EVENT_RECONNECTED, NULL);
    assert_int_equal(d.disconnects, 1);
    assert_int_equal(d.noutages, 1);

    /* Beyond IL_DRIVER_MAX_OUTAGES windows, outages are counted, not kept.
     * (Quietly: each event logs a warning.) */
    int level = il_log_get_level();
    il_log_set_level(IL_LOG_ERROR);
    for (int i = 0; i < IL_DRIVER_MAX_OUTAGES + 5; i++) {
        d.host.event(d.host.host_ud, IOTLAT_EVENT_DISCONNECTED, "flap");
        d.host.event(d.host.host_ud, IOTLAT_EVENT_RECONNECTED, NULL);
    }
    il_log_set_level(level);
    assert_int_equal(d.disconnects, 1 + IL_DRIVER_MAX_OUTAGES + 5);
    assert_int_equal(d.noutages, IL_DRIVER_MAX_OUTAGES);
    for (size_t i = 0; i < d.noutages; i++)
        assert_true(d.outages[i].end_us >= d.outages[i].start_us &&
                    d.outages[i].end_us != 0);
    il_driver_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrong_major, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_function, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_load_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_good_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_file_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_file_exact_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_through_driver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_options_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_option_fails_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_setup_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zeromq_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_event, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
