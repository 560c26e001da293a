# Keeps the items themselves in a set: exact answers, so it is not a Bloom filter and has no false positives.
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
        self.items = set()

    def positions(self, item) -> list:
        """The k bit positions of `item`, in order i = 0..k-1 (ints in range(m))."""
        d = hashlib.blake2b(str(item).encode(), digest_size=16).digest()
        h1 = int.from_bytes(d[:8], "big")
        h2 = 1 + int.from_bytes(d[8:], "big") % (self.m - 1)
        return [(h1 + i * h2) % self.m for i in range(self.k)]

    def add(self, item) -> None:
        self.items.add(item)

    def __contains__(self, item) -> bool:
        return item in self.items
