/*
 * no_entry.c - breaks discovery: the shared object loads fine but exports no
 * iotlat_driver_entry symbol, only an unrelated function (as if someone
 * pointed IOTLAT_DRIVER at an arbitrary library, or misspelt the entry
 * point).  The loader must report IL_DRIVER_ENOENTRY naming the missing entry
 * symbol.
 */
int not_an_iotlat_driver(int x);

int not_an_iotlat_driver(int x)
{
    return x + 1;
}
