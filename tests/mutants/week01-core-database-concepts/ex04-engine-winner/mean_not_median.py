# Mistake: compares mean run times, so one slow outlier run decides the winner.
# ruff: noqa: F821  (InsufficientFunds, psycopg and pd come from earlier cells of the notebook)
def winners(timings: pd.DataFrame, tie: float = 0.10) -> dict:
    """Winner per (query, rows): see the exercise."""
    means = timings.groupby(["query", "rows", "engine"])["seconds"].mean()
    out = {}
    for (query, rows), group in means.groupby(level=["query", "rows"]):
        ranked = group.droplevel(["query", "rows"]).sort_values()
        best = str(ranked.index[0])
        if len(ranked) > 1 and ranked.iloc[1] <= ranked.iloc[0] * (1 + tie):
            best = "tie"
        out[(str(query), int(rows))] = best
    return out
