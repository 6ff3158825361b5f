#include "FuzzDriver.h"

/* libFuzzer's entry for programs that bring their own main (compiler-rt FuzzerInterface.h). */
extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int FuzzDriver_run(int argc, char **argv, FuzzDriver_callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
