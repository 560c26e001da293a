# Monthly range partitions only: the tenant dashboard reads every partition.
def page_views_ddl() -> str:
    """SQL (statements separated by `;`) creating the partitioned table

        page_views (view_id bigint, tenant_id integer NOT NULL, viewed_at timestamp NOT NULL, url text)

    and all of its partitions, such that:
    - it has at least 12 leaf partitions (a leaf partition holds rows: it is not itself partitioned);
    - every row with viewed_at in 2025 (from 2025-01-01 00:00 up to 2025-12-31 23:59:59.999999) can be inserted;
    - a query restricted to one calendar month of 2025 (viewed_at >= first day AND viewed_at < first day of the
      next month) scans at most 1/12 of the leaf partitions (rounded up);
    - a query for one tenant_id scans at most 1/4 of the leaf partitions (rounded up);
    - a query for one tenant in one month scans exactly one leaf partition.
    """
    parts = ["CREATE TABLE page_views (view_id bigint, tenant_id integer NOT NULL, viewed_at timestamp NOT NULL, "
             "url text) PARTITION BY RANGE (viewed_at)"]
    for m in range(1, 13):
        lo = f"2025-{m:02d}-01"
        hi = "2026-01-01" if m == 12 else f"2025-{m + 1:02d}-01"
        parts.append(f"CREATE TABLE page_views_{m:02d} PARTITION OF page_views FOR VALUES FROM ('{lo}') TO ('{hi}') ")
    return ";\n".join(parts)
