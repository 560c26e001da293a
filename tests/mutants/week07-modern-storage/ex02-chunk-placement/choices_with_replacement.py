# Draws replicas with rng.choices (with replacement), so two replicas of a chunk can land on one server.
import random


def place_chunks(n_chunks: int, servers: list, replicas: int, rng: random.Random) -> dict:
    """{chunk id: [server, ...]} for chunk ids 0..n_chunks-1. Each chunk gets `replicas`
    different servers, drawn uniformly at random with `rng` (e.g. rng.sample), chunk 0 first.
    Raises ValueError if replicas > len(servers)."""
    if replicas > len(servers):
        raise ValueError("more replicas than servers")
    return {c: rng.choices(servers, k=replicas) for c in range(n_chunks)}


def fail_and_repair(placement: dict, servers: list, failed: set, replicas: int) -> tuple:
    """The servers in `failed` die at once. Returns (at_risk, lost, repaired):

    at_risk  -- number of chunks with at least one replica on a failed server;
    lost     -- number of chunks whose replicas were all on failed servers;
    repaired -- a NEW placement (do not modify `placement`): failed servers removed from every
                chunk's list (lost chunks map to []), then every chunk that is not lost but has
                fewer than `replicas` replicas gets new ones until it has `replicas` (or until no
                live server is left that does not hold it). Chunks are repaired in increasing
                chunk id; each new replica goes to the live server NOT already holding that chunk
                that holds the fewest replicas at that moment (counting replicas added so far);
                ties go to the server listed first in `servers`; new replicas are appended."""
    live = [s for s in servers if s not in failed]
    repaired = {c: [s for s in holders if s not in failed] for c, holders in placement.items()}
    at_risk = sum(1 for c, holders in placement.items() if len(repaired[c]) < len(holders))
    lost = sum(1 for c, holders in placement.items() if holders and not repaired[c])
    load = {s: 0 for s in live}
    for holders in repaired.values():
        for s in holders:
            load[s] += 1
    order = {s: i for i, s in enumerate(servers)}
    for c in sorted(repaired):
        holders = repaired[c]
        if not holders:
            continue
        while len(holders) < replicas:
            candidates = [s for s in live if s not in holders]
            if not candidates:
                break
            target = min(candidates, key=lambda s: (load[s], order[s]))
            holders.append(target)
            load[target] += 1
    return at_risk, lost, repaired
