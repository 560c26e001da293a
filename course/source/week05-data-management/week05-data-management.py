# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Week 5-6: Data Management
#
# **Guide:** Phase 1, 1.1 Database & Storage Fundamentals, Week 5-6 (Data Modeling, Data Partitioning,
# Data Retention, Hot/Cold Storage) and the practical exercises "design schemas for e-commerce and social
# media use cases" and "practice query optimization with EXPLAIN plans".
#
# **Time:** about 4 hours (2 h reading and running, 2 h exercises).
#
# **Points:** 25 (four autograded exercises, 21 points; one written answer, 4 points).
#
# **Prerequisites:** week 1-2 (SQL, keys, constraints) and week 3-4 (reading EXPLAIN plans, WAL); Python
# functions, sets and `datetime`.
#
# **Reading:** Kleppmann, *Designing Data-Intensive Applications* (DDIA), ch. 2 "Data Models and Query
# Languages" (normalization, one-to-many and many-to-one relationships), ch. 3 "Storage and Retrieval"
# (column-oriented storage), ch. 6 "Partitioning"; PostgreSQL manual, "Table Partitioning" (5.12); the
# GDPR, articles 5(1)(e) (storage limitation) and 17 (right to erasure).
#
# **How to use this notebook:** run the cells from top to bottom (Run → Run All Cells works); PostgreSQL and
# DuckDB run inside this kernel on 127.0.0.1 and nothing reaches the internet. Write your answers where a cell
# says `YOUR CODE HERE`, then run the test cell below it (more tests run when your work is graded). Reruns give
# the same data; timings differ a little from run to run, so the text speaks of ratios computed in the cells.
# Back to the [course map](00-start-here.ipynb).

# %% [markdown]
# ## Learning objectives
#
# By the end of this notebook you can:
#
# 1. find the functional dependencies in a flat table, show its update, insert and delete anomalies on a real
#    database, normalize it to third normal form, and denormalize a read path on purpose, knowing the price
#    (Data Modeling);
# 2. partition a PostgreSQL table by range and by hash, predict from a query's `WHERE` clause which partitions
#    it reads, and check the prediction in EXPLAIN; split rarely used columns off a wide table and measure the
#    bytes a columnar engine reads (Data Partitioning);
# 3. write retention rules as code, compare the cost of deleting expired rows with dropping a partition, honour
#    legal holds, and erase one person's data, knowing where copies survive (Data Retention);
# 4. price data in storage tiers with retrieval fees and minimum durations, compute the access rate at which
#    two tiers cost the same, and find the cheapest lifecycle (Hot/Cold Storage).

# %% [markdown]
# ### Set-up
#
# One PostgreSQL server for the whole notebook, a fresh `week05` database holding the course's e-commerce
# data set (customers, products, orders, order lines, click events), and a temporary folder for files.

# %%
import json
import math
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go
import psycopg

import archlab
from archlab import datasets, explain, storage_costs
from archlab.exercises import needs
from archlab.workloads import time_runs

random.seed(5)
pg = archlab.postgres()                        # a real PostgreSQL server on 127.0.0.1
db = pg.create_database("week05")              # recreated: every run starts from the same state
conn = pg.connect(db)
counts = datasets.load_into(conn, "small")
conn.execute("ANALYZE")
workdir = Path(tempfile.mkdtemp(prefix="week05-"))   # every file this notebook writes goes here


def q(sql, params=None, con=None):
    """Run `sql` and return the result as a DataFrame."""
    cur = (con or conn).execute(sql, params)
    return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])


counts

# %% [markdown]
# ## Data Modeling: normalization and deliberate denormalization
#
# A **functional dependency** `X → Y` says: rows that agree on `X` agree on `Y` (a customer id determines the
# customer's email). Normal forms are rules about which dependencies a table may contain:
#
# | form | rule | what breaks it |
# |---|---|---|
# | 1NF | every value is atomic; no repeating groups | a `products` column holding "pen, book, lamp" |
# | 2NF | 1NF, and no non-key column depends on **part** of a composite key | `status` in a table keyed by `(order_id, line_no)`: it depends on `order_id` alone |
# | 3NF | 2NF, and no non-key column depends on another non-key column (no **transitive** dependency) | `customer_email` next to `customer_id` in an orders table: `order_id → customer_id → customer_email` |
#
# A table that breaks them stores one fact many times, which produces three **anomalies**: an *update
# anomaly* (change a fact in some of its copies and the table contradicts itself), an *insert anomaly* (a
# fact cannot be recorded until an unrelated fact exists) and a *delete anomaly* (deleting one fact loses
# another). Here is the kind of table an export or a hurried first version produces: one row per order
# line, with everything about the order, the customer and the product copied into it.

# %%
conn.execute("DROP TABLE IF EXISTS orders_flat")
conn.execute("""
CREATE TABLE orders_flat AS
SELECT o.order_id, i.line_no, o.created_at, o.status,
       c.customer_id, c.name AS customer_name, c.email AS customer_email, c.country AS customer_country,
       p.product_id, p.name AS product_name, p.category, i.quantity, i.unit_price_cents
FROM order_items i JOIN orders o USING (order_id) JOIN customers c USING (customer_id)
JOIN products p USING (product_id)""")
conn.execute("ALTER TABLE orders_flat ADD PRIMARY KEY (order_id, line_no)")
conn.execute("ANALYZE orders_flat")
q("SELECT * FROM orders_flat ORDER BY order_id, line_no LIMIT 5")

# %% [markdown]
# The key is `(order_id, line_no)`. Which other dependencies hold? A dependency `X → Y` holds in the data
# when no value of `X` appears with two values of `Y`; one SQL query per candidate checks it:

# %%
CANDIDATES = [("order_id", "customer_id"), ("order_id", "status"), ("customer_id", "customer_email"),
              ("customer_id", "customer_country"), ("product_id", "product_name"), ("product_id", "category"),
              ("product_id", "unit_price_cents"), ("customer_country", "customer_id"), ("category", "product_id")]
fds = []
for lhs, rhs in CANDIDATES:
    violations = conn.execute(f"SELECT count(*) FROM (SELECT {lhs} FROM orders_flat GROUP BY {lhs} "
                              f"HAVING count(DISTINCT {rhs}) > 1) v").fetchone()[0]
    copies = conn.execute(f"SELECT count(*)::float / count(DISTINCT {lhs}) FROM orders_flat").fetchone()[0]
    fds.append({"dependency": f"{lhs} → {rhs}", "holds in the data": violations == 0,
                "values of X with >1 Y": violations, "rows per value of X (copies)": round(copies, 1)})
pd.DataFrame(fds)

# %% [markdown]
# `order_id → status` depends on part of the key (2NF is broken); `order_id → customer_id → customer_email`
# and `product_id → product_name` are transitive dependencies through non-key columns (3NF is broken). `product_id → unit_price_cents` also holds, but only
# because no price changed during the year this data covers: the business rule is that a line keeps the
# price it was sold at, so the price is a fact about the **line**. Data shows which dependencies hold so
# far; only the meaning of the columns says which must always hold.
#
# The last column counts the copies: each customer's email is stored once per order line of theirs. The
# three anomalies, on the real table (each runs in a transaction that is rolled back, so the table is
# unchanged afterwards):

# %%
victim, lines_of_victim = conn.execute(
    "SELECT customer_id, count(*) FROM orders_flat GROUP BY customer_id ORDER BY count(*) DESC, customer_id "
    "LIMIT 1").fetchone()
lonely = conn.execute("SELECT customer_id FROM orders_flat GROUP BY customer_id HAVING count(DISTINCT order_id) = 1 "
                      "ORDER BY customer_id LIMIT 1").fetchone()[0]
anomalies = []
with conn.transaction(force_rollback=True):
    # update anomaly: support changes the email on the customer's latest order only
    conn.execute("UPDATE orders_flat SET customer_email = 'new.address@example.com' WHERE customer_id = %s "
                 "AND order_id = (SELECT max(order_id) FROM orders_flat WHERE customer_id = %s)", (victim, victim))
    emails = conn.execute("SELECT count(DISTINCT customer_email) FROM orders_flat WHERE customer_id = %s",
                          (victim,)).fetchone()[0]
    anomalies.append({"anomaly": "update", "what we did": f"changed customer {victim}'s email on one order",
                      "what the table now says": f"customer {victim} has {emails} different emails"})
    # insert anomaly: a new product nobody has ordered yet
    try:
        with conn.transaction():
            conn.execute("INSERT INTO orders_flat (product_id, product_name, category) VALUES (999, 'New lamp', 'home')")
        outcome = "accepted"
    except psycopg.errors.NotNullViolation as e:
        outcome = f"refused: {e.diag.message_primary}"
    anomalies.append({"anomaly": "insert", "what we did": "added a product that has no order yet",
                      "what the table now says": outcome})
    # delete anomaly: cancel-and-delete the only order of a customer
    conn.execute("DELETE FROM orders_flat WHERE customer_id = %s", (lonely,))
    left = conn.execute("SELECT count(*) FROM orders_flat WHERE customer_id = %s", (lonely,)).fetchone()[0]
    anomalies.append({"anomaly": "delete", "what we did": f"deleted the only order of customer {lonely}",
                      "what the table now says": f"{left} rows know customer {lonely}'s name, email or country"})
pd.DataFrame(anomalies)

