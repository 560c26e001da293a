# Mistake: compares each engine's fastest run (min) instead of its median, so one lucky run decides.
# ruff: noqa: F821  (InsufficientFunds, psycopg and pd come from earlier cells of the notebook)
def winners(timings: pd.DataFrame, tie: float = 0.10) -> dict:
    """Winner per (query, rows): see the exercise."""
    best_runs = timings.groupby(["query", "rows", "engine"])["seconds"].min()
    out = {}
    for (query, rows), group in best_runs.groupby(level=["query", "rows"]):
        ranked = group.droplevel(["query", "rows"]).sort_values()
        best = str(ranked.index[0])
        if len(ranked) > 1 and ranked.iloc[1] <= ranked.iloc[0] * (1 + tie):
            best = "tie"
        out[(str(query), int(rows))] = best
    return out
