# Mistake: strict comparisons (> 1 %, fewer than half the columns) where the rules say "at least" and "at most".
def classify_workload(pattern: dict) -> str:
    """Return "OLTP" or "OLAP" for an access pattern described as above, by rules 1-5 in order."""
    if pattern["writes"] == "row":
        return "OLTP"
    if pattern["writes"] == "bulk":
        return "OLAP"
    if pattern["lookup"] == "key":
        return "OLTP"
    if pattern["rows_touched"] * 100 > pattern["table_rows"] and (
            pattern["aggregates"] or pattern["columns_used"] * 2 < pattern["columns_total"]):
        return "OLAP"
    return "OLTP"