# %% [markdown]
# The cure is to store each fact once, in a table whose key determines it: customers keyed by `customer_id`,
# products by `product_id`, orders by `order_id`, lines by `(order_id, line_no)`. Every non-key column then
# depends on "the key, the whole key and nothing but the key" (3NF), and constraints make the database refuse
# what the flat table accepted.
#
# ### Exercise 1: normalize the flat orders table (6 points)
#
# Write the migration: DDL for the four 3NF tables and the `INSERT ... SELECT` statements that fill them from
# `orders_flat`. The tests run your script on their own flat tables in a fresh database, rebuild the flat rows
# with joins (nothing may be lost), and try the anomalies and other bad rows against your constraints.

# %% nbgrader={"grade_id": "week05-data-management-ex01-normalize-orders", "solution": true}
def normalize_sql() -> str:
    """SQL (several statements separated by `;`) that, in a database holding `orders_flat` (the columns shown
    above, primary key (order_id, line_no)), creates and fills exactly these tables and columns:

    customers    customer_id integer primary key; name text required; email text required and unique;
                 country text required.
    products     product_id integer primary key; name text required; category text required.
    orders       order_id integer primary key; customer_id required, must be an existing customer;
                 created_at timestamp required; status text required.
    order_lines  order_id required, must be an existing order; line_no integer required; product_id required,
                 must be an existing product; quantity integer required, > 0; unit_price_cents integer
                 required, >= 0; primary key (order_id, line_no).

    Fill them from orders_flat and leave orders_flat unchanged. The price a line was sold at belongs to the
    line: the same product may have been sold at different prices.
    """
    ### BEGIN SOLUTION
    return """
    CREATE TABLE customers (
      customer_id integer PRIMARY KEY,
      name        text NOT NULL,
      email       text NOT NULL UNIQUE,
      country     text NOT NULL
    );
    CREATE TABLE products (
      product_id integer PRIMARY KEY,
      name       text NOT NULL,
      category   text NOT NULL
    );
    CREATE TABLE orders (
      order_id    integer PRIMARY KEY,
      customer_id integer NOT NULL REFERENCES customers (customer_id),
      created_at  timestamp NOT NULL,
      status      text NOT NULL
    );
    CREATE TABLE order_lines (
      order_id         integer NOT NULL REFERENCES orders (order_id),
      line_no          integer NOT NULL,
      product_id       integer NOT NULL REFERENCES products (product_id),
      quantity         integer NOT NULL CHECK (quantity > 0),
      unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
      PRIMARY KEY (order_id, line_no)
    );
    INSERT INTO customers SELECT DISTINCT customer_id, customer_name, customer_email, customer_country FROM orders_flat;
    INSERT INTO products SELECT DISTINCT product_id, product_name, category FROM orders_flat;
    INSERT INTO orders SELECT DISTINCT order_id, customer_id, created_at, status FROM orders_flat;
    INSERT INTO order_lines SELECT order_id, line_no, product_id, quantity, unit_price_cents FROM orders_flat;
    """
    ### END SOLUTION


# %% nbgrader={"grade_id": "week05-data-management-ex01-normalize-orders-tests", "grade": true, "points": 2}
_FLAT_DDL = """CREATE TABLE orders_flat (order_id integer, line_no integer, created_at timestamp, status text,
  customer_id integer, customer_name text, customer_email text, customer_country text, product_id integer,
  product_name text, category text, quantity integer, unit_price_cents integer, PRIMARY KEY (order_id, line_no))"""
_ROWS = [
    (1, 1, "2025-02-01 10:00", "paid", 10, "Ada", "ada@example.com", "GB", 100, "Pen", "office", 2, 150),
    (1, 2, "2025-02-01 10:00", "paid", 10, "Ada", "ada@example.com", "GB", 101, "Ink", "office", 1, 900),
    (2, 1, "2025-02-03 09:30", "shipped", 11, "Alan", "alan@example.com", "GB", 100, "Pen", "office", 5, 150),
    (3, 1, "2025-02-04 17:45", "placed", 10, "Ada", "ada@example.com", "GB", 102, "Lamp", "home", 1, 4500),
]
_pg = archlab.postgres()
_pg.create_database("week05_ex01")
with _pg.connect("week05_ex01") as _c:
    _c.execute(_FLAT_DDL)
    _c.cursor().executemany("INSERT INTO orders_flat VALUES (" + ", ".join(["%s"] * 13) + ")", _ROWS)
    _c.execute(normalize_sql())
    _n = {t: _c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
          for t in ("customers", "products", "orders", "order_lines", "orders_flat")}
    assert _n == {"customers": 2, "products": 3, "orders": 3, "order_lines": 4, "orders_flat": 4}, _n
    _back = _c.execute("""SELECT o.order_id, l.line_no, c.email, p.name, l.quantity, l.unit_price_cents
        FROM order_lines l JOIN orders o USING (order_id) JOIN customers c USING (customer_id)
        JOIN products p USING (product_id) ORDER BY 1, 2""").fetchall()
    assert _back == [(r[0], r[1], r[6], r[9], r[11], r[12]) for r in _ROWS], _back
    try:
        with _c.transaction():
            _c.execute("INSERT INTO customers (customer_id, name, email, country) VALUES (10, 'Ada', 'a@x', 'GB')")
    except psycopg.errors.IntegrityError:
        pass
    else:
        raise AssertionError("customers accepted a second row for customer 10")
print("visible tests passed")

# %% nbgrader={"grade_id": "week05-data-management-ex01-normalize-orders-hidden", "grade": true, "points": 4}
assert isinstance(normalize_sql(), str)
### BEGIN HIDDEN TESTS
import psycopg as _psycopg

import archlab as _archlab

_FLAT_DDL = """CREATE TABLE orders_flat (order_id integer, line_no integer, created_at timestamp, status text,
  customer_id integer, customer_name text, customer_email text, customer_country text, product_id integer,
  product_name text, category text, quantity integer, unit_price_cents integer, PRIMARY KEY (order_id, line_no))"""
_ROWS = [   # product 7 sold at two prices; customer 21 has three orders; customer 23 has one
    (50, 1, "2025-05-01 08:00", "delivered", 21, "Grace", "grace@example.com", "US", 7, "Kettle", "kitchen", 1, 2999),
    (50, 2, "2025-05-01 08:00", "delivered", 21, "Grace", "grace@example.com", "US", 8, "Mug", "kitchen", 4, 799),
    (51, 1, "2025-06-11 12:00", "paid", 22, "Edsger", "edsger@example.com", "NL", 7, "Kettle", "kitchen", 2, 2499),
    (52, 1, "2025-07-02 19:10", "cancelled", 21, "Grace", "grace@example.com", "US", 9, "Tea", "food", 3, 0),
    (53, 1, "2025-07-03 07:00", "shipped", 23, "Barbara", "barbara@example.com", "US", 8, "Mug", "kitchen", 1, 799),
    (53, 2, "2025-07-03 07:00", "shipped", 23, "Barbara", "barbara@example.com", "US", 7, "Kettle", "kitchen", 1, 2999),
    (54, 1, "2025-08-09 21:00", "placed", 21, "Grace", "grace@example.com", "US", 9, "Tea", "food", 10, 350),
]
_pg = _archlab.postgres()
_pg.create_database("week05_ex01h")
with _pg.connect("week05_ex01h") as _c:
    _c.execute(_FLAT_DDL)
    _c.cursor().executemany("INSERT INTO orders_flat VALUES (" + ", ".join(["%s"] * 13) + ")", _ROWS)
    _c.execute(normalize_sql())
    _cols = {}
    for _t, _col in _c.execute("SELECT table_name, column_name FROM information_schema.columns "
                               "WHERE table_schema = 'public'").fetchall():
        _cols.setdefault(_t, set()).add(_col)
    _want = {"customers": {"customer_id", "name", "email", "country"},
             "products": {"product_id", "name", "category"},
             "orders": {"order_id", "customer_id", "created_at", "status"},
             "order_lines": {"order_id", "line_no", "product_id", "quantity", "unit_price_cents"}}
    for _t, _w in _want.items():
        assert _cols.get(_t) == _w, f"{_t} has columns {sorted(_cols.get(_t, []))}, expected {sorted(_w)}"
    _n = {t: _c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (*_want, "orders_flat")}
    assert _n == {"customers": 3, "products": 3, "orders": 5, "order_lines": 7, "orders_flat": 7}, _n
    _back = _c.execute("""SELECT o.order_id, l.line_no, o.created_at::text, o.status, c.customer_id, c.name, c.email,
        c.country, p.product_id, p.name, p.category, l.quantity, l.unit_price_cents
        FROM order_lines l JOIN orders o USING (order_id) JOIN customers c USING (customer_id)
        JOIN products p USING (product_id) ORDER BY 1, 2""").fetchall()
    assert [tuple(r) for r in _back] == [(*r[:2], r[2] + ":00", *r[3:]) for r in _ROWS], _back
    # the anomalies are gone
    _c.execute("UPDATE customers SET email = 'grace@new.example.com' WHERE customer_id = 21")
    assert _c.execute("SELECT count(DISTINCT c.email) FROM orders o JOIN customers c USING (customer_id) "
                      "WHERE o.customer_id = 21").fetchone()[0] == 1
    _c.execute("INSERT INTO products (product_id, name, category) VALUES (99, 'Teapot', 'kitchen')")
    _c.execute("DELETE FROM order_lines WHERE order_id = 53")
    _c.execute("DELETE FROM orders WHERE order_id = 53")
    assert _c.execute("SELECT email FROM customers WHERE customer_id = 23").fetchone() == ("barbara@example.com",)
    _lines = "INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price_cents) VALUES "
    _refused = {
        "second row for a customer": "INSERT INTO customers VALUES (22, 'E', 'e2@example.com', 'NL')",
        "duplicate email": "INSERT INTO customers VALUES (30, 'G', 'grace@new.example.com', 'US')",
        "customer without email": "INSERT INTO customers VALUES (31, 'X', NULL, 'US')",
        "customer without country": "INSERT INTO customers VALUES (32, 'X', 'x@example.com', NULL)",
        "product without name": "INSERT INTO products VALUES (98, NULL, 'food')",
        "second row for a product": "INSERT INTO products VALUES (7, 'Kettle 2', 'kitchen')",
        "order of an unknown customer": "INSERT INTO orders VALUES (60, 999, '2025-09-01', 'paid')",
        "order without a status": "INSERT INTO orders VALUES (61, 21, '2025-09-01', NULL)",
        "second row for an order": "INSERT INTO orders VALUES (50, 22, '2025-09-01', 'paid')",
        "line of an unknown order": _lines + "(999, 1, 7, 1, 100)",
        "line of an unknown product": _lines + "(51, 2, 999, 1, 100)",
        "duplicate line": _lines + "(50, 2, 7, 1, 100)",
        "zero quantity": _lines + "(51, 2, 7, 0, 100)",
        "negative price": _lines + "(51, 2, 7, 1, -1)",
        "line without a price": _lines + "(51, 2, 7, 1, NULL)",
        "deleting a customer with orders": "DELETE FROM customers WHERE customer_id = 21",
        "deleting a product on a line": "DELETE FROM products WHERE product_id = 8",
    }
    _accepted = []
    for _what, _sql in _refused.items():
        try:
            with _c.transaction():
                _c.execute(_sql)
        except _psycopg.errors.IntegrityError:
            continue
        _accepted.append(_what)
    assert not _accepted, f"the schema accepted: {_accepted}"
