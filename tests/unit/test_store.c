/*
 * test_store.c - parsing IOTLAT_REDIS_URL: every accepted form, and errors
 * that name the problem without ever echoing the password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store.h"

#include <string.h>

static void test_accepted_forms(void **state)
{
    (void)state;
    il_redis_url u;
    char err[256];
    assert_int_equal(il_redis_url_parse("redis://localhost", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_int_equal(il_redis_url_parse("redis://10.0.0.7:7000/3", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "10.0.0.7");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_int_equal(il_redis_url_parse("redis://:s3cr@t@redis:6380", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cr@t"); /* the last '@' ends the credentials */
    assert_string_equal(u.host, "redis");
    assert_int_equal(il_redis_url_parse("redis://bob:pw@redis/", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, "pw");
}

static void test_rejected_forms(void **state)
{
    (void)state;
    il_redis_url u;
    char err[256];
    const char *bad[] = {"localhost:6379", "http://redis", "redis://", "redis://:pw@",
                         "redis://h:0", "redis://h:70000", "redis://h:12x", "redis://h/x",
                         "redis://h/1/2", "redis://secretpw@h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (il_redis_url_parse(bad[i], &u, err, sizeof err) != IL_STORE_EINVAL)
            fail_msg("accepted %s", bad[i]);
        assert_true(strlen(err) > 10);
        assert_null(strstr(err, "pw"));
        assert_null(strstr(err, "secretpw"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_forms),
        cmocka_unit_test(test_rejected_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
