# Keeps the entry of the oldest run for each key (merges runs as if they were oldest first).
import heapq


def merge_runs(runs: list, drop_tombstones: bool) -> list:
    """runs: sorted runs, newest first; each run a list of (key, value) sorted by key, one
    entry per key, value None = tombstone. Returns one run sorted by key with, for every key,
    the entry of the newest run containing it (tombstones removed if drop_tombstones)."""
    tagged = [[(key, age, value) for key, value in run] for age, run in enumerate(reversed(runs))]
    out, last = [], object()
    for key, _age, value in heapq.merge(*tagged, key=lambda e: (e[0], e[1])):
        if key == last:
            continue                                  # an older version of a key already taken
        last = key
        if value is None and drop_tombstones:
            continue
        out.append((key, value))
    return out
    ### END SOLUTION
