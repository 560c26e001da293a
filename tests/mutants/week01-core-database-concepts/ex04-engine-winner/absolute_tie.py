# Mistake: the tie tolerance is read as seconds (runner-up - winner <= tie), not as a share of the winner's time.
# ruff: noqa: F821  (InsufficientFunds, psycopg and pd come from earlier cells of the notebook)
def winners(timings: pd.DataFrame, tie: float = 0.10) -> dict:
    """Winner per (query, rows): see the exercise."""
    medians = timings.groupby(["query", "rows", "engine"])["seconds"].median()
    out = {}
    for (query, rows), group in medians.groupby(level=["query", "rows"]):
        ranked = group.droplevel(["query", "rows"]).sort_values()
        best = str(ranked.index[0])
        if len(ranked) > 1 and ranked.iloc[1] - ranked.iloc[0] <= tie:
            best = "tie"
        out[(str(query), int(rows))] = best
    return out
