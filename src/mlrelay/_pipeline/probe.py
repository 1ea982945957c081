"""A file's size and first bytes, read without letting go of the GIL.

Every ``os`` call that enters the kernel lets go of the GIL and takes it back after. When
the journal's writer does that while the training loop runs Python, the writer waits for
the loop to let go (at its next blocking call, or after ``sys.getswitchinterval()``), and
the loop then waits for the writer to let go again: each such call costs the loop one wait,
with a wake-up between the two cores. The journal's damage guards (``journal.py``) run
before every statement; through ``os`` they cost three such waits per group commit.

These functions call the C library through :class:`ctypes.PyDLL`, which keeps the GIL for
the call: ``lseek``, ``pread``, ``open`` and ``close`` on a local file return within
microseconds. Where they are not available (not a 64-bit POSIX system, no C library
symbols), :data:`AVAILABLE` is False and callers use ``os``.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["AVAILABLE", "head", "size", "size_at"]

_SEEK_END = 2

try:
    if os.name != "posix" or ctypes.sizeof(ctypes.c_void_p) != 8:
        raise OSError("not a 64-bit POSIX system")
    _libc = ctypes.PyDLL(None)  # the process's own symbols, the C library's among them
    _lseek = _libc.lseek
    _lseek.restype, _lseek.argtypes = ctypes.c_int64, (ctypes.c_int, ctypes.c_int64, ctypes.c_int)
    _pread = _libc.pread
    _pread.restype = ctypes.c_ssize_t
    _pread.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int64)
    _open = _libc.open
    _open.restype, _open.argtypes = ctypes.c_int, (ctypes.c_char_p, ctypes.c_int)
    _close = _libc.close
    _close.restype, _close.argtypes = ctypes.c_int, (ctypes.c_int,)
    AVAILABLE = True
except (OSError, AttributeError):  # pragma: no cover - other platforms
    AVAILABLE = False  # (then the functions below must not be called)

_READ_ONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def size(fd: int) -> int:
    """The size of the open file ``fd`` (its offset moves to the end: read it with
    :func:`head` or ``os.pread`` only); -1 if it cannot be told."""
    return int(_lseek(fd, 0, _SEEK_END))


def size_at(path: bytes) -> int:
    """The size of the file at ``path`` now; -1 if it cannot be opened (missing, say).

    It is opened read-only and closed again: never use it on a file this process holds
    POSIX locks on (closing any descriptor of a file drops them all)."""
    fd = int(_open(path, _READ_ONLY))
    if fd < 0:
        return -1
    try:
        return int(_lseek(fd, 0, _SEEK_END))
    finally:
        _close(fd)


def head(fd: int, n: int) -> bytes | None:
    """The first ``n`` bytes of the open file ``fd``; None if fewer can be read."""
    buffer = ctypes.create_string_buffer(n)
    if _pread(fd, buffer, n, 0) != n:
        return None
    return buffer.raw
