// The declaration in include/CFuzzDriver.h is all; libFuzzer (linked by -sanitize=fuzzer)
// defines the function. A C target needs one source file.
#include "CFuzzDriver.h"
