#include "harness.h"
SP_TEST(placeholder) { CU_ASSERT(1); }
