// Hands a fuzz target's main over to libFuzzer.
//
// SwiftPM links an executable's `main` to `<module>_main`, so libFuzzer's own main is never
// used; each target defines `<module>_main` (@_cdecl) and calls this with its callback.
#ifndef CLOUDLOGIN_FUZZ_DRIVER_H
#define CLOUDLOGIN_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

typedef int (*FuzzDriver_callback)(const uint8_t *_Nonnull data, size_t size);

int FuzzDriver_run(int argc, char *_Nullable *_Nonnull argv, FuzzDriver_callback _Nonnull callback);

#endif
