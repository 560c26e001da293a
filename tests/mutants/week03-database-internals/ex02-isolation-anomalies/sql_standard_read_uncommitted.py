# Uses the SQL standard's table for READ UNCOMMITTED: says PostgreSQL allows dirty reads there.
def allowed_anomalies(level: str) -> set:
    """The anomalies (names from ANOMALIES) that PostgreSQL lets happen at isolation `level`
    (one of LEVELS), as a set of strings."""
    weak = {"non_repeatable_read", "phantom", "lost_update", "read_skew", "write_skew"}
    return {"READ UNCOMMITTED": weak | {"dirty_read"}, "READ COMMITTED": weak,
            "REPEATABLE READ": {"write_skew"}, "SERIALIZABLE": set()}[level]
    ### END SOLUTION
