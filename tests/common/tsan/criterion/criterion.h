/* SPDX-License-Identifier: MIT */
/* TSan builds only: Criterion cannot start under ThreadSanitizer, so this
 * stands in for <criterion/criterion.h>; see ../../mini_criterion.h. */
#include "../../mini_criterion.h"
