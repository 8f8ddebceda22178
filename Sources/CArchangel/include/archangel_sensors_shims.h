/* The ioctl numbers of archangel_sensors_ioctl.h as constants Swift can import
 * (the _IOW() macros themselves do not import). */
#ifndef ARCHANGEL_SENSORS_SHIMS_H
#define ARCHANGEL_SENSORS_SHIMS_H
#include "archangel_sensors_ioctl.h"

static const unsigned long archangel_sensors_ioc_attach = ARCHANGEL_SENSORS_IOC_ATTACH;
static const unsigned long archangel_sensors_ioc_detach = ARCHANGEL_SENSORS_IOC_DETACH;
static const unsigned long archangel_sensors_ioc_configure = ARCHANGEL_SENSORS_IOC_CONFIGURE;
static const unsigned long archangel_sensors_ioc_get_stats = ARCHANGEL_SENSORS_IOC_GET_STATS;

#endif