### END HIDDEN TESTS

# %% [markdown]
# Your migration, run on the notebook's real flat table into a schema `normalized` (the `search_path` makes
# `CREATE TABLE customers` land there while `orders_flat` is still found in `public`). Had the update anomaly
# above been committed, the `INSERT ... SELECT DISTINCT` into `customers` would fail with a duplicate key:
# a migration to 3NF is also a consistency check of the old data.

# %%
conn.execute("DROP SCHEMA IF EXISTS normalized CASCADE")
conn.execute("CREATE SCHEMA normalized")
conn.execute("SET search_path TO normalized, public")
try:
    conn.execute(normalize_sql())
finally:
    conn.execute("SET search_path TO public")       # also when your normalize_sql() is not written yet
conn.execute("ANALYZE")
sizes = q("""SELECT n.nspname || '.' || c.relname AS "table", c.reltuples::bigint AS "rows",
                    pg_total_relation_size(c.oid) AS "bytes (with indexes)"
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND (n.nspname = 'normalized' OR c.relname = 'orders_flat') ORDER BY 1""")
sizes

# %% [markdown]
# Compare the `customers` row count with the 1,000 customers of the data set: customers who never ordered
# were never in the flat table at all (the insert anomaly, already at work), so the migration cannot recover
# them.
#
# ### Joins vs duplication on a read path
#
# Normalization optimizes for writes and integrity; reads must join the pieces back. Is that expensive? Take
# the shop's two hottest reads: the **order page** (one order with its customer and product names, by
# `order_id`) and a **report** (revenue per customer country). We time each on the normalized tables and on
# the flat copy, and count the rows each design must change when a customer changes their email.

# %%
needs(conn.execute("SELECT to_regclass('normalized.orders')").fetchone()[0] is not None, "Exercise 1")
ORDER_PAGE = {
    "normalized (4-table join)": """SELECT o.order_id, o.created_at, o.status, c.name AS customer_name, c.email, l.line_no,
        p.name AS product_name, p.category, l.quantity, l.unit_price_cents FROM normalized.orders o
        JOIN normalized.customers c USING (customer_id) JOIN normalized.order_lines l USING (order_id)
        JOIN normalized.products p USING (product_id) WHERE o.order_id = %s ORDER BY l.line_no""",
    "flat (denormalized)": """SELECT order_id, created_at, status, customer_name, customer_email, line_no, product_name,
        category, quantity, unit_price_cents FROM orders_flat WHERE order_id = %s ORDER BY line_no""",
}
REPORT = {
    "normalized (4-table join)": """SELECT c.country, sum(l.quantity * l.unit_price_cents) FROM normalized.order_lines l
        JOIN normalized.orders o USING (order_id) JOIN normalized.customers c USING (customer_id) GROUP BY 1""",
    "flat (denormalized)": "SELECT customer_country, sum(quantity * unit_price_cents) FROM orders_flat GROUP BY 1",
}
page_ids = random.Random(1).sample(range(1, counts["orders"] + 1), 200)
assert q(ORDER_PAGE["normalized (4-table join)"], (page_ids[0],)).values.tolist() == \
    q(ORDER_PAGE["flat (denormalized)"], (page_ids[0],)).values.tolist()
reads = []
for design in ORDER_PAGE:
    page = time_runs(lambda d=design: [conn.execute(ORDER_PAGE[d], (i,)).fetchall() for i in page_ids], repeat=3)
    report = time_runs(lambda d=design: conn.execute(REPORT[d]).fetchall(), repeat=3)
    reads.append({"design": design, "order page (ms per page)": sorted(page)[1] / len(page_ids) * 1000,
                  "country report (ms)": sorted(report)[1] * 1000})
email_rows = {"normalized (4-table join)": 1, "flat (denormalized)": lines_of_victim}
reads = pd.DataFrame(reads).set_index("design")
reads[f"rows to update when customer {victim} changes email"] = [email_rows[d] for d in reads.index]
reads.round(3)

# %%
page_ratio = reads.iloc[0, 0] / reads.iloc[1, 0]
report_ratio = reads.iloc[0, 1] / reads.iloc[1, 1]
print(f"order page: the join costs {page_ratio:.1f}× the flat lookup; report: {report_ratio:.1f}×; "
      f"one email change: {lines_of_victim} rows instead of 1")

# %% [markdown]
# Read the ratios printed above: a key lookup that joins four small indexed tables costs the same order of
# magnitude as one lookup in a flat table (each join is one more index probe), and the report pays for a hash
# join over every line. The flat table pays on every write instead: a change to one customer rewrites as many
# rows as they have order lines, and nothing stops the copies from disagreeing.
#
# **Deliberate denormalization** keeps the normalized tables as the source of truth and derives a read-optimized
# copy from them, with a stated refresh rule. The simplest is a materialized view: the join is computed once,
# reads are single-table lookups, and the copy is stale until refreshed.

# %%
needs(conn.execute("SELECT to_regclass('normalized.orders')").fetchone()[0] is not None, "Exercise 1")
conn.execute("DROP MATERIALIZED VIEW IF EXISTS order_page")
conn.execute("CREATE MATERIALIZED VIEW order_page AS " + ORDER_PAGE["normalized (4-table join)"].split(" WHERE ")[0])
conn.execute("CREATE INDEX ON order_page (order_id)")
refresh = time_runs(lambda: conn.execute("REFRESH MATERIALIZED VIEW order_page"), repeat=3, warmup=0)
with conn.transaction(force_rollback=True):
    conn.execute("UPDATE normalized.customers SET email = 'moved@example.com' WHERE customer_id = %s", (victim,))
    seen = conn.execute("SELECT DISTINCT email FROM order_page WHERE order_id IN "
                        "(SELECT order_id FROM normalized.orders WHERE customer_id = %s)", (victim,)).fetchall()
print(f"after the update, the view still shows {seen}: stale until the next refresh, "
      f"which rebuilds every row (median {sorted(refresh)[1] * 1000:.0f} ms here)")

# %% [markdown]
# That is the trade in one line: the view makes reads cheap and gives up freshness; a trigger-maintained copy
# would stay fresh and make every write to `customers` slower. Choose per read path, and write the refresh
# rule down next to the copy.

# %% [markdown]
# ## Data Partitioning
#
# **Horizontal partitioning** splits a table's *rows* into partitions by a partition key; **vertical
# partitioning** splits its *columns* into tables (or files) that share the primary key. PostgreSQL's
# declarative partitioning makes one parent table whose rows live in child tables:
#
# - `PARTITION BY RANGE (ts)`: each partition holds a key interval `[from, to)`, e.g. one month. Queries on a
#   time window read few partitions, and old data leaves by dropping a partition.
# - `PARTITION BY HASH (customer_id)`: rows go to partition `hash(key) mod m`. Spreads rows evenly; a query
#   for one key reads one partition; a range of keys reads all of them.
# - `PARTITION BY LIST (country)`: explicit values per partition. Partitions can be partitioned again
#   (sub-partitioning).
#
# **Partition pruning**: the planner compares the query's `WHERE` clause with each partition's bounds and
# leaves out partitions that cannot hold matching rows. It can only do that when the clause constrains the
# partition key itself: `ts >= '2025-03-01'` prunes; `date_trunc('month', ts) = '2025-03-01'` does not,
# because the planner cannot invert the function.

