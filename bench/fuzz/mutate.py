"""A small deterministic mutator over a seed corpus, for the short fuzz run of the test
suite (atheris takes over its process; the tests drive `test_one_input` directly).

Not coverage-guided: byte flips, interesting values, insertions, deletions, duplicated
runs and splices of two seeds, a few at a time, from a seeded random.Random.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\x7f\xff",
               b"\x80\x00", b"\xff\xff\xff\xff", b"{", b"}", b"[", b"]", b'"', b":", b",",
               b"\n", b"\r\n", b"*", b"=", b"&", b"*a", b"- ", b"  ", b"\\u", b"1e999",
               b"-0", b"NaN", b"9" * 30]


def mutate(data: bytes, others: Sequence[bytes], rng: random.Random,
           max_len: int) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:                                     # flip one bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:                                   # random byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2:                                           # interesting token
            buf[pos:pos] = rng.choice(INTERESTING)
        elif op == 3:                                           # random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and buf:                                   # delete a run
            del buf[pos:pos + rng.randint(1, 16)]
        elif op == 5 and buf:                                   # duplicate a run
            start = rng.randrange(len(buf))
            run = buf[start:start + rng.randint(1, 32)]
            buf[pos:pos] = run * rng.randint(1, 8)
        elif op == 6 and others:                                # splice another seed
            other = rng.choice(others)
            cut = rng.randint(0, len(other))
            buf = buf[:pos] + bytearray(other[cut:])
        elif op == 7:                                           # truncate
            del buf[pos:]
    return bytes(buf[:max_len])


def inputs(seeds: Sequence[bytes], n: int, *, seed: int = 0,
           max_len: int = 4096) -> Iterator[bytes]:
    """The seeds themselves, then mutants of them, `n` inputs in all."""
    rng = random.Random(seed)
    pool = list(seeds) or [b""]
    for i in range(n):
        yield pool[i] if i < len(pool) else mutate(rng.choice(pool), pool, rng, max_len)
