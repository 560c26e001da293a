# Confuses REPEATABLE READ with SERIALIZABLE: claims snapshot isolation also prevents write skew.
def allowed_anomalies(level: str) -> set:
    """The anomalies (names from ANOMALIES) that PostgreSQL lets happen at isolation `level`
    (one of LEVELS), as a set of strings."""
    weak = {"non_repeatable_read", "phantom", "lost_update", "read_skew", "write_skew"}
    return {"READ UNCOMMITTED": weak, "READ COMMITTED": weak,
            "REPEATABLE READ": set(), "SERIALIZABLE": set()}[level]
    ### END SOLUTION
