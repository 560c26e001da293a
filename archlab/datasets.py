"""The course's e-commerce data: a seeded generator and loaders for every engine.

The small size ships in the repository (`datasets/ecommerce/`, checked by sha256 in
`datasets/manifest.json`); larger sizes are generated on demand by the same code into a cache
directory. The same seed and size always give byte-identical files.

    python -m archlab.datasets --out datasets          # rewrite the shipped files + manifest
    python -m archlab.datasets --size medium --out /tmp/m
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20260101
SIZES = {  # customers, products, orders, events
    "small": (1_000, 200, 5_000, 20_000),
    "medium": (10_000, 2_000, 50_000, 200_000),
    "large": (100_000, 20_000, 500_000, 2_000_000),
}
TABLES = ("customers", "products", "orders", "order_items", "events")

# One schema, written once; each engine's DDL is derived from it.
SCHEMA: dict[str, list[tuple[str, str, str]]] = {
    # table: [(column, type, constraint)]
    "customers": [("customer_id", "INTEGER", "PRIMARY KEY"), ("name", "TEXT", "NOT NULL"),
                  ("email", "TEXT", "NOT NULL UNIQUE"), ("country", "TEXT", "NOT NULL"),
                  ("signup_date", "DATE", "NOT NULL")],
    "products": [("product_id", "INTEGER", "PRIMARY KEY"), ("sku", "TEXT", "NOT NULL UNIQUE"),
                 ("name", "TEXT", "NOT NULL"), ("category", "TEXT", "NOT NULL"),
                 ("price_cents", "INTEGER", "NOT NULL CHECK (price_cents > 0)"),
                 ("stock", "INTEGER", "NOT NULL CHECK (stock >= 0)")],
    "orders": [("order_id", "INTEGER", "PRIMARY KEY"),
               ("customer_id", "INTEGER", "NOT NULL REFERENCES customers(customer_id)"),
               ("created_at", "TIMESTAMP", "NOT NULL"), ("status", "TEXT", "NOT NULL")],
    "order_items": [("order_id", "INTEGER", "NOT NULL REFERENCES orders(order_id)"),
                    ("line_no", "INTEGER", "NOT NULL"),
                    ("product_id", "INTEGER", "NOT NULL REFERENCES products(product_id)"),
                    ("quantity", "INTEGER", "NOT NULL CHECK (quantity > 0)"),
                    ("unit_price_cents", "INTEGER", "NOT NULL")],
    "events": [("event_id", "INTEGER", "PRIMARY KEY"), ("customer_id", "INTEGER", "NOT NULL"),
               ("product_id", "INTEGER", "NOT NULL"), ("event_type", "TEXT", "NOT NULL"),
               ("ts", "TIMESTAMP", "NOT NULL")],
}
PRIMARY_KEYS = {"order_items": ("order_id", "line_no")}

COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA", "ES", "NL"]
CATEGORIES = ["books", "electronics", "garden", "home", "kitchen", "sports", "toys", "clothing"]
FIRST = ["Ada", "Alan", "Barbara", "Edsger", "Frances", "Grace", "Jim", "Ken", "Leslie", "Liskov",
         "Margaret", "Niklaus", "Radia", "Tony", "Whitfield", "Yukihiro"]
LAST = ["Allen", "Backus", "Cerf", "Dijkstra", "Gray", "Hamilton", "Hoare", "Hopper", "Knuth",
        "Lamport", "Lovelace", "Perlman", "Ritchie", "Stonebraker", "Thompson", "Turing"]
STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled"]
STATUS_P = [0.05, 0.10, 0.15, 0.62, 0.08]
EVENT_TYPES = ["view", "add_to_cart", "purchase"]
EVENT_P = [0.80, 0.15, 0.05]
START = datetime(2025, 1, 1)
DAYS = 365


def generate(size: str = "small", seed: int = SEED) -> dict[str, list[tuple]]:
    """Rows of every table for `size`, as tuples in SCHEMA's column order."""
    import numpy as np

    if size not in SIZES:
        raise ValueError(f"Unknown dataset size {size!r}: choose one of {', '.join(SIZES)}.")
    n_cust, n_prod, n_orders, n_events = SIZES[size]
    rng = np.random.default_rng(seed)

    first = rng.integers(0, len(FIRST), n_cust)
    last = rng.integers(0, len(LAST), n_cust)
    country = rng.choice(len(COUNTRIES), n_cust, p=_zipf_p(len(COUNTRIES), 0.8))
    signup = rng.integers(0, DAYS, n_cust)
    customers = [(i + 1, f"{FIRST[f]} {LAST[la]}", f"{FIRST[f].lower()}.{LAST[la].lower()}.{i + 1}@example.com",
                  COUNTRIES[c], (START.date() + timedelta(days=int(d))).isoformat())
                 for i, (f, la, c, d) in enumerate(zip(first, last, country, signup, strict=True))]

    cat = rng.integers(0, len(CATEGORIES), n_prod)
    price = np.round(np.exp(rng.normal(7.5, 1.0, n_prod))).astype(int) + 99   # log-normal prices
    stock = rng.integers(0, 500, n_prod)
    products = [(i + 1, f"SKU-{i + 1:06d}", f"{CATEGORIES[c].title()} item {i + 1}", CATEGORIES[c], int(p), int(s))
                for i, (c, p, s) in enumerate(zip(cat, price, stock, strict=True))]

    # Popularity is Zipf-skewed: a few products and customers account for most activity.
    prod_p = _zipf_p(n_prod, 1.1)
    cust_p = _zipf_p(n_cust, 0.6)
    o_cust = rng.choice(n_cust, n_orders, p=cust_p) + 1
    o_secs = np.sort(rng.integers(0, DAYS * 86400, n_orders))
    o_status = rng.choice(len(STATUSES), n_orders, p=STATUS_P)
    orders = [(i + 1, int(c), _ts(s), STATUSES[st])
              for i, (c, s, st) in enumerate(zip(o_cust, o_secs, o_status, strict=True))]

    lines = rng.integers(1, 5, n_orders)               # 1-4 lines per order
    total = int(lines.sum())
    i_prod = rng.choice(n_prod, total, p=prod_p) + 1
    i_qty = rng.choice(4, total, p=[0.7, 0.2, 0.07, 0.03]) + 1
    order_items, k = [], 0
    for oid, n in enumerate(lines, start=1):
        for line_no in range(1, int(n) + 1):
            pid = int(i_prod[k])
            order_items.append((oid, line_no, pid, int(i_qty[k]), products[pid - 1][4]))
            k += 1

    e_cust = rng.choice(n_cust, n_events, p=cust_p) + 1
    e_prod = rng.choice(n_prod, n_events, p=prod_p) + 1
    e_type = rng.choice(len(EVENT_TYPES), n_events, p=EVENT_P)
    e_secs = np.sort(rng.integers(0, DAYS * 86400, n_events))
    events = [(i + 1, int(c), int(p), EVENT_TYPES[t], _ts(s))
              for i, (c, p, t, s) in enumerate(zip(e_cust, e_prod, e_type, e_secs, strict=True))]
    return {"customers": customers, "products": products, "orders": orders,
            "order_items": order_items, "events": events}


