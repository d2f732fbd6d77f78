/* iotlat-subscriber: receive, account and measure every message. */
#include "config.h"
#include "subscriber.h"

int main(int argc, char **argv)
{
    il_config c;
    il_config_load(&c, IL_ROLE_SUBSCRIBER, "iotlat-subscriber", argc, argv);
    int rc = il_subscriber_run(&c);
    il_config_free(&c);
    return rc;
}
