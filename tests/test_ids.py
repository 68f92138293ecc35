"""Random ids: unique, hex, time-ordered batches, and a forked child that draws its own."""

from __future__ import annotations

import os
import re
import time

from app.feedback import new_batch_id
from app.ids import CHUNK_BYTES, RandomHex
from app.serving.schemas import PREDICTION_ID


def test_ids_are_hex_of_the_length_asked_and_never_repeat():
    draw = RandomHex()
    ids = [draw(32) for _ in range(3 * CHUNK_BYTES)]  # across many refills of the buffer
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert {len(draw(n)) for n in (1, 20, 8192)} == {1, 20, 8192}


def test_a_forked_child_does_not_hand_out_its_parents_digits():
    draw = RandomHex()
    draw(32)  # the parent's buffer now holds digits it has not handed out yet
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: write the id it draws, and leave at once
        os.write(writer, draw(32).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    childs = os.read(reader, 64).decode()
    os.close(reader)
    assert re.fullmatch(r"[0-9a-f]{32}", childs)
    assert draw(32) != childs


def test_batch_ids_sort_in_time_and_name_predictions():
    first = new_batch_id()
    time.sleep(0.002)  # the next millisecond at least
    later = [new_batch_id() for _ in range(100)]
    assert all(first < i for i in later)
    assert len(set(later)) == len(later)  # the same millisecond: told apart by the random part
    assert re.fullmatch(PREDICTION_ID, f"{first}-0")