# %%
conn.execute("DROP TABLE IF EXISTS events_by_month, events_by_customer CASCADE")
conn.execute("CREATE TABLE events_by_month (LIKE events) PARTITION BY RANGE (ts)")
for m in range(1, 13):
    lo, hi = datetime(2025, m, 1), datetime(2025 + m // 12, m % 12 + 1, 1)
    conn.execute(f"CREATE TABLE events_by_month_{m:02d} PARTITION OF events_by_month "
                 f"FOR VALUES FROM ('{lo}') TO ('{hi}')")
conn.execute("CREATE TABLE events_by_customer (LIKE events) PARTITION BY HASH (customer_id)")
for r in range(4):
    conn.execute(f"CREATE TABLE events_by_customer_{r} PARTITION OF events_by_customer "
                 f"FOR VALUES WITH (MODULUS 4, REMAINDER {r})")
for t in ("events_by_month", "events_by_customer"):
    conn.execute(f"INSERT INTO {t} SELECT * FROM events")
    conn.execute(f"ANALYZE {t}")
spread = q("""SELECT tableoid::regclass::text AS partition, count(*) AS rows FROM events_by_month GROUP BY 1
              UNION ALL SELECT tableoid::regclass::text, count(*) FROM events_by_customer GROUP BY 1 ORDER BY 1""")
spread.set_index("partition").T

# %% [markdown]
# One restriction follows from partitions being separate tables with separate indexes: a primary key or
# unique constraint on the parent must include the partition key, because uniqueness is only checked inside
# one partition.

# %%
try:
    conn.execute("ALTER TABLE events_by_month ADD PRIMARY KEY (event_id)")
except psycopg.errors.FeatureNotSupported as e:
    print("refused:", e.diag.message_primary, "|", e.diag.message_detail)
_ = conn.execute("ALTER TABLE events_by_month ADD PRIMARY KEY (event_id, ts)")   # includes the key: accepted

# %% [markdown]
# Now the plans. For each query and each table, which partitions does PostgreSQL read? The table below is
# built from the real EXPLAIN output: every scan node names the relation it reads.

# %%
PART_QUERIES = {
    "one month (ts range)": "SELECT count(*) FROM {table} WHERE ts >= '2025-03-01' AND ts < '2025-04-01'",
    "one customer": "SELECT count(*) FROM {table} WHERE customer_id = 7",
    "one customer in one month": ("SELECT count(*) FROM {table} WHERE customer_id = 7 "
                                  "AND ts >= '2025-03-01' AND ts < '2025-04-01'"),
    "one month via date_trunc(ts)": "SELECT count(*) FROM {table} WHERE date_trunc('month', ts) = '2025-03-01'",
    "customers 1-10 (a key range)": "SELECT count(*) FROM {table} WHERE customer_id BETWEEN 1 AND 10",
}
TABLES = {"not partitioned": "events", "range by month": "events_by_month", "hash by customer": "events_by_customer"}


def relations_read(plan):
    """Names of the tables a plan scans (the word after 'on' in each scan node)."""
    return sorted({n.detail.split()[1] for n in plan.walk() if "Scan" in n.name and n.detail.startswith("on ")})


pruning = {}
for label, sql in PART_QUERIES.items():
    row = {}
    for design, table in TABLES.items():
        plan = explain.postgres_plan(conn, sql.format(table=table))
        total = 12 if design == "range by month" else 4 if design == "hash by customer" else 1
        row[design] = f"{len(relations_read(plan))} of {total}"
    pruning[label] = row
pd.DataFrame(pruning).T

# %% [markdown]
# Each partitioning serves the queries that constrain its key: monthly ranges prune time windows down to one
# partition and cannot help a customer lookup; hash partitions find one customer's partition and must read
# all of them for a time window or a range of customer ids (hashing destroys order). The `date_trunc` query
# reads all twelve months even though it asks for one. Here are two of those plans as tables:

# %%
plan_pruned = explain.postgres_plan(conn, PART_QUERIES["one month (ts range)"].format(table="events_by_month"))
plan_unpruned = explain.postgres_plan(conn, PART_QUERIES["one month via date_trunc(ts)"].format(table="events_by_month"))
print("ts range: reads", relations_read(plan_pruned))
display(explain.plan_table(plan_pruned))
print("date_trunc(ts): reads", len(relations_read(plan_unpruned)), "partitions")
explain.plan_table(plan_unpruned).head(6)

# %% [markdown]
# Try it in the widget: pick a query and a table design, and tick the box to switch pruning off
# (`enable_partition_pruning = off`), which makes the planner read every partition like the `date_trunc`
# query does. The widget uses its own session, so the setting does not leak into the rest of the notebook.

# %%
widget_conn = pg.connect(db)


def pruning_off(on: bool) -> None:
    widget_conn.execute(f"SET enable_partition_pruning = {'off' if on else 'on'}")


planners = {design: (lambda sql, t=table: explain.postgres_plan(widget_conn, sql.format(table=t)))
            for design, table in TABLES.items()}
archlab.widgets.explain_widget(PART_QUERIES, planners, {"switch partition pruning off": pruning_off})

# %% [markdown]
# ### Exercise 2: a partitioning plan that prunes (6 points)
#
# A multi-tenant analytics service stores page views. Two queries dominate: the monthly report (all tenants,
# one calendar month) and the tenant dashboard (one tenant, any time). Write the DDL for `page_views` so that
# both prune. The tests run your DDL in a fresh database, insert a year of rows, and read the real EXPLAIN
# plans: a design whose plans never prune fails.

# %% nbgrader={"grade_id": "week05-data-management-ex02-partition-plan", "solution": true}
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
    ### BEGIN SOLUTION
    parts = ["CREATE TABLE page_views (view_id bigint, tenant_id integer NOT NULL, viewed_at timestamp NOT NULL, "
             "url text) PARTITION BY RANGE (viewed_at)"]
    for m in range(1, 13):
        lo = f"2025-{m:02d}-01"
        hi = "2026-01-01" if m == 12 else f"2025-{m + 1:02d}-01"
        parts.append(f"CREATE TABLE page_views_{m:02d} PARTITION OF page_views FOR VALUES FROM ('{lo}') TO ('{hi}') "
                     "PARTITION BY HASH (tenant_id)")
        for r in range(4):
            parts.append(f"CREATE TABLE page_views_{m:02d}_{r} PARTITION OF page_views_{m:02d} "
                         f"FOR VALUES WITH (MODULUS 4, REMAINDER {r})")
    return ";\n".join(parts)
    ### END SOLUTION


# %% nbgrader={"grade_id": "week05-data-management-ex02-partition-plan-tests", "grade": true, "points": 2}
def _scanned(c, sql):
    """Leaf tables read by the plan of `sql` (this test's own reading of EXPLAIN's JSON)."""
    doc = c.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()[0]
    found, todo = set(), [doc[0]["Plan"]]
    while todo:
        node = todo.pop()
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        todo.extend(node.get("Plans", []))
    return found


_pg = archlab.postgres()
_pg.create_database("week05_ex02")
with _pg.connect("week05_ex02") as _c:
    _c.execute(page_views_ddl())
    _c.execute("INSERT INTO page_views SELECT g, 1 + g % 50, timestamp '2025-01-01' + (g * 7919 % 334) * interval '1 day' "
               "+ (g % 86400) * interval '1 second', '/p/' || g FROM generate_series(1, 3000) g")
    _c.execute("ANALYZE page_views")
    _leaves = _c.execute("SELECT count(*) FROM pg_partition_tree('page_views') WHERE isleaf").fetchone()[0]
    assert _c.execute("SELECT count(*) FROM page_views").fetchone()[0] == 3000
    assert _leaves >= 12, f"only {_leaves} leaf partitions"
    _month = _scanned(_c, "SELECT count(*) FROM page_views WHERE viewed_at >= '2025-03-01' AND viewed_at < '2025-04-01'")
    assert 1 <= len(_month) <= math.ceil(_leaves / 12), f"one month reads {len(_month)} of {_leaves} partitions"
    _tenant = _scanned(_c, "SELECT count(*) FROM page_views WHERE tenant_id = 7")
    assert 1 <= len(_tenant) <= math.ceil(_leaves / 4), f"one tenant reads {len(_tenant)} of {_leaves} partitions"
print(f"visible tests passed: {_leaves} leaf partitions; a month reads {len(_month)}, a tenant {len(_tenant)}")

# %% nbgrader={"grade_id": "week05-data-management-ex02-partition-plan-hidden", "grade": true, "points": 4}
assert isinstance(page_views_ddl(), str)
### BEGIN HIDDEN TESTS
import math as _math
from datetime import datetime as _dt
from datetime import timedelta as _td

import archlab as _archlab


def _scanned(c, sql):
    doc = c.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()[0]
    found, todo = set(), [doc[0]["Plan"]]
    while todo:
        node = todo.pop()
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        todo.extend(node.get("Plans", []))
    return found


_pg = _archlab.postgres()
_pg.create_database("week05_ex02h")
with _pg.connect("week05_ex02h") as _c:
    _c.execute(page_views_ddl())
    _c.execute("INSERT INTO page_views SELECT g, 1 + (g * 37) % 211, timestamp '2025-01-01' + (g * 104729 % 31535999) "
               "* interval '1 second', '/q/' || g FROM generate_series(1, 4000) g")
    _c.execute("INSERT INTO page_views VALUES (-1, 5, '2025-01-01 00:00:00', '/first'), "
               "(-2, 6, '2025-12-31 23:59:59.999999', '/last'), (-3, 7, '2025-02-28 23:59:59', '/feb'), "
               "(-4, 8, '2025-03-01 00:00:00', '/mar')")
    _c.execute("ANALYZE page_views")
    _leaves = _c.execute("SELECT count(*) FROM pg_partition_tree('page_views') WHERE isleaf").fetchone()[0]
    assert _c.execute("SELECT count(*) FROM page_views").fetchone()[0] == 4004
    def _month_sql(m):
        hi = "2026-01-01" if m == 12 else f"2025-{m + 1:02d}-01"
        return f"viewed_at >= '2025-{m:02d}-01' AND viewed_at < '{hi}'"

    for _m in (1, 6, 12):
        _got = _scanned(_c, f"SELECT count(*) FROM page_views WHERE {_month_sql(_m)}")
        assert 1 <= len(_got) <= _math.ceil(_leaves / 12), f"month {_m} reads {len(_got)} of {_leaves} partitions"
        _n = _c.execute(f"SELECT count(*) FROM page_views WHERE {_month_sql(_m)}").fetchone()[0]
        _expected = sum(1 for g in range(1, 4001) if (_dt(2025, 1, 1) + _td(seconds=g * 104729 % 31535999)).month == _m)
        _expected += {1: 1, 6: 0, 12: 1}[_m]
        assert _n == _expected, (_m, _n, _expected)
    _all = _scanned(_c, "SELECT count(*) FROM page_views")
    assert _leaves >= 12 and len(_all) == _leaves, f"{_leaves} leaf partitions, a full scan reads {len(_all)}"
    for _t in (42, 131, 200):
        _got = _scanned(_c, f"SELECT count(*) FROM page_views WHERE tenant_id = {_t}")
        assert 1 <= len(_got) <= _math.ceil(_leaves / 4), f"tenant {_t} reads {len(_got)} of {_leaves} partitions"
    for _t, _m in ((42, 2), (131, 12), (8, 3)):
        _got = _scanned(_c, f"SELECT * FROM page_views WHERE tenant_id = {_t} AND {_month_sql(_m)}")
        assert len(_got) == 1, f"tenant {_t} in month {_m} reads {sorted(_got)}"
    assert _c.execute("SELECT url FROM page_views WHERE view_id < 0 ORDER BY view_id").fetchall() == \
        [("/mar",), ("/feb",), ("/last",), ("/first",)]
### END HIDDEN TESTS

# %% [markdown]
# ### Vertical partitioning: wide vs narrow, measured in DuckDB on Parquet
#
# An orders table often carries a few wide columns that the hot paths never read (shipping address, notes,
# gift message). Vertical partitioning moves them into a second table that shares the key: the **hot** part
# stays narrow, the **cold** part is joined only when needed. How much that saves depends on the storage
# layout, so we measure two: Parquet (columnar: each column stored separately, compressed) and CSV (row
# oriented: a row's values are stored together). DuckDB writes both files itself and reports the bytes it
# read per query (`EXPLAIN ANALYZE`).

# %%
duck = duckdb.connect()
duck.execute("""CREATE TABLE orders_wide AS SELECT i AS order_id, 1 + i % 1000 AS customer_id,
    ['placed', 'paid', 'shipped', 'delivered', 'cancelled'][1 + i % 5] AS status,
    (i * 7919) % 100000 AS amount_cents, timestamp '2025-01-01' + i * interval '5 minute' AS created_at,
    md5(i::varchar) || ' ' || md5((-i)::varchar) AS shipping_address,
    md5((i + 1)::varchar) || md5((i + 2)::varchar) || md5((i + 3)::varchar) || md5((i + 4)::varchar) AS notes
    FROM range(100000) r(i)""")
HOT_COLS = "order_id, customer_id, status, amount_cents, created_at"
FILES = {"wide.parquet": "SELECT * FROM orders_wide", "hot.parquet": f"SELECT {HOT_COLS} FROM orders_wide",
         "cold.parquet": "SELECT order_id, shipping_address, notes FROM orders_wide",
         "wide.csv": "SELECT * FROM orders_wide", "hot.csv": f"SELECT {HOT_COLS} FROM orders_wide"}
for name, select in FILES.items():
    fmt = "parquet" if name.endswith("parquet") else "csv, HEADER"
    duck.execute(f"COPY ({select}) TO '{workdir / name}' (FORMAT {fmt})")
pd.DataFrame({"file": list(FILES), "MB on disk": [(workdir / f).stat().st_size / 1e6 for f in FILES]}).round(2)

# %%
def scan_stats(sql):
    """(MB DuckDB read, median seconds) for one query."""
    profile = json.loads(duck.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).fetchall()[0][1])
    seconds = sorted(time_runs(lambda: duck.execute(sql).fetchall(), repeat=3))[1]
    return profile["query"]["total_bytes_scanned"] / 1e6, seconds


