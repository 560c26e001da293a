# RTO restores the full backup and replays WAL, but forgets to restore the chain of incrementals.
def schedule_metrics(schedule: tuple, system: dict) -> dict:
    """Worst-case {"rpo_h": float, "rto_h": float, "cost_per_day": float} of schedule (F, I, W).

    F: hours between full backups. I: hours between incrementals (None: none; else I < F and F % I == 0).
    W: minutes between WAL shipments (None: no WAL archiving). system has the keys db_gb,
    change_gb_per_h, restore_gb_per_h, replay_gb_per_h, cost_per_gb, cost_per_job.
    Raises ValueError for an invalid I."""
    F, Inc, W = schedule
    if Inc is not None and (Inc >= F or F % Inc != 0):
        raise ValueError("incrementals must divide the full-backup interval")
    s = system
    rpo = W / 60 if W else (Inc if Inc else F)
    interval = Inc if Inc else F
    rto = s["db_gb"] / s["restore_gb_per_h"]
    if W:
        rto += s["change_gb_per_h"] * interval / s["replay_gb_per_h"]
    fulls = 24 / F
    incrs = 24 / Inc - 24 / F if Inc else 0.0
    ships = 24 * 60 / W if W else 0.0
    gb = fulls * s["db_gb"] + incrs * s["change_gb_per_h"] * (Inc or 0) + (24 * s["change_gb_per_h"] if W else 0.0)
    cost = gb * s["cost_per_gb"] + (fulls + incrs + ships) * s["cost_per_job"]
    return {"rpo_h": float(rpo), "rto_h": float(rto), "cost_per_day": float(cost)}


def cheapest_schedule(candidates: list, system: dict, max_rpo_h: float, max_rto_h: float):
    """The candidate with the lowest cost_per_day among those with rpo_h <= max_rpo_h and
    rto_h <= max_rto_h (compare with a tolerance of 1e-9); ties: lower rto_h, then lower
    rpo_h, then earlier in `candidates`. None if no candidate meets both objectives."""
    best, best_key = None, None
    for i, cand in enumerate(candidates):
        m = schedule_metrics(cand, system)
        if m["rpo_h"] <= max_rpo_h + 1e-9 and m["rto_h"] <= max_rto_h + 1e-9:
            key = (m["cost_per_day"], m["rto_h"], m["rpo_h"], i)
            if best_key is None or key < best_key:
                best, best_key = cand, key
    return best
