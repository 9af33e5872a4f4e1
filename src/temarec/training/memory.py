"""Return freed heap memory to the operating system during training.

The SASRec-style encoders run on packed real items, so every step allocates tensors of a different size.
glibc's allocator keeps the freed blocks, and on data with many short sequences (amazon-art-office) the
resident memory of a training process grew by about 600 MB per epoch, to 10 GB, without ever being used
again. `malloc_trim(0)` hands those free pages back; it changes no number, only the resident size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim  # glibc only (musl has none)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def release_freed_memory() -> bool:
    """Give the allocator's free pages back to the OS; False where the C library cannot (not glibc)."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