VQUERIES = {
    "revenue per status (2 columns)": "SELECT status, sum(amount_cents) FROM '{f}' GROUP BY status",
    "order list: SELECT * for one week": "SELECT * FROM '{f}' WHERE created_at >= '2025-03-01' AND created_at < '2025-03-08'",
}
vertical = []
for label, sql in VQUERIES.items():
    for f in ("wide.parquet", "hot.parquet", "wide.csv", "hot.csv"):
        mb, s = scan_stats(sql.format(f=workdir / f))
        vertical.append({"query": label, "file": f, "MB read": mb, "median ms": s * 1000})
mb, s = scan_stats(f"SELECT * FROM '{workdir / 'hot.parquet'}' JOIN '{workdir / 'cold.parquet'}' USING (order_id) "
                   "WHERE order_id = 4242")
vertical.append({"query": "one order with its cold columns", "file": "hot.parquet ⨝ cold.parquet", "MB read": mb,
                 "median ms": s * 1000})
mb, s = scan_stats(f"SELECT * FROM '{workdir / 'wide.parquet'}' WHERE order_id = 4242")
vertical.append({"query": "one order with its cold columns", "file": "wide.parquet", "MB read": mb, "median ms": s * 1000})
vertical = pd.DataFrame(vertical)
vertical.round(3)

# %%
v = vertical.set_index(["query", "file"])["MB read"]
agg, page = VQUERIES
print(f"revenue per status: wide.parquet reads {v[agg, 'wide.parquet'] / v[agg, 'hot.parquet']:.1f}× the bytes of "
      f"hot.parquet, wide.csv {v[agg, 'wide.csv'] / v[agg, 'hot.csv']:.1f}× those of hot.csv")
print(f"SELECT * for one week: wide.parquet reads {v[page, 'wide.parquet'] / v[page, 'hot.parquet']:.1f}× the bytes "
      "of hot.parquet")

# %% [markdown]
# The ratios above tell the story. A columnar file is already vertically partitioned, column by column: a
# query naming two columns reads about the same bytes from the wide file as from the narrow one. A row format
# reads every byte of every row, so there the split pays in full. The columnar file still rewards the split
# for `SELECT *` (ORMs and "load the order list" endpoints ask for every column): the wide file hands over
# the notes and addresses nobody displays. The price of the split shows in the last two rows: a read that
# does need the cold columns now joins two files.

# %% [markdown]
# ## Data Retention
#
# Keeping data forever is neither free nor lawful: GDPR's *storage limitation* principle says personal data is
# kept no longer than its purpose needs, while tax and accounting law oblige a shop to keep invoices for years
# (often 6-10). A **retention policy** states, per kind of record, how long it is kept and what happens then
# (delete, anonymize, archive). Written as code, it can be reviewed, tested and run every night:

# %%
RETENTION_DAYS = {"view": 90, "add_to_cart": 180, "purchase": None}   # None: kept (orders back it up for tax)
NOW = datetime(2026, 1, 1)
q("""SELECT event_type, count(*) AS events,
            count(*) FILTER (WHERE ts < %(now)s - make_interval(days => CASE event_type WHEN 'view' THEN 90
                                   WHEN 'add_to_cart' THEN 180 END)) AS "expired on 2026-01-01"
     FROM events GROUP BY 1 ORDER BY 1""", {"now": NOW})

# %% [markdown]
# ### TTL deletes vs dropping partitions
#
# Two ways to remove expired rows: a **TTL delete** (`DELETE ... WHERE ts < cutoff`, run periodically) or
# **dropping a partition** whose whole range has expired (`DETACH PARTITION`, then `DROP TABLE` or archive
# it). A DELETE marks each row dead one by one and writes a WAL record per row (plus full page images after a
# checkpoint); the space returns only after VACUUM, which writes more WAL. Dropping a partition removes a
# file. We measure both on the same 240,000 log rows, expiring the first quarter (the WAL position before and
# after, `pg_current_wal_lsn()`, gives the bytes written).

# %%
conn.execute("DROP TABLE IF EXISTS logs_plain, logs_part CASCADE")
LOGS = ("SELECT g AS id, timestamp '2025-01-01' + (g - 1) * interval '131.4 second' AS ts, "
        "1 + g % 1000 AS customer_id, 'GET /products/' || (g % 5000) || ' 200 ' || md5(g::text) AS line "
        "FROM generate_series(1, 240000) g")
conn.execute(f"CREATE TABLE logs_plain AS {LOGS}")
conn.execute("CREATE TABLE logs_part (id bigint, ts timestamp, customer_id bigint, line text) PARTITION BY RANGE (ts)")
for m in range(1, 13):
    lo, hi = datetime(2025, m, 1), datetime(2025 + m // 12, m % 12 + 1, 1)
    conn.execute(f"CREATE TABLE logs_{m:02d} PARTITION OF logs_part FOR VALUES FROM ('{lo}') TO ('{hi}')")
conn.execute(f"INSERT INTO logs_part {LOGS}")
conn.execute("VACUUM ANALYZE logs_plain")
conn.execute("VACUUM ANALYZE logs_part")


def measured(*statements):
    """Run statements; return (WAL bytes written, seconds)."""
    conn.execute("CHECKPOINT")
    start = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    t0 = time.perf_counter()
    for sql in statements:
        conn.execute(sql)
    seconds = time.perf_counter() - t0
    wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (str(start),)).fetchone()[0]
    return int(wal), seconds


def size(table):
    return conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0] or 0


