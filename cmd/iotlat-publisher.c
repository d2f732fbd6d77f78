/* iotlat-publisher: emulate N devices sending R msg/s each. */
#include "config.h"
#include "publisher.h"

int main(int argc, char **argv)
{
    il_config c;
    il_config_load(&c, IL_ROLE_PUBLISHER, "iotlat-publisher", argc, argv);
    int rc = il_publisher_run(&c);
    il_config_free(&c);
    return rc;
}
