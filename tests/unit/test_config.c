/*
 * test_config.c - configuration: unit parsers, secrets from files, and every
 * variable with a bad value stopping the real binaries with exit status 2 and
 * a message that names the variable and the value.
 *
 * The binaries are run as child processes with a minimal environment, the
 * way Kubernetes would start them; IL_BIN_DIR and IL_PLUGIN_DIR (set by
 * tests/run.sh) say where the build put them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir_env(const char *name)
{
    const char *v = getenv(name);
    if (!v)
        fail_msg("%s is not set: run this test through make test", name);
    return v;
}

/* Run bin with the extra NULL-terminated env list; returns the exit status
 * and copies stderr+stdout into out. */
static int run_bin(const char *bin, const char *const *extra, const char *arg1,
                   const char *arg2, char *out, size_t outlen)
{
    char path[1024], plugin[1024], pathvar[2048];
    char *envp[32];
    int n = 0, fds[2];
    snprintf(path, sizeof path, "%s/%s", dir_env("IL_BIN_DIR"), bin);
    snprintf(plugin, sizeof plugin, "IOTLAT_PLUGIN_DIR=%s", dir_env("IL_PLUGIN_DIR"));
    snprintf(pathvar, sizeof pathvar, "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin");
    envp[n++] = pathvar;
    envp[n++] = plugin;
    /* A run that wrongly accepted the bad value must end soon and harmlessly. */
    envp[n++] = (char *)"IOTLAT_ZEROMQ_BIND=tcp://127.0.0.1:*";
    envp[n++] = (char *)"IOTLAT_ZEROMQ_CONNECT=tcp://127.0.0.1:9";
    envp[n++] = (char *)"IOTLAT_WAIT_READY=0";
    envp[n++] = (char *)"IOTLAT_PROGRESS=0";
    if (getenv("ASAN_OPTIONS"))
        envp[n++] = (char *)"ASAN_OPTIONS=detect_leaks=0";
    for (const char *const *e = extra; *e; e++) {
        /* A later entry for the same variable replaces the default above. */
        size_t klen = strcspn(*e, "=") + 1;
        int replaced = 0;
        for (int i = 0; i < n; i++)
            if (strncmp(envp[i], *e, klen) == 0)
                envp[i] = (char *)*e, replaced = 1;
        if (!replaced)
            envp[n++] = (char *)*e;
    }
    envp[n] = NULL;
    char *argv[] = {path, (char *)arg1, (char *)arg2, NULL};
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, path, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], out + len, outlen - 1 - len)) > 0 && len + 1 < outlen)
        len += (size_t)r;
    out[len] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct bad_case {
    const char *bin, *var, *value, *expect; /* expect: extra text in the message */
} bad_case;

