"""Page-size advice for large numpy buffers that are written a little at a time (the DFA table).

numpy asks the kernel for transparent huge pages on big arrays. For a buffer reserved up front and
filled a DFA at a time, that makes the first write into each 2 MB page fault in, and zero, the
whole page; where the kernel must compact memory for it that stalled ~4.7 ms inside a mask, and
how often depends on how fragmented the machine's memory is (0.1-1.6 ms/MB overall on the 2-core
boxes). With 4 KB pages first writes cost a steady ~0.45 ms/MB. Measured on 98 MaskBench schemas
in-process, three runs each (docs/engine.md): mean mask 97-103 -> 78-82 us, p99.9 8.8-9.4 -> 4.7-5.0
ms. ``without_huge_pages`` gives that advice (``madvise(MADV_NOHUGEPAGE)``, Linux); elsewhere it
does nothing and returns False.
"""
from __future__ import annotations

import ctypes
import sys

import numpy as np

MADV_NOHUGEPAGE = 15  # linux/mman.h
PAGE_BYTES = 4096
_madvise = None
_supported = sys.platform.startswith("linux")


def without_huge_pages(array: np.ndarray) -> bool:
    """Advise 4 KB pages for ``array``'s buffer (whole pages inside it). False where unsupported."""
    global _madvise, _supported
    if not _supported:
        return False
    if _madvise is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            libc.madvise.restype = ctypes.c_int
            _madvise = libc.madvise
        except (OSError, AttributeError):
            _supported = False
            return False
    start = (array.ctypes.data + PAGE_BYTES - 1) // PAGE_BYTES * PAGE_BYTES
    end = (array.ctypes.data + array.nbytes) // PAGE_BYTES * PAGE_BYTES
    return end > start and _madvise(start, end - start, MADV_NOHUGEPAGE) == 0
