"""Kafka's default key partitioner (murmur2), so other clients agree on placement.

``murmur2`` and ``default_partition`` are the C versions from streamer/_native when the
install could compile them (setup.py), else the pure Python ones below, which give the
same results and stay the reference the tests compare against.
"""

from __future__ import annotations

import struct
from typing import Callable

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
#: Word count -> an unpacker of that many little-endian 4-byte words (keys have few lengths).
_WORDS: dict[int, Callable[[bytes], tuple[int, ...]]] = {}
_WORDS_KEPT = 64


def murmur2_python(data: bytes) -> int:
    """The 32-bit murmur2 hash exactly as the Java client computes it (seed 0x9747b28c).

    The 4-byte words are unpacked in one call and the masks folded (the low 32 bits of
    a product or XOR need only the low 32 bits of their operands): about half the time
    of a byte-by-byte loop, which matters where every output key is new (windowed keys).
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    words = length >> 2
    unpack = _WORDS.get(words)
    if unpack is None:
        unpack = struct.Struct(f"<{words}I").unpack_from
        if words <= _WORDS_KEPT:
            _WORDS[words] = unpack
    for k in unpack(data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) ^ (k * _M)) & _MASK
    tail = words << 2
    rest = length & 3
    if rest:
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def default_partition_python(key_bytes: bytes, num_partitions: int) -> int:
    """Partition of a serialized key: ``toPositive(murmur2(key)) % n`` as in Kafka."""
    return (murmur2_python(key_bytes) & 0x7FFFFFFF) % num_partitions


def _compiled() -> tuple[Callable[[bytes], int], Callable[[bytes, int], int]]:
    try:
        import streamer._native.murmur2 as native
    except ImportError:  # installed without a C compiler
        return murmur2_python, default_partition_python
    return native.murmur2, native.default_partition


murmur2, default_partition = _compiled()