static const bad_case bad[] = {
    {"iotlat-publisher", "IOTLAT_DRIVER", "Bad Name", "driver name"},
    {"iotlat-publisher", "IOTLAT_DRIVER", "nosuchdriver", "cannot load"},
    {"iotlat-subscriber", "IOTLAT_DRIVER", "/nonexistent/x.so", "cannot load"},
    {"iotlat-publisher", "IOTLAT_PLUGIN_DIR", "", "non-empty"},
    {"iotlat-publisher", "IOTLAT_TOPIC", "", "non-empty"},
    {"iotlat-subscriber", "IOTLAT_TOPIC", "", "non-empty"},
    {"iotlat-transformer", "IOTLAT_IN_TOPIC", "", "non-empty"},
    {"iotlat-transformer", "IOTLAT_OUT_TOPIC", "", "non-empty"},
    {"iotlat-publisher", "IOTLAT_RETURN_TOPIC", "", "non-empty"},
    {"iotlat-publisher", "IOTLAT_DEVICES", "abc", "integer"},
    {"iotlat-publisher", "IOTLAT_DEVICES", "0", "from 1"},
    {"iotlat-publisher", "IOTLAT_DEVICES", "-5", "integer"},
    {"iotlat-publisher", "IOTLAT_DEVICES", "2M", "1000000"},
    {"iotlat-publisher", "IOTLAT_RATE", "fast", "number"},
    {"iotlat-publisher", "IOTLAT_RATE", "0", "number"},
    {"iotlat-publisher", "IOTLAT_RATE", "-1", "number"},
    {"iotlat-publisher", "IOTLAT_RATE", "1e9", "number"},
    {"iotlat-publisher", "IOTLAT_DURATION", "ten", "duration"},
    {"iotlat-publisher", "IOTLAT_DURATION", "-1s", "duration"},
    {"iotlat-publisher", "IOTLAT_DURATION", "10parsecs", "duration"},
    {"iotlat-publisher", "IOTLAT_DURATION", "0", "above 0"},
    {"iotlat-subscriber", "IOTLAT_DURATION", "1fortnight", "duration"},
    {"iotlat-transformer", "IOTLAT_DURATION", "x", "duration"},
    {"iotlat-publisher", "IOTLAT_PAYLOAD", "{\"a\":{{nope}}}", "placeholder"},
    {"iotlat-publisher", "IOTLAT_PAYLOAD", "[1,2,3]", "JSON object"},
    {"iotlat-publisher", "IOTLAT_PAYLOAD", "", "non-empty"},
    {"iotlat-publisher", "IOTLAT_PAYLOAD_FILE", "/nonexistent/payload.json", ""},
    {"iotlat-publisher", "IOTLAT_ENCODING", "xml", "json binary"},
    {"iotlat-transformer", "IOTLAT_ACTION", "{\"open\":{{rand:9:1}}}", "rand"},
    {"iotlat-transformer", "IOTLAT_ACTION_FILE", "/nonexistent/action.json", ""},
    {"iotlat-publisher", "IOTLAT_REPORT_JSON", "/nonexistent/dir/r.json", "writable"},
    {"iotlat-subscriber", "IOTLAT_REPORT_JSON", "/nonexistent/dir/r.json", "writable"},
    {"iotlat-transformer", "IOTLAT_REPORT_JSON", "", "non-empty"},
    {"iotlat-subscriber", "IOTLAT_RUN_ID", "", "non-empty"},
    {"iotlat-publisher", "IOTLAT_PUBLISHER_ID", "-2", "integer"},
    {"iotlat-publisher", "IOTLAT_PUBLISHER_ID", "5000000000", "integer"},
    {"iotlat-publisher", "IOTLAT_SEED", "seedy", "integer"},
    {"iotlat-subscriber", "IOTLAT_PROGRESS", "often", "duration"},
    {"iotlat-publisher", "IOTLAT_WAIT_READY", "soon", "duration"},
    {"iotlat-publisher", "IOTLAT_SPIN", "1s", "duration"},
    {"iotlat-subscriber", "IOTLAT_GRACE", "2 s", "duration"},
    {"iotlat-subscriber", "IOTLAT_STOP_AT_END", "maybe", "true or false"},
    {"iotlat-transformer", "IOTLAT_LOG_LEVEL", "loud", "error warn info debug"},
    {"iotlat-publisher", "IOTLAT_MAX_MESSAGE", "10", "integer"},
    {"iotlat-publisher", "IOTLAT_ZEROMQ_SNDHWM", "lots", "integer"},
    {"iotlat-subscriber", "IOTLAT_ZEROMQ_FRAMING", "smoke-signals", "multipart, prefix"},
    {"iotlat-publisher", "IOTLAT_ZEROMQ_BIND", "nowhere", "bind"},
};

static void test_bad_values_exit_2(void **state)
{
    (void)state;
    char out[8192], kv[1024];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const bad_case *b = &bad[i];
        snprintf(kv, sizeof kv, "%s=%s", b->var, b->value);
        const char *extra[] = {kv, "IOTLAT_DURATION=1s", NULL};
        if (strcmp(b->var, "IOTLAT_DURATION") == 0)
            extra[1] = NULL;
        int rc = run_bin(b->bin, extra, NULL, NULL, out, sizeof out);
        if (rc != 2 || !strstr(out, b->var) || (*b->value && !strstr(out, b->value)) ||
            !strstr(out, b->expect))
            fail_msg("%s with %s: exit %d, output:\n%s", b->bin, kv, rc, out);
        /* One line: the error, nothing else. */
        if (strchr(out, '\n') != out + strlen(out) - 1)
            fail_msg("%s with %s: expected one line, got:\n%s", b->bin, kv, out);
    }
}

