# Treats every hold as active, even after its release: expired data is kept forever.
from datetime import timedelta


def expired_ids(records, now, ttl_days, holds) -> set:
    """The ids of the records a purge run at `now` must delete.

    records:  iterable of (record_id: int, customer_id: int, kind: str, created_at: datetime)
    ttl_days: dict kind -> days to keep (int), or None to keep forever. A kind missing from the dict has no
              policy: keep it (never delete what no rule covers).
    holds:    iterable of (customer_id, kind or None, released_at: datetime or None). A hold protects that
              customer's records of that kind (kind None: of every kind) while it is active, i.e. when
              released_at is None or now < released_at.

    A record is expired when created_at + ttl_days[kind] days <= now. Return the set of ids of the records
    that are expired and not protected by any active hold.
    """
    active = {(cid, kind) for cid, kind, _released in holds}
    out = set()
    for rid, cid, kind, created in records:
        ttl = ttl_days.get(kind)
        if ttl is None or created + timedelta(days=ttl) > now:
            continue
        if (cid, None) in active or (cid, kind) in active:
            continue
        out.add(rid)
    return out