cutoff = "2025-04-01"
expired = conn.execute("SELECT count(*) FROM logs_plain WHERE ts < %s", (cutoff,)).fetchone()[0]
before = size("logs_plain")
wal_delete, s_delete = measured(f"DELETE FROM logs_plain WHERE ts < '{cutoff}'")
after_delete = size("logs_plain")
wal_vacuum, s_vacuum = measured("VACUUM logs_plain")
part_before = sum(size(f"logs_{m:02d}") for m in range(1, 13))
wal_drop, s_drop = measured(*[f"ALTER TABLE logs_part DETACH PARTITION logs_{m:02d}" for m in (1, 2, 3)],
                            *[f"DROP TABLE logs_{m:02d}" for m in (1, 2, 3)])
part_after = sum(size(f"logs_{m:02d}") for m in range(4, 13))
retention_cost = pd.DataFrame([
    {"method": "DELETE ... WHERE ts < cutoff", "WAL bytes": wal_delete, "seconds": s_delete,
     "table bytes before": before, "table bytes after": after_delete},
    {"method": "then VACUUM (to reuse the space)", "WAL bytes": wal_vacuum, "seconds": s_vacuum,
     "table bytes before": after_delete, "table bytes after": size("logs_plain")},
    {"method": "DETACH + DROP 3 monthly partitions", "WAL bytes": wal_drop, "seconds": s_drop,
     "table bytes before": part_before, "table bytes after": part_after},
]).set_index("method")
print(f"{expired:,} expired rows; DELETE wrote {wal_delete / expired:.0f} WAL bytes per row, "
      f"{wal_delete / max(wal_drop, 1):,.0f}× the WAL of dropping the partitions")
retention_cost

# %% [markdown]
# The DELETE wrote WAL for every row it removed (replicas replay all of it, and it lands in every WAL
# archive); the table did not shrink, because PostgreSQL only marks rows dead, and plain VACUUM makes the
# space reusable inside the file rather than giving it back. Dropping partitions changed only the catalog
# (a small fraction of the WAL, by the ratio printed above) and freed the files at once. This is the main
# practical reason to range-partition time-ordered data: the retention policy becomes `DROP TABLE` on a
# schedule. It requires partitions aligned with the policy (a 90-day TTL with monthly partitions keeps up to
# one extra month).
#
# ### Legal hold
#
# A **legal hold** (litigation, a regulator's inquiry, a fraud investigation) suspends deletion of the records
# it names, whatever the retention policy says, until it is released. A purge must therefore subtract held
# records; and before a partition is dropped, its held rows must be copied somewhere that survives. Holds are
# data too, kept in a table:

# %%
conn.execute("DROP TABLE IF EXISTS legal_holds, logs_held")
conn.execute("CREATE TABLE legal_holds (customer_id bigint, reason text, placed_at timestamp, released_at timestamp)")
conn.execute("INSERT INTO legal_holds VALUES (17, 'chargeback dispute', '2025-06-01', NULL), "
             "(42, 'fraud inquiry', '2025-02-01', '2025-11-30')")
conn.execute("CREATE TABLE logs_held (LIKE logs_part)")
with conn.transaction():   # copy held rows out of the expiring partition, then drop it
    conn.execute("""INSERT INTO logs_held SELECT l.* FROM logs_04 l
                    WHERE EXISTS (SELECT 1 FROM legal_holds h WHERE h.customer_id = l.customer_id
                                  AND (h.released_at IS NULL OR h.released_at > %s))""", (NOW,))
    conn.execute("ALTER TABLE logs_part DETACH PARTITION logs_04")
    conn.execute("DROP TABLE logs_04")
q("SELECT customer_id, count(*) AS rows_kept FROM logs_held GROUP BY 1")

# %% [markdown]
# Customer 17's hold is active, so their April rows survived the drop; customer 42's hold was released
# before `NOW`, so nothing of theirs was kept. The rules are easy to state and easy to get subtly wrong
# (boundaries, released holds, holds limited to one kind of record, records no policy covers), which is why
# the next exercise tests them against an oracle on thousands of random cases.
#
# ### Exercise 3: a purge that honours TTL and legal holds (5 points)

# %% nbgrader={"grade_id": "week05-data-management-ex03-retention-purge", "solution": true}
from datetime import timedelta


def expired_ids(records, now, ttl_days, holds) -> set:
    """The ids of the records a purge run at `now` must delete.

    records:  iterable of (record_id: int, customer_id: int, kind: str, created_at: datetime)
    ttl_days: dict kind -> days to keep (int), or None to keep forever. A kind missing from the dict has no
              policy: keep it (never delete what no rule covers).
    holds:    iterable of (customer_id, kind or None, released_at: datetime or None). A hold protects that
              customer's records of that kind (kind None: of every kind) while it is active, i.e. when
              released_at is None or now < released_at.

    A record is expired when created_at + ttl_days[kind] days <= now. Return the set of ids of the records
    that are expired and not protected by any active hold.
    """
    ### BEGIN SOLUTION
    active = {(cid, kind) for cid, kind, released in holds if released is None or now < released}
    out = set()
    for rid, cid, kind, created in records:
        ttl = ttl_days.get(kind)
        if ttl is None or created + timedelta(days=ttl) > now:
            continue
        if (cid, None) in active or (cid, kind) in active:
            continue
        out.add(rid)
    return out
    ### END SOLUTION


# %% nbgrader={"grade_id": "week05-data-management-ex03-retention-purge-tests", "grade": true, "points": 2}
_now = datetime(2026, 1, 1)
_records = [(1, 10, "view", datetime(2025, 1, 5)),        # old view: expired
            (2, 10, "view", datetime(2025, 12, 20)),      # recent view: kept
            (3, 11, "purchase", datetime(2020, 1, 1)),    # purchases are kept forever
            (4, 12, "view", datetime(2025, 2, 1)),        # old, but customer 12 is on hold
            (5, 13, "click", datetime(2019, 1, 1))]       # no policy for "click": kept
_got = expired_ids(_records, _now, {"view": 90, "purchase": None}, [(12, None, None)])
assert isinstance(_got, (set, frozenset)) and all(type(i) is int for i in _got), _got
assert set(_got) == {1}, _got
assert expired_ids([], _now, {"view": 1}, []) == set()
print("visible tests passed")

# %% nbgrader={"grade_id": "week05-data-management-ex03-retention-purge-hidden", "grade": true, "points": 3}
assert isinstance(expired_ids([], datetime(2026, 1, 1), {}, []), (set, frozenset))
### BEGIN HIDDEN TESTS
import random as _random
from datetime import datetime as _dt
from datetime import timedelta as _td


def _oracle(records, now, ttl, holds):
    out = set()
    for rid, cid, kind, created in records:
        if kind not in ttl or ttl[kind] is None:
            continue
        if not created + _td(days=ttl[kind]) <= now:
            continue
        if any(h_cid == cid and (h_kind is None or h_kind == kind) and (rel is None or now < rel)
               for h_cid, h_kind, rel in holds):
            continue
        out.add(rid)
    return out


_now = _dt(2026, 3, 1, 12, 0)
# boundaries: exactly ttl days old is expired; one second younger is not
_b = [(1, 1, "log", _now - _td(days=30)), (2, 1, "log", _now - _td(days=30) + _td(seconds=1))]
assert expired_ids(_b, _now, {"log": 30}, []) == {1}
# a hold released at or before now no longer protects; one released later does
assert expired_ids(_b, _now, {"log": 30}, [(1, "log", _now)]) == {1}
assert expired_ids(_b, _now, {"log": 30}, [(1, "log", _now + _td(seconds=1))]) == set()
# a hold on one kind does not protect the customer's other kinds
_k = [(7, 5, "view", _dt(2020, 1, 1)), (8, 5, "cart", _dt(2020, 1, 1)), (9, 6, "view", _dt(2020, 1, 1))]
assert expired_ids(_k, _now, {"view": 1, "cart": 1}, [(5, "cart", None)]) == {7, 9}
assert expired_ids(_k, _now, {"view": 1, "cart": 1}, [(5, None, None)]) == {9}
assert expired_ids(_k, _now, {"view": 1}, []) == {7, 9}                       # no policy for cart
assert expired_ids(_k, _now, {"view": None, "cart": 0}, []) == {8}            # ttl 0: expired at once
assert expired_ids(iter(_k), _now, {"view": 1, "cart": 1}, iter([(6, None, _dt(2027, 1, 1))])) == {7, 8}

_kinds = ["view", "cart", "purchase", "email", "audit"]
for _seed in range(300):
    _rng = _random.Random(_seed)
    _ttl = {k: _rng.choice([None, 0, 1, 7, 30, 90, 365]) for k in _rng.sample(_kinds, _rng.randint(0, 5))}
    _recs = [(i, _rng.randint(1, 8), _rng.choice(_kinds), _now - _td(days=_rng.randint(0, 400), hours=_rng.choice([0, 12])))
             for i in range(_rng.randint(0, 40))]
    _holds = [(_rng.randint(1, 8), _rng.choice([None, *_kinds]),
               _rng.choice([None, _now - _td(days=_rng.randint(0, 5)), _now + _td(days=_rng.randint(0, 5))]))
              for _ in range(_rng.randint(0, 4))]
    _want = _oracle(_recs, _now, _ttl, _holds)
    _got = expired_ids(list(_recs), _now, dict(_ttl), list(_holds))
    assert isinstance(_got, (set, frozenset)) and all(type(i) is int for i in _got), _got
    assert set(_got) == _want, (_seed, _ttl, _holds, sorted(_got), sorted(_want))
### END HIDDEN TESTS

# %% [markdown]
# Your purge on the real `events` table, with the policy above and the holds of the `legal_holds` table
# (customer-wide holds):

