/* iotlat-transformer: stamp a hop and forward, standing in for the system under test. */
#include "config.h"
#include "transformer.h"

int main(int argc, char **argv)
{
    il_config c;
    il_config_load(&c, IL_ROLE_TRANSFORMER, "iotlat-transformer", argc, argv);
    int rc = il_transformer_run(&c);
    il_config_free(&c);
    return rc;
}
