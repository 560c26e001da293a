# Mistake: uses an absolute row count (10 000 rows) instead of the share of the table.
def classify_workload(pattern: dict) -> str:
    """Return "OLTP" or "OLAP" for an access pattern described as above, by rules 1-5 in order."""
    if pattern["writes"] == "row":
        return "OLTP"
    if pattern["writes"] == "bulk":
        return "OLAP"
    if pattern["lookup"] == "key":
        return "OLTP"
    if pattern["rows_touched"] >= 10_000 and (pattern["aggregates"]
                                            or pattern["columns_used"] * 2 <= pattern["columns_total"]):
        return "OLAP"
    return "OLTP"
