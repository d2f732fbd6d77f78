/* iotlat-plotter: a run's results from Redis to Prometheus, ELK and PNG. */
#include "config.h"
#include "plotter.h"

int main(int argc, char **argv)
{
    il_config c;
    il_config_load(&c, IL_ROLE_PLOTTER, "iotlat-plotter", argc, argv);
    int rc = il_plotter_run(&c);
    il_config_free(&c);
    return rc;
}
