#ifndef C_LIBFUZZER_DRIVER_H
#define C_LIBFUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer) on `callback` with the process's
/// arguments, and exits with its status. The fuzz targets start it from their own `main`, because on Linux
/// SwiftPM points every executable's `main` at the module's top-level code, so libFuzzer's `main` is not used.
_Noreturn void runLibFuzzerAndExit(int argc, char **argv, int (*callback)(const uint8_t *data, size_t size));

#endif
