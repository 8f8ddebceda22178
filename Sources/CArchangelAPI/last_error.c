/*
 * The thread-local text behind archangel_last_error(); the rest of
 * libarchangel is Swift (Sources/ArchangelC).
 */
#include <string.h>

#include "archangel_api_internal.h"

/* The layouts the Swift side fills must be the ones this header declares. */
_Static_assert(sizeof(struct archangel_segment) == 16, "archangel_segment");
_Static_assert(sizeof(archangel_message) == 56, "archangel_message");
_Static_assert(__builtin_offsetof(archangel_message, type) == 40, "archangel_message.type");
_Static_assert(sizeof(struct archangel_stats) == 18 * 8, "archangel_stats");

static __thread char last_error[512];

void archangel_api_set_last_error(const char *text)
{
	strncpy(last_error, text, sizeof(last_error) - 1);
	last_error[sizeof(last_error) - 1] = '\0';
}

void archangel_api_clear_last_error(void)
{
	last_error[0] = '\0';
}

const char *archangel_last_error(void)
{
	return last_error;
}
