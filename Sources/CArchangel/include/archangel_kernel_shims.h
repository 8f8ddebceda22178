/*
 * archangel_kernel_shims.h - what Swift needs to drive /dev/archangel and
 * cannot import from the uapi header: the ioctl request numbers (_IOWR and
 * friends are function-like macros) as constants, and a non-variadic ioctl.
 */
#ifndef ARCHANGEL_KERNEL_SHIMS_H
#define ARCHANGEL_KERNEL_SHIMS_H

#include "archangel_uapi.h"

#endif
