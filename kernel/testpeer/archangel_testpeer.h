/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * archangel_testpeer.h - the ioctls of /dev/archangel_testpeer.
 *
 * They are defined once, in the "Test peer" section of archangel_uapi.h,
 * which Swift imports too (Sources/CArchangel/include).
 */
#ifndef _ARCHANGEL_TESTPEER_H
#define _ARCHANGEL_TESTPEER_H

#include <linux/ioctl.h>
#include "archangel_uapi.h"

#endif /* _ARCHANGEL_TESTPEER_H */
