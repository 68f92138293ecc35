"""Random ids (a request's, a prediction batch's) without a system call each."""

from __future__ import annotations

import os
import threading

CHUNK_BYTES = 4096


class RandomHex:
    """Hex digits from the operating system's random source (`os.urandom`, as `uuid4` and
    `secrets` use), drawn 4 KiB at a time: one system call for hundreds of ids. Under load the
    API's two calls a request were 4 % of its time (py-spy). A forked child draws afresh, so
    two processes never hand out the same digits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hex, self._at = "", 0
        os.register_at_fork(after_in_child=self._forget)

    def __call__(self, digits: int) -> str:
        """`digits` random hex digits (at most the chunk's 8,192)."""
        with self._lock:
            end = self._at + digits
            if end > len(self._hex):
                self._hex, self._at, end = os.urandom(CHUNK_BYTES).hex(), 0, digits
            taken, self._at = self._hex[self._at : end], end
        return taken

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._hex, self._at = "", 0


random_hex = RandomHex()