# %%
records = conn.execute("SELECT event_id, customer_id, event_type, ts FROM events").fetchall()
holds = [(cid, None, released) for cid, released in conn.execute("SELECT customer_id, released_at FROM legal_holds")]
doomed = expired_ids(records, NOW, RETENTION_DAYS, holds)
before = q("SELECT event_type, count(*) AS before FROM events GROUP BY 1 ORDER BY 1").set_index("event_type")
conn.execute("DELETE FROM events WHERE event_id = ANY(%s)", (sorted(doomed),))
before["after"] = q("SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 1").set_index("event_type")["count"]
held_left = conn.execute("SELECT count(*) FROM events WHERE customer_id = 17 AND event_type = 'view' AND ts < %s",
                         (NOW - timedelta(days=90),)).fetchone()[0]
print(f"deleted {len(doomed):,} events; customer 17's expired views still there (hold): {held_left}")
before

# %% [markdown]
# ### GDPR erasure: deleting one person everywhere
#
# Article 17 gives a person the right to have their personal data erased "without undue delay", with
# exceptions, among them data that must be kept to comply with a legal obligation. For the shop that means:
# delete the click events, keep the orders (tax law) but cut them off from the person by replacing name and
# email with a pseudonym. Every copy counts: the flat table and the normalized schema hold the email too
# (denormalization multiplies erasure work). One transaction, so erasure is all or nothing:

# %%
def erase_customer(con, customer_id):
    """Erase a customer's personal data in every table of this notebook's database that holds it."""
    pseudonym = f"erased-{customer_id}@invalid"
    def exists(name):
        return con.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None

    with con.transaction():
        for table in ("events", "events_by_month", "events_by_customer"):
            if exists(table):                           # the partitioned copies come from Exercise 2
                con.execute(f"DELETE FROM {table} WHERE customer_id = %s", (customer_id,))
        con.execute("UPDATE customers SET name = 'erased', email = %s WHERE customer_id = %s", (pseudonym, customer_id))
        con.execute("UPDATE orders_flat SET customer_name = 'erased', customer_email = %s WHERE customer_id = %s",
                    (pseudonym, customer_id))
        if exists("normalized.customers"):
            con.execute("UPDATE normalized.customers SET name = 'erased', email = %s WHERE customer_id = %s",
                        (pseudonym, customer_id))
        if exists("order_page"):
            con.execute("REFRESH MATERIALIZED VIEW order_page")


def tables_mentioning(text):
    """Every table (and materialized view) in which some row, rendered as text, contains `text`."""
    names = conn.execute("""SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND n.nspname IN ('public', 'normalized')""").fetchall()
    return sorted(t for (t,) in names
                  if conn.execute(f"SELECT count(*) FROM {t} x WHERE x::text LIKE %s", (f"%{text}%",)).fetchone()[0])


def files_containing(text, folder):
    """Files under `folder` (PostgreSQL's own data directory) whose bytes contain `text`."""
    needle = text.encode()
    return sorted(str(p.relative_to(pg.pgdata)) for p in Path(folder).rglob("*")
                  if p.is_file() and needle in p.read_bytes())


subject, subject_email = conn.execute("SELECT customer_id, email FROM customers WHERE customer_id = %s",
                                      (victim,)).fetchone()
print("before erasure, tables with the email:", tables_mentioning(subject_email))
erase_customer(conn, subject)
print("after erasure, tables with the email:  ", tables_mentioning(subject_email))
conn.execute("CHECKPOINT")                                   # write dirty pages to the data files
db_dir = pg.pgdata / "base" / str(conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (db,)).fetchone()[0])
still_in_data = len(files_containing(subject_email, db_dir))
print("data files still holding the email bytes:", still_in_data)
print("WAL segments holding the email bytes:", files_containing(subject_email, pg.pgdata / "pg_wal"))

# %% [markdown]
# No query finds the email any more, but the bytes are still on disk: the old row versions are dead tuples
# in the data files until VACUUM removes them, and the write-ahead log holds every version ever written.
# `VACUUM FULL` rewrites the tables (and their indexes) into new files:

# %%
conn.execute("VACUUM FULL customers, orders_flat")
if conn.execute("SELECT to_regclass('normalized.customers')").fetchone()[0]:
    conn.execute("VACUUM FULL normalized.customers")
if conn.execute("SELECT to_regclass('order_page')").fetchone()[0]:
    conn.execute("VACUUM FULL order_page")
conn.execute("CHECKPOINT")
print("data files holding the email after VACUUM FULL:", files_containing(subject_email, db_dir))
print("WAL segments still holding it:", files_containing(subject_email, pg.pgdata / "pg_wal"))

# %% [markdown]
# The WAL keeps it until the segment is recycled, and in production the story continues beyond this server:
# WAL archives and base backups (kept for point-in-time recovery, often 30 days or more), replicas, logical
# replication and CDC streams (Kafka topics with their own retention), the analytics warehouse, application
# logs that printed the email, caches and search indexes. The usual answers:
#
# - **Backups**: restores are rare; keep an erasure log and re-apply it after any restore, and let backups
#   expire on a schedule short enough to state in the privacy notice ("erased from backups within 35 days").
# - **Crypto-shredding**: encrypt each person's personal data with a per-person key kept in a key store;
#   erasure deletes the key, which makes every copy (backups, logs, replicas) unreadable at once.
# - **Logs and derived stores**: do not log personal data in the first place (log the customer id, not the
#   email), and give every derived store its own, short, retention.

# %% [markdown]
# ## Hot/Cold Storage
#
# Storage systems sell a trade-off between the price of **keeping** a byte and the price of **reading** it.
# Object stores offer tiers: a hot tier with the highest storage price and free reads, then colder tiers
# that are cheaper per GB-month but charge per GB retrieved, bill a **minimum storage duration** (data deleted
# or moved earlier is billed for the rest of it), and for the coldest, take hours to deliver the first byte.
# The prices below are **illustrative**: rounded numbers in the style of the public price lists of cloud
# object storage (standard, infrequent access, instant-retrieval archive, deep archive), not anyone's live
# prices. Request fees and transition fees are left out so that every bill can be checked by hand.

# %%
pd.DataFrame([{"tier": t.name, "storage ($/GB-month)": t.storage_gb_month, "retrieval ($/GB read)": t.retrieval_gb,
               "minimum duration (months)": t.min_months, "first byte": t.first_byte} for t in storage_costs.TIERS])

# %% [markdown]
# For data of size `S` GB kept `D` months in tier `t` and read `r` times over per month (r = 0.5: half of it
# each month), the bill is
#
# `cost_t = S · p_t · max(D, min_t) + S · r · D · g_t`
#
# with `p_t` the storage price, `g_t` the retrieval price and `min_t` the minimum duration. Storage favours
# the cold tier; reads favour the hot one; in between there is an access rate `r*` at which both bills are
# equal, the **break-even** rate. Data read less often than `r*` belongs in the colder tier.
#
# ### Exercise 4: the break-even access rate (4 points)

# %% nbgrader={"grade_id": "week05-data-management-ex04-break-even", "solution": true}
def break_even_reads(hot, cold, months: int) -> float:
    """The read rate r (full reads of the data per month, constant over time) at which keeping data for `months`
    months costs the same in tier `cold` as in tier `hot`, using the bill above. Tiers have the attributes
    storage_gb_month, retrieval_gb and min_months; cold.retrieval_gb > hot.retrieval_gb.
    If `cold` is not cheaper even when the data is never read, return 0.0."""
    ### BEGIN SOLUTION
    storage_hot = hot.storage_gb_month * max(months, hot.min_months)
    storage_cold = cold.storage_gb_month * max(months, cold.min_months)
    return max(0.0, (storage_hot - storage_cold) / (months * (cold.retrieval_gb - hot.retrieval_gb)))
    ### END SOLUTION


# %% nbgrader={"grade_id": "week05-data-management-ex04-break-even-tests", "grade": true, "points": 1}
_hot, _warm, _cold, _archive = storage_costs.TIERS
_r = break_even_reads(_hot, _cold, 12)
assert isinstance(_r, float), type(_r)
assert abs(_r - (0.023 - 0.004) / 0.03) < 1e-9, _r          # 12 months is above both minimum durations
_bill = lambda t, r, d: t.storage_gb_month * max(d, t.min_months) + r * d * t.retrieval_gb
assert abs(_bill(_hot, _r, 12) - _bill(_cold, _r, 12)) < 1e-12
print(f"hot vs cold over 12 months: break-even at {_r:.3f} reads per month")

# %% nbgrader={"grade_id": "week05-data-management-ex04-break-even-hidden", "grade": true, "points": 3}
assert isinstance(break_even_reads(*storage_costs.TIERS[:2], 24), float)
### BEGIN HIDDEN TESTS
import random as _random

from archlab.storage_costs import Tier as _Tier


def _bill(t, r, d):
    return t.storage_gb_month * max(d, t.min_months) + r * d * t.retrieval_gb


def _expected(a, b, d):
    return max(0.0, (a.storage_gb_month * max(d, a.min_months) - b.storage_gb_month * max(d, b.min_months))
               / (d * (b.retrieval_gb - a.retrieval_gb)))


