# Forgets that the hot tier may charge retrieval too: divides by the cold fee only.
def break_even_reads(hot, cold, months: int) -> float:
    """The read rate r (full reads of the data per month, constant over time) at which keeping data for `months`
    months costs the same in tier `cold` as in tier `hot`, using the bill above. Tiers have the attributes
    storage_gb_month, retrieval_gb and min_months; cold.retrieval_gb > hot.retrieval_gb.
    If `cold` is not cheaper even when the data is never read, return 0.0."""
    storage_hot = hot.storage_gb_month * max(months, hot.min_months)
    storage_cold = cold.storage_gb_month * max(months, cold.min_months)
    return max(0.0, (storage_hot - storage_cold) / (months * cold.retrieval_gb))
