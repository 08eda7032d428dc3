"""The named-pipe reader: garbage on the pipe is one bad read, never a line held without bound."""

from __future__ import annotations

import os
import threading

from sitegate.clock import SYSTEM
from sitegate.reader.sources import MAX_LINE_BYTES, BadgeRead, BadRead, FifoSource


def reads_after_writing(path, data: bytes, count: int) -> list:
    source = FifoSource(path, "gate", SYSTEM)
    source.prepare()
    writer = threading.Thread(target=lambda: write_all(path, data))
    writer.start()
    stop, reads = threading.Event(), []
    for read in source.reads(stop):
        reads.append(read)
        if len(reads) == count:
            stop.set()
    writer.join()
    return reads


def write_all(path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def test_a_line_without_end_is_one_bad_read_and_the_next_badge_reads(tmp_path):
    flood = b"A" * 2_000_000  # no newline: a stuck writer or noise, 2 MB of it
    reads = reads_after_writing(tmp_path / "badges", flood + b"\n04A1B2C3\n", 2)
    assert isinstance(reads[0], BadRead) and str(MAX_LINE_BYTES) in reads[0].problem
    assert len(reads[0].problem) < 200  # the journal line stays short: the garbage itself is not repeated
    assert isinstance(reads[1], BadgeRead) and reads[1].uid == "04A1B2C3"


def test_a_long_line_inside_one_chunk_is_one_bad_read(tmp_path):
    reads = reads_after_writing(tmp_path / "badges", b"04A1B2C3\n" + b"F" * 1000 + b"\n04112233445566 exit\n", 3)
    assert [type(read) for read in reads] == [BadgeRead, BadRead, BadgeRead]
    assert len(reads[1].problem) < 200 and reads[2].reader == "exit"