_warm = _Tier("warm", 0.0125, 0.01, 1)
_cold = _Tier("cold", 0.004, 0.03, 3)
_arch = _Tier("archive", 0.001, 0.05, 6)
assert abs(break_even_reads(_warm, _cold, 12) - 0.425) < 1e-9                   # hot side pays retrieval too
assert abs(break_even_reads(_warm, _arch, 2) - (0.025 - 0.006) / 0.08) < 1e-9   # archive billed 6 months
assert break_even_reads(_Tier("h", 0.023, 0.0, 0), _Tier("c", 0.01, 0.02, 6), 1) == 0.0   # never cheaper
_rng = _random.Random(55)
for _ in range(400):
    _a = _Tier("a", _rng.uniform(0.005, 0.05), _rng.choice([0.0, _rng.uniform(0, 0.02)]), _rng.choice([0, 0, 1, 2]))
    _b = _Tier("b", _rng.uniform(0.0005, 0.02), _a.retrieval_gb + _rng.uniform(0.001, 0.1), _rng.choice([0, 1, 3, 6, 12]))
    _d = _rng.randint(1, 48)
    _got = break_even_reads(_a, _b, _d)
    _want = _expected(_a, _b, _d)
    assert isinstance(_got, float) and not isinstance(_got, bool), type(_got)
    assert abs(_got - _want) <= 1e-9 * max(1.0, _want), (_a, _b, _d, _got, _want)
    if _want > 0:
        assert abs(_bill(_a, _got, _d) - _bill(_b, _got, _d)) < 1e-9
### END HIDDEN TESTS

# %% [markdown]
# The crossings drawn: one year of bills per GB as a function of the read rate, one line per tier, and each
# neighbouring pair's break-even from your function (the markers sit exactly on the crossings).

# %%
rates = [10 ** (k / 20) for k in range(-60, 21)]
fig = go.Figure()
for tier in storage_costs.TIERS:
    fig.add_trace(go.Scatter(x=rates, y=[storage_costs.single_tier_cost(tier, 1, 12, r) for r in rates],
                             name=tier.name, line={"color": storage_costs.TIER_COLOURS[tier.name]}))
crossings = []
for a, b in zip(storage_costs.TIERS, storage_costs.TIERS[1:], strict=False):
    r = break_even_reads(a, b, 12)
    crossings.append({"hotter": a.name, "colder": b.name, "break-even reads/month": r,
                      "bill at r* ($/GB-year)": storage_costs.single_tier_cost(a, 1, 12, r)})
    fig.add_trace(go.Scatter(x=[r], y=[crossings[-1]["bill at r* ($/GB-year)"]], mode="markers", showlegend=False,
                             marker={"size": 10, "color": "black"}, hovertext=f"{a.name} = {b.name}"))
fig.update_layout(title="Bill for 1 GB kept 12 months (illustrative prices)", height=420, plot_bgcolor="white",
                  xaxis={"title": "reads per month (multiples of the data size)", "type": "log"},
                  yaxis={"title": "cost over 12 months ($ per GB)", "type": "log"})
display(fig)
pd.DataFrame(crossings).round(4)

# %% [markdown]
# Real data does not have one access rate: it is read most when new and less every month after. A
# **lifecycle** moves it to colder tiers as it ages. The widget finds the cheapest lifecycle for an access
# rate that halves every *half-life* months: `archlab.storage_costs.cheapest_lifecycle` tries every schedule
# that only moves data colder, by dynamic programming over (month, tier, months spent in the tier so far),
# which is what the minimum duration makes necessary: moving data out of a tier early costs the rest of its
# minimum. Switch the minimum-duration billing or the retrieval fees off to see which rule shapes the answer.

# %%
archlab.widgets.tiering_widget()

# %% [markdown]
# The same model, for three access patterns of 1,000 GB kept three years, next to the best single tier:

# %%
profiles = {"busy then quiet (2 reads/month, half-life 3 months)": (2.0, 3.0),
            "steady reporting (0.2 reads/month, no decay)": (0.2, math.inf),
            "write-once audit log (0.001 reads/month)": (0.001, math.inf)}
life_rows = []
for label, (r0, half) in profiles.items():
    best = storage_costs.cheapest_lifecycle(storage_costs.TIERS, 1000, 36, r0, half)
    single = {t.name: storage_costs.single_tier_cost(t, 1000, 36, r0, half) for t in storage_costs.TIERS}
    top = min(single, key=single.get)
    life_rows.append({"access pattern": label, "cheapest lifecycle": best.describe(), "lifecycle $": best.total,
                      "best single tier": top, "single tier $": single[top],
                      "saving": f"{1 - best.total / single[top]:.0%}"})
pd.DataFrame(life_rows).round(2)

# %% [markdown]
# Aged, rarely read data is where tiering pays; data with a steady read rate belongs in one tier, and the
# break-even of Exercise 4 says which. The shop's monthly event partitions map onto this directly: the newest
# partitions in PostgreSQL (hot), older ones exported to Parquet in object storage (warm, cold), and the
# retention policy's `DROP` at the end. The minimum duration is why a lifecycle rule moves data to an archive
# tier only when it will stay there long enough.

# %% [markdown]
# ### Exercise 5 (written): a social network's data plan (4 points)
#
# A social network stores posts (author, text, media reference, created_at), follows (follower, followee) and
# likes, and its hottest read is the home timeline: the latest 50 posts of the accounts a user follows. Some
# accounts have millions of followers. In 8-12 sentences: (a) give the normalized tables and say which read
# path you would denormalize and how (e.g. a timeline table written at post time vs a join at read time), and
# what that costs; (b) choose a partition key for posts and for the denormalized structure, and say which
# queries prune; (c) state a retention and tiering rule for old posts, media and timelines, including what
# happens when a user deletes their account. Use at least two numbers measured in this notebook.

# %% [markdown] nbgrader={"grade_id": "week05-data-management-ex05-social-data-plan", "solution": true, "grade": true, "points": 4}
# **Model answer.** Normalized: `users(user_id PK, ...)`, `posts(post_id, author_id → users, created_at,
# text, media_key)`, `follows(follower_id, followee_id, PK both)`, `likes(user_id, post_id, PK both)`; each
# fact once, so a changed display name is one row. Reading a timeline as a join (follows ⨝ posts, top 50 by
# time) is cheap for a user following a few hundred accounts; this notebook's order page join cost the same
# order of magnitude as a flat lookup. At social scale the timeline is read far more often than posts are
# written, so denormalize it: a `timelines(user_id, created_at, post_id)` table filled at post time
# (fan-out on write), holding post ids only so that edits and deletes of posts stay single-row. Its price is
# write amplification: one post becomes one row per follower, the same effect as the flat table's
# `lines_of_victim` rows per email change; for celebrities it is millions of rows, so their posts are merged
# in at read time instead (hybrid fan-out). Partition `timelines` by hash of `user_id` (a user's timeline is
# one partition; it also spreads load) and `posts` by range of `created_at` (recent posts are hot, and old
# months can be detached), with an index on `(author_id, created_at)`; the timeline query prunes to one hash
# partition, "posts this month" to one range partition. Retention: timelines keep only the latest ~800
# entries or 30 days (they can be rebuilt from posts); post rows are kept while the account exists; media
# moves to colder tiers as its reads decay (the lifecycle table: busy-then-quiet data is cheapest moved
# colder after a few months), never into a tier whose minimum duration exceeds the expected remaining life.
# Account deletion erases posts, likes, follows and timeline entries in one job, and backups/logs follow
# the erasure measures above (crypto-shredding of media keys, backup expiry). Dropping partitions, which
# wrote a fraction of the WAL of a TTL DELETE here, is how old timeline and log data leaves.
#
# **Rubric (4 points).** 1 point: normalized tables with keys, and a named denormalized read path with its
# write cost (fan-out, celebrity problem or staleness). 1 point: partition keys for posts and for the
# timeline structure, with the queries each prunes (and one that does not). 1 point: a retention/tiering rule
# that uses access decay or minimum duration, and an account-deletion rule that mentions copies (timelines,
# media, backups or logs). 1 point: at least two numbers measured in this notebook used correctly (join vs flat
# ratio, rows per email change, WAL ratio of DELETE vs DROP, bytes read wide vs narrow, a break-even rate or
# lifecycle saving). Other coherent designs (e.g. fan-out on read throughout, with its read cost argued) earn
# full marks.

# %% [markdown]
# ## Wrap-up
#
# ### You can now
#
# - [ ] check functional dependencies with SQL and name the normal form a table breaks
# - [ ] show update, insert and delete anomalies on a real table, and migrate it to 3NF with constraints that
#       refuse them
# - [ ] denormalize one read path on purpose (materialized view or fan-out table) and state its refresh rule
# - [ ] range- and hash-partition a PostgreSQL table and predict, then verify in EXPLAIN, which partitions a
#       query reads
# - [ ] split wide, rarely read columns off a table and say when that saves bytes (row formats, `SELECT *`)
#       and when a columnar format already does it
# - [ ] write a retention purge with TTLs and legal holds, and prefer dropping partitions to TTL deletes
# - [ ] erase one person's data across tables, and list where copies survive (WAL, backups, logs)
# - [ ] price storage tiers, compute a break-even access rate and choose a lifecycle
#
# ### Self-assessment
#
# From the guide's monthly questions, this week answers part of:
#
# 1. *Can I design a database schema for a complex application?* Normalize first, then denormalize named read
#    paths with a stated refresh rule; partition by the key your dominant queries filter on.
# 2. *How do I ensure data consistency across distributed services?* Inside one database, constraints and a
#    single copy of each fact; every deliberate copy (view, flat table, cache) needs an owner and a refresh
#    rule, or it drifts.
#
# Check yourself: why can a primary key on a partitioned table not be `(event_id)` alone when it is partitioned
# by `ts`? Why does `WHERE date_trunc('month', ts) = ...` read every partition, and how do you rewrite it? Why
# does a TTL `DELETE` not make the table smaller? When does a colder tier cost *more* than a hotter one even
# for data that is never read?
