# Mistake: looks only at the share of rows touched (>= 1 % means OLAP), ignoring writes, keys and shape.
def classify_workload(pattern: dict) -> str:
    """Return "OLTP" or "OLAP" for an access pattern described as above, by rules 1-5 in order."""
    return "OLAP" if pattern["rows_touched"] / pattern["table_rows"] >= 0.01 else "OLTP"
