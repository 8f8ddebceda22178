/*
 * archangel_api_internal.h - helpers of libarchangel's Swift implementation
 * (Sources/ArchangelC); hidden from the library's exports.
 */
#ifndef ARCHANGEL_API_INTERNAL_H
#define ARCHANGEL_API_INTERNAL_H

#include "archangel.h"

/* Stores the calling thread's last error text (archangel_last_error). */
__attribute__((visibility("hidden"))) void archangel_api_set_last_error(const char *text);
/* Clears it. */
__attribute__((visibility("hidden"))) void archangel_api_clear_last_error(void);

#endif