static void test_flags_mirror_variables(void **state)
{
    (void)state;
    char out[8192];
    const char *none[] = {NULL};
    assert_int_equal(run_bin("iotlat-publisher", none, "--devices", "many", out, sizeof out), 2);
    assert_non_null(strstr(out, "IOTLAT_DEVICES='many'"));
    assert_int_equal(run_bin("iotlat-publisher", none, "--rate=-3", NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "IOTLAT_RATE='-3'"));
    /* The flag wins over the environment. */
    const char *env[] = {"IOTLAT_ENCODING=binary", NULL};
    assert_int_equal(run_bin("iotlat-publisher", env, "--encoding", "yaml", out, sizeof out), 2);
    assert_non_null(strstr(out, "IOTLAT_ENCODING='yaml'"));
    assert_int_equal(run_bin("iotlat-subscriber", none, "--colour", "red", out, sizeof out), 2);
    assert_non_null(strstr(out, "--colour"));
    assert_int_equal(run_bin("iotlat-subscriber", none, "--topic", NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "IOTLAT_TOPIC"));
    /* Options of another binary are not flags here. */
    assert_int_equal(run_bin("iotlat-subscriber", none, "--devices", "5", out, sizeof out), 2);
}

static void test_unknown_variable(void **state)
{
    (void)state;
    char out[8192];
    const char *env[] = {"IOTLAT_DEVICE=10", NULL};
    assert_int_equal(run_bin("iotlat-publisher", env, NULL, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "IOTLAT_DEVICE"));
    const char *env2[] = {"IOTLAT_ZEROMQ_BOGUS=1", NULL};
    assert_int_equal(run_bin("iotlat-subscriber", env2, NULL, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "IOTLAT_ZEROMQ_BOGUS"));
}

static void test_help_and_version(void **state)
{
    (void)state;
    char out[65536];
    const char *none[] = {NULL};
    const char *bins[] = {"iotlat-publisher", "iotlat-transformer", "iotlat-subscriber"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run_bin(bins[i], none, "--help", NULL, out, sizeof out), 0);
        assert_non_null(strstr(out, "IOTLAT_DRIVER"));
        assert_non_null(strstr(out, "--driver"));
        assert_int_equal(run_bin(bins[i], none, "--version", NULL, out, sizeof out), 0);
        assert_non_null(strstr(out, bins[i]));
        assert_non_null(strstr(out, il_version()));
    }
    assert_int_equal(run_bin("iotlat-publisher", none, "--help", NULL, out, sizeof out), 0);
    assert_non_null(strstr(out, "IOTLAT_DEVICES"));
    assert_int_equal(run_bin("iotlat-subscriber", none, "--help", NULL, out, sizeof out), 0);
    assert_null(strstr(out, "IOTLAT_DEVICES"));
}

