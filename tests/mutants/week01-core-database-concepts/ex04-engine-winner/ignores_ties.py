# Mistake: always names the engine with the lowest median, even when the runner-up is within the tolerance.
# ruff: noqa: F821  (InsufficientFunds, psycopg and pd come from earlier cells of the notebook)
def winners(timings: pd.DataFrame, tie: float = 0.10) -> dict:
    """Winner per (query, rows): see the exercise."""
    medians = timings.groupby(["query", "rows", "engine"])["seconds"].median()
    return {(str(q), int(n)): str(g.droplevel(["query", "rows"]).idxmin())
            for (q, n), g in medians.groupby(level=["query", "rows"])}
