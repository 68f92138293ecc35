"""What the API's memory comes from: mimalloc on 2 MiB pages, where Linux has the library.

A served API holds some 250 MB: the interpreter's objects, the libraries, the model's weights. In
4 KiB pages that is some 65,000 address translations for the core's TLB to keep, and a request's
work reaches across many of them. mimalloc asks Linux for transparent huge pages
(`MIMALLOC_LARGE_OS_PAGES`), and with `PYTHONMALLOC=malloc` Python's small objects come from it too:
its heap, about half of that memory (140 of 270 MB), then sits in 70 pages of 2 MiB. Measured
(README, "Speed"): 1.08 to 1.15x the throughput at 8 connections; the pages are what pays, not the
allocator (mimalloc on 4 KiB pages gains nothing), and jemalloc on huge pages did as well for three
times the extra memory. An allocator is chosen before a process starts (`LD_PRELOAD`), so this is
the environment the stack starts the API with; the API's image sets the same (compose/Dockerfile).
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import sys
from pathlib import Path

from app.config import Settings

INSTALL_HINT = (
    "WORKBOOK_API_ALLOCATOR=mimalloc asks for libmimalloc, which is missing: apt-get install "
    "libmimalloc2.0 (or WORKBOOK_API_ALLOCATOR=auto: Python's own allocator where it is missing)"
)


@functools.cache
def mimalloc() -> str | None:
    """The mimalloc library the dynamic loader finds (libmimalloc.so.2), on Linux; else None.
    (`LD_PRELOAD` is Linux's: macOS has neither it nor transparent huge pages.)"""
    return ctypes.util.find_library("mimalloc") if sys.platform == "linux" else None


def allocator_env(settings: Settings) -> dict[str, str] | None:
    """The environment that puts the API on mimalloc's huge pages; {} for Python's allocator;
    None when mimalloc was asked for by name and is not installed."""
    library = mimalloc() if settings.api_allocator != "python" else None
    if library is None:
        return None if settings.api_allocator == "mimalloc" else {}
    preload = " ".join(filter(None, (os.environ.get("LD_PRELOAD"), library)))
    return {"LD_PRELOAD": preload, "PYTHONMALLOC": "malloc", "MIMALLOC_LARGE_OS_PAGES": "1"}


def in_use(pid: int | str = "self") -> dict[str, str | float]:
    """What a process's memory comes from (this one's by default), as its mappings in Linux's
    /proc say: the allocator, and how much of its memory is on huge pages. Elsewhere, Python's."""
    proc = Path("/proc") / str(pid)
    try:
        maps = (proc / "maps").read_text()
        rollup = (proc / "smaps_rollup").read_text()
        environ = (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return {"allocator": "python"}
    huge_kib = next(
        (int(line.split()[1]) for line in rollup.splitlines() if line.startswith("AnonHugePages:")),
        0,
    )
    python_own = "libc malloc" if b"PYTHONMALLOC=malloc" in environ else "python"
    preloaded = (name for name in ("mimalloc", "jemalloc") if f"/lib{name}." in maps)
    return {"allocator": next(preloaded, python_own), "huge_pages_mib": huge_kib / 1024}
