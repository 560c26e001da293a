# Recovery replays every logged write, including those of transactions that never committed.
class KVStore:
    """A transactional key-value store (str keys and values) on a SimDisk-like `disk`.

    Log records are tuples of your choice, e.g. ("put", tx, key, value), ("del", tx, key),
    ("commit", tx), ("abort", tx). Data pages: disk.write_page(key, value) for every key a
    committed transaction wrote, value None for a deleted key. Rules:
    - put/delete append a log record and remember the change; nothing is visible before commit;
    - commit appends the commit record and flushes the log BEFORE it changes self.table or any
      page, and before it returns (returning = acknowledging the commit);
    - recover (called by __init__) loads the pages, then replays the log: the writes of each
      committed transaction are applied at the position of its commit record, in log order;
      transactions without a commit record are ignored. Transaction ids are never reused, even
      after a crash (ids of the log's unfinished transactions must not come back).
    """

    def __init__(self, disk):
        self.disk = disk
        self.table = {}          # committed state: key -> value
        self.pending = {}        # open transaction id -> [(key, value or None), ...]
        self.next_tx = 1
        self.recover()

    def begin(self) -> int:
        tx, self.next_tx = self.next_tx, self.next_tx + 1
        self.pending[tx] = []
        return tx

    def get(self, key):
        """The last committed value of `key`, or None."""
        return self.table.get(key)

    def put(self, tx: int, key: str, value: str) -> None:
        self.disk.append_log(("put", tx, key, value))
        self.pending[tx].append((key, value))

    def delete(self, tx: int, key: str) -> None:
        self.disk.append_log(("del", tx, key))
        self.pending[tx].append((key, None))

    def commit(self, tx: int) -> None:
        self.disk.append_log(("commit", tx))
        self.disk.flush_log()                              # durable: now we may acknowledge
        for key, value in self.pending.pop(tx):
            self._apply(key, value)
            self.disk.write_page(key, value)               # the page may reach disk whenever

    def abort(self, tx: int) -> None:
        self.disk.append_log(("abort", tx))
        self.pending.pop(tx)

    def recover(self) -> None:
        self.table = dict(self.disk.read_pages())
        writes = {}
        for record in self.disk.read_log():
            kind, tx = record[0], record[1]
            self.next_tx = max(self.next_tx, tx + 1)
            if kind == "put":
                self._apply(record[2], record[3])
            elif kind == "del":
                self._apply(record[2], None)
            elif kind == "commit":
                for key, value in writes.pop(tx, []):
                    self._apply(key, value)
            elif kind == "abort":
                writes.pop(tx, None)

    def _apply(self, key, value) -> None:
        if value is None:
            self.table.pop(key, None)
        else:
            self.table[key] = value
