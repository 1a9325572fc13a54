#include "harness.h"
SP_TEST(placeholder_compiles) { CU_ASSERT(1 == 1); }