def _zipf_p(n: int, alpha: float):
    import numpy as np

    w = 1.0 / np.arange(1, n + 1) ** alpha
    return w / w.sum()


def _ts(seconds) -> str:
    return (START + timedelta(seconds=int(seconds))).isoformat(sep=" ")


def to_csv_bytes(table: str, rows: list[tuple]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c for c, _, _ in SCHEMA[table]])
    w.writerows(rows)
    return buf.getvalue().encode()


def write(out: str | os.PathLike, size: str = "small", seed: int = SEED) -> dict:
    """Write `<out>/ecommerce/<table>.csv` and `<out>/manifest.json`; return the manifest."""
    out = Path(out)
    (out / "ecommerce").mkdir(parents=True, exist_ok=True)
    files = {}
    for table, rows in generate(size, seed).items():
        data = to_csv_bytes(table, rows)
        rel = f"ecommerce/{table}.csv"
        (out / rel).write_bytes(data)
        files[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(rows), "bytes": len(data)}
    manifest = {"generator": "python -m archlab.datasets", "seed": seed, "size": size, "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def verify(root: str | os.PathLike) -> list[str]:
    """Problems found comparing the files under `root` with its manifest ([] when all match)."""
    root = Path(root)
    manifest = json.loads((root / "manifest.json").read_text())
    problems = []
    for rel, meta in manifest["files"].items():
        path = root / rel
        if not path.exists():
            problems.append(f"{rel}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest")
    return problems


# -- finding and loading ----------------------------------------------------------------

def _shipped_root() -> Path | None:
    """The repository's datasets/ folder: $ARCHLAB_DATASETS, or found above the working
    directory (notebooks/, course/autograded/<student>/<id>/) or above this package."""
    env = os.environ.get("ARCHLAB_DATASETS")
    if env:
        return Path(env)
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            if (d / "datasets" / "manifest.json").exists():
                return d / "datasets"
    return None


def path(size: str = "small") -> Path:
    """Folder holding `<table>.csv` for `size`; generated into a cache on first use if not shipped."""
    if size not in SIZES:
        raise ValueError(f"Unknown dataset size {size!r}: choose one of {', '.join(SIZES)}.")
    root = _shipped_root()
    if size == "small" and root is not None and (root / "ecommerce" / "orders.csv").exists():
        return root / "ecommerce"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "archlab" / f"datasets-{size}"
    if not (cache / "ecommerce" / "events.csv").exists():
        write(cache, size)
    return cache / "ecommerce"


def load(table: str, size: str = "small"):
    """One table as a pandas DataFrame with dates and timestamps parsed."""
    import pandas as pd

    if table not in SCHEMA:
        raise ValueError(f"Unknown table {table!r}: choose one of {', '.join(TABLES)}.")
    dates = [c for c, t, _ in SCHEMA[table] if t in ("DATE", "TIMESTAMP")]
    return pd.read_csv(path(size) / f"{table}.csv", parse_dates=dates)


def ddl(table: str, engine: str = "postgres") -> str:
    """CREATE TABLE for `table`; engine is postgres, duckdb or sqlite."""
    cols = []
    for name, typ, constraint in SCHEMA[table]:
        if engine == "duckdb" and "REFERENCES" in constraint:
            constraint = constraint.split("REFERENCES")[0]   # DuckDB would refuse later deletes/updates
        cols.append(f"{name} {typ} {constraint}".strip())
    if table in PRIMARY_KEYS:
        cols.append(f"PRIMARY KEY ({', '.join(PRIMARY_KEYS[table])})")
    return f"CREATE TABLE {table} (\n  " + ",\n  ".join(cols) + "\n)"


def load_into(con, size: str = "small", tables=TABLES) -> dict[str, int]:
    """Create and fill the tables in a psycopg, DuckDB or sqlite3 connection; returns row counts.

    Existing tables of the same names are dropped first, so reruns give the same state.
    """
    kind = engine_of(con)
    folder = path(size)
    counts = {}
    for table in reversed(TABLES):
        if table in tables:
            con.execute(f"DROP TABLE IF EXISTS {table}" + (" CASCADE" if kind == "postgres" else ""))
    for table in (t for t in TABLES if t in tables):
        con.execute(ddl(table, kind))
        csv_path = folder / f"{table}.csv"
        if kind == "postgres":
            with con.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") as cp:
                cp.write(csv_path.read_bytes())
        elif kind == "duckdb":
            con.execute(f"INSERT INTO {table} SELECT * FROM read_csv(?, header = true)", [str(csv_path)])
        else:
            with open(csv_path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(header))})", reader)
        counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if kind == "postgres" and not con.autocommit:
        con.commit()
    if kind == "sqlite":
        con.commit()
    return counts


def engine_of(con) -> str:
    mod = type(con).__module__
    if mod.startswith("psycopg"):
        return "postgres"
    if mod.startswith("duckdb") or mod.startswith("_duckdb"):
        return "duckdb"
    if mod.startswith("sqlite3"):
        return "sqlite"
    raise TypeError(f"load_into() takes a psycopg, DuckDB or sqlite3 connection, not {type(con).__name__}.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m archlab.datasets", description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=list(SIZES))
    ap.add_argument("--out", default="datasets", help="folder to write (default: datasets)")
    ap.add_argument("--check", action="store_true", help="verify the files against the manifest instead")
    args = ap.parse_args(argv)
    if args.check:
        problems = verify(args.out)
        print("\n".join(problems) or "all files match the manifest")
        return 1 if problems else 0
    m = write(args.out, args.size)
    for rel, meta in m["files"].items():
        print(f"{rel}: {meta['rows']} rows, {meta['bytes']} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
