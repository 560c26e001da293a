# Mistake: treats any large-share read as OLAP, without checking that it aggregates or reads few columns.
def classify_workload(pattern: dict) -> str:
    """Return "OLTP" or "OLAP" for an access pattern described as above, by rules 1-5 in order."""
    if pattern["writes"] == "row":
        return "OLTP"
    if pattern["writes"] == "bulk":
        return "OLAP"
    if pattern["lookup"] == "key":
        return "OLTP"
    return "OLAP" if pattern["rows_touched"] * 100 >= pattern["table_rows"] else "OLTP"
