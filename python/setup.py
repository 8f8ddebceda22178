"""Installs the package; pyproject.toml has its metadata.

Adds the optional cffi accelerator (archangel/_fastcall_build.py) when cffi
and the repository's include/archangel.h are there; without them the
package is pure Python over ctypes, and just as correct.
"""

import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "..", "include", "archangel.h")

kwargs = {}
if os.environ.get("ARCHANGEL_PY_NO_FASTCALL") != "1" and os.path.exists(HEADER):
    try:
        import cffi  # noqa: F401
    except ImportError:
        print("archangel: cffi not installed, the ctypes path only (pip install cffi for faster calls)")
    else:
        kwargs["cffi_modules"] = ["archangel/_fastcall_build.py:ffi"]
        kwargs["setup_requires"] = []
setup(**kwargs)
