"""Builds ``archangel._fastcall``, the optional cffi accelerator of the hot calls.

ctypes spends 350-400 ns converting the arguments of an 8-argument call in
a round trip, as much as the round trip itself (docs/bindings.md,
"Per-call cost"). This module, compiled by cffi in API mode when the
package is installed, calls the same library functions for about half that.
It does not link against libarchangel: the package loads the library with
ctypes as always and hands the functions' addresses to ``fastcall_bind``,
so the library is found in one way only (_native.py).

The shims include the installed header (``include/archangel.h`` beside the
``python/`` directory), so a signature that changes breaks this build
instead of calling with the wrong arguments. With no cffi or no header the
package installs without it and the ctypes path is used
(``archangel.FASTCALL`` tells which).
"""

from __future__ import annotations

import os

from cffi import FFI

HEADER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include")

ffi = FFI()
# What Python sees: the channel and message as addresses (the package's
# ctypes objects hold them), the payload as bytes or a from_buffer cdata.
ffi.cdef("""
void fastcall_bind(uintptr_t request, uintptr_t send, uintptr_t try_send, uintptr_t receive);
int fastcall_request(uintptr_t channel, unsigned type, unsigned priority, const char *data, size_t size,
                     uintptr_t reply, int64_t timeout_ns);
int fastcall_send(uintptr_t channel, unsigned type, unsigned priority, const char *data, size_t size,
                  int64_t timeout_ns, uint32_t options);
int fastcall_try_send(uintptr_t channel, unsigned type, unsigned priority, const char *data, size_t size,
                      uint32_t options);
int fastcall_receive(uintptr_t channel, uintptr_t message, int64_t timeout_ns);
""")
ffi.set_source("archangel._fastcall", r"""
#include <stdint.h>
#include <stddef.h>
#include "archangel.h"

/* The library's functions, as ctypes loaded them (fastcall_bind). */
static __typeof__(archangel_request) *p_request;
static __typeof__(archangel_send) *p_send;
static __typeof__(archangel_try_send) *p_try_send;
static __typeof__(archangel_receive) *p_receive;

static void fastcall_bind(uintptr_t request, uintptr_t send, uintptr_t try_send, uintptr_t receive)
{
	p_request = (__typeof__(p_request))request;
	p_send = (__typeof__(p_send))send;
	p_try_send = (__typeof__(p_try_send))try_send;
	p_receive = (__typeof__(p_receive))receive;
}

/* type and priority arrive checked (0...255) by the Python caller. */
static int fastcall_request(uintptr_t channel, unsigned type, unsigned priority, const char *data, size_t size,
			    uintptr_t reply, int64_t timeout_ns)
{
	return p_request((archangel_channel *)channel, (uint8_t)type, (uint8_t)priority, data, size,
			 (archangel_message *)reply, timeout_ns, NULL);
}

static int fastcall_send(uintptr_t channel, unsigned type, unsigned priority, const char *data, size_t size,
			 int64_t timeout_ns, uint32_t options)
{
	return p_send((archangel_channel *)channel, (uint8_t)type, (uint8_t)priority, data, size, timeout_ns,
		      options);
}

static int fastcall_try_send(uintptr_t channel, unsigned type, unsigned priority, const char *data, size_t size,
			     uint32_t options)
{
	return p_try_send((archangel_channel *)channel, (uint8_t)type, (uint8_t)priority, data, size, options);
}

static int fastcall_receive(uintptr_t channel, uintptr_t message, int64_t timeout_ns)
{
	return p_receive((archangel_channel *)channel, (archangel_message *)message, timeout_ns);
}
""", include_dirs=[HEADER_DIR], extra_compile_args=["-O2"])

if __name__ == "__main__":
    ffi.compile(verbose=True)
