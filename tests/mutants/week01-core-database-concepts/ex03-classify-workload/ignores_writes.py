# Mistake: ignores what the workload writes (rules 1 and 2), so a bulk load or a user's multi-row edit is misclassified.
def classify_workload(pattern: dict) -> str:
    """Return "OLTP" or "OLAP" for an access pattern described as above, by rules 1-5 in order."""
    if pattern["lookup"] == "key":
        return "OLTP"
    if pattern["rows_touched"] * 100 >= pattern["table_rows"] and (
            pattern["aggregates"] or pattern["columns_used"] * 2 <= pattern["columns_total"]):
        return "OLAP"
    return "OLTP"
