# Takes h2 = second half mod m, which is 0 for about one key in m: all its k positions coincide.
import hashlib


class BloomFilter:
    """m bits, k hash functions by double hashing: g_i(x) = (h1 + i * h2) mod m, i = 0..k-1.

    h1 and h2 come from one hash: d = hashlib.blake2b(str(item).encode(), digest_size=16).digest();
    h1 = int.from_bytes(d[:8], "big") and h2 = 1 + int.from_bytes(d[8:], "big") % (m - 1), so that
    h2 is never 0 mod m. Keep the bits in a bytearray or an int; m >= 2, k >= 1."""

    def __init__(self, m: int, k: int):
        if m < 2 or k < 1:
            raise ValueError("need m >= 2 and k >= 1")
        self.m, self.k = m, k
        self.bits = bytearray(m)

    def positions(self, item) -> list:
        """The k bit positions of `item`, in order i = 0..k-1 (ints in range(m))."""
        d = hashlib.blake2b(str(item).encode(), digest_size=16).digest()
        h1 = int.from_bytes(d[:8], "big")
        h2 = int.from_bytes(d[8:], "big") % self.m
        return [(h1 + i * h2) % self.m for i in range(self.k)]

    def add(self, item) -> None:
        for p in self.positions(item):
            self.bits[p] = 1

    def __contains__(self, item) -> bool:
        return all(self.bits[p] for p in self.positions(item))