static void test_parsers(void **state)
{
    (void)state;
    int64_t i;
    double d;
    int b;
    assert_int_equal(il_parse_int("10k", &i), 0);
    assert_int_equal(i, 10000);
    assert_int_equal(il_parse_int("2M", &i), 0);
    assert_int_equal(i, 2000000);
    assert_int_equal(il_parse_int("-7", &i), 0);
    assert_int_equal(i, -7);
    assert_int_equal(il_parse_int("9223372036854775807", &i), 0);
    assert_int_equal(il_parse_int("99999999999G", &i), -1); /* overflow */
    assert_int_equal(il_parse_int("12x", &i), -1);
    assert_int_equal(il_parse_int("", &i), -1);
    assert_int_equal(il_parse_int(" 1", &i), -1);
    assert_int_equal(il_parse_duration_us("10s", &i), 0);
    assert_int_equal(i, 10000000);
    assert_int_equal(il_parse_duration_us("1.5", &i), 0);
    assert_int_equal(i, 1500000);
    assert_int_equal(il_parse_duration_us("250ms", &i), 0);
    assert_int_equal(i, 250000);
    assert_int_equal(il_parse_duration_us("40us", &i), 0);
    assert_int_equal(i, 40);
    assert_int_equal(il_parse_duration_us("2m", &i), 0);
    assert_int_equal(i, 120000000);
    assert_int_equal(il_parse_duration_us("1h", &i), 0);
    assert_int_equal(i, 3600000000LL);
    assert_int_equal(il_parse_duration_us("-1s", &i), -1);
    assert_int_equal(il_parse_duration_us("1d", &i), -1);
    assert_int_equal(il_parse_duration_us("nan", &i), -1);
    assert_int_equal(il_parse_double("0.25", &d), 0);
    assert_true(d == 0.25);
    assert_int_equal(il_parse_double("inf", &d), -1);
    assert_int_equal(il_parse_double("1,5", &d), -1);
    assert_int_equal(il_parse_bool("Yes", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(il_parse_bool("off", &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(il_parse_bool("2", &b), -1);
}

static void test_secret_from_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/il-config-XXXXXX", path[256], out[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/secret", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("s3cr3t\n", f);
    fclose(f);
    unsetenv("IL_TEST_SECRET");
    assert_int_equal(il_env_or_file("IL_TEST_SECRET", out, sizeof out, err, sizeof err), 0);
    setenv("IL_TEST_SECRET_FILE", path, 1);
    assert_int_equal(il_env_or_file("IL_TEST_SECRET", out, sizeof out, err, sizeof err), 1);
    assert_string_equal(out, "s3cr3t");
    /* The variable itself wins over the file. */
    setenv("IL_TEST_SECRET", "direct", 1);
    assert_int_equal(il_env_or_file("IL_TEST_SECRET", out, sizeof out, err, sizeof err), 1);
    assert_string_equal(out, "direct");
    unsetenv("IL_TEST_SECRET");
    /* Too long for the buffer: an error naming the variable, not a cut secret. */
    assert_int_equal(il_env_or_file("IL_TEST_SECRET", out, 4, err, sizeof err), -1);
    assert_non_null(strstr(err, "IL_TEST_SECRET_FILE"));
    setenv("IL_TEST_SECRET_FILE", "/nonexistent/secret", 1);
    assert_int_equal(il_env_or_file("IL_TEST_SECRET", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "IL_TEST_SECRET_FILE"));
    assert_non_null(strstr(err, "/nonexistent/secret"));
    unsetenv("IL_TEST_SECRET_FILE");
    unlink(path);
    rmdir(dir);
}

static void test_config_json_has_no_surprises(void **state)
{
    (void)state;
    il_config c;
    char *argv[] = {(char *)"x", (char *)"--devices", (char *)"7", (char *)"--topic",
                    (char *)"a\"b", NULL};
    char out[4096];
    il_config_load(&c, IL_ROLE_PUBLISHER, "test", 5, argv);
    assert_int_equal(c.devices, 7);
    assert_int_equal(c.duration_us, 10000000); /* publisher default */
    size_t n = il_config_to_json(&c, out, sizeof out);
    assert_true(n < sizeof out);
    assert_non_null(strstr(out, "\"devices\":7"));
    assert_non_null(strstr(out, "\"topic\":\"a\\\"b\""));
    assert_non_null(strstr(out, "\"duration_us\":10000000"));
    /* Too small a buffer: the needed length, and no overflow. */
    char small[8];
    assert_int_equal(il_config_to_json(&c, small, sizeof small), n);
    il_config_free(&c);
    il_config_load(&c, IL_ROLE_SUBSCRIBER, "test", 1, argv);
    assert_int_equal(c.duration_us, 0); /* subscriber default: until the end */
    il_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_secret_from_file),
        cmocka_unit_test(test_config_json_has_no_surprises),
        cmocka_unit_test(test_bad_values_exit_2),
        cmocka_unit_test(test_flags_mirror_variables),
        cmocka_unit_test(test_unknown_variable),
        cmocka_unit_test(test_help_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
