# %% [markdown]
# # Start here: Technical Architecture, hands-on
#
# A course in runnable notebooks that follows the *Technical Architecture Career Learning
# Guide* week by week. Every claim runs on a real engine (PostgreSQL, Redis, DuckDB, SQLite
# and, in later weeks, NATS, an S3 API, gRPC and HTTP services), started inside your kernel on
# 127.0.0.1. Every exercise is graded, and every simulated distributed scenario replays from
# its seed.
#
# ## Course map
#
# ### Phase 1: Foundation
# | notebook | guide | topics |
# |---|---|---|
# | [Core Database Concepts](week01-core-database-concepts.ipynb) | 1.1 Week 1-2 | SQL vs NoSQL, ACID, BASE, OLAP vs OLTP |
# | [Database Internals](week03-database-internals.ipynb) | 1.1 Week 3-4 | B+ trees, isolation levels, WAL, read/write patterns |
# | [Data Management](week05-data-management.ipynb) | 1.1 Week 5-6 | modeling, partitioning, retention, hot/cold storage |
# | [Modern Storage](week07-modern-storage.ipynb) | 1.2 Week 7-8 | object storage, file systems, backup & restore, bloom filters |
#
# ### Phase 2: Distributed Systems Core
# | notebook | guide | topics |
# |---|---|---|
# | [Basic Scaling Concepts](week09-scaling-fundamentals.ipynb) | 2.1 Week 9-10 | load balancing, caching, Redis, CDN |
# | [Data Distribution](week11-data-distribution.ipynb) | 2.1 Week 11-12 | sharding, consistent hashing, replication |
# | [Theoretical Foundations](week13-distributed-theory.ipynb) | 2.2 Week 13-14 | CAP, consistency models, eventual consistency, distributed transactions |
# | [Consensus and Fault Tolerance](week15-consensus-and-fault-tolerance.ipynb) | 2.2 Week 15-16 | Raft, PBFT, failure detection, split brain |
# | [Service Architecture](week17-service-architecture.ipynb) | 2.3 Week 17-18 | monolith vs microservices, service discovery, database scaling |
#
# ### Phase 3: Communication & Integration
# | notebook | guide | topics |
# |---|---|---|
# | [API Fundamentals](week19-api-fundamentals.ipynb) | 3.1 Week 19-20 | REST vs gRPC, versioning, protobuf, serialization |
# | [API Infrastructure](week21-api-infrastructure.ipynb) | 3.1 Week 21-22 | API gateway, rate limiting, throttling |
# | [API Security](week23-api-security.ipynb) | 3.1 Week 23 | JWT, OAuth, CORS, injection |
# | [Messaging Patterns](week24-messaging-patterns.ipynb) | 3.2 Week 24 | queues, pub/sub, dead letters, fan-out/fan-in |
# | [Advanced Communication](week25-realtime-and-streaming.ipynb) | 3.2 Week 25-26 | WebSockets, long polling, service mesh, queueing |
#
# ### Phase 4: Production & Reliability
# | notebook | guide | topics |
# |---|---|---|
# | week27-reliability-patterns *(coming)* | 4.1 Week 27-28 | circuit breakers, retries with jitter, idempotency, degradation |
# | week29-failure-management *(coming)* | 4.1 Week 29-30 | failover, health checks, heartbeats, retry budgets |
# | week31-observability *(coming)* | 4.2 Week 31-32 | metrics, logging, tracing, dashboards |
# | week33-performance-and-scaling *(coming)* | 4.2 Week 33 | load testing, autoscaling, SLOs, error budgets |
# | week34-deployment-strategies *(coming)* | 4.3 Week 34 | blue-green, canary, rollbacks, chaos engineering |
# | week35-incident-operations *(coming)* | 4.3 Week 35-36 | incident response, alerting, chaos engineering |
#
# ### Projects and interview practice
# | notebook | covers |
# |---|---|
# | project1-ecommerce-platform *(coming)* | Practical Project 1 |
# | project2-realtime-analytics *(coming)* | Practical Project 2 |
# | project3-multitenant-saas *(coming)* | Practical Project 3 |
# | interview-system-design *(coming)* | Assessment & interview preparation |

# %% [markdown]
# ## How to work through a week
#
# 1. Run the cells from the top (Shift-Enter). The first cells start the engines the week
#    needs; each starts in about a second and stops when you close the notebook.
# 2. Read, run, change a value, run again: every number in the text comes from a cell above it.
# 3. Exercises say what to build and give a signature. Replace `raise NotImplementedError()`
#    with your code.
# 4. **Self-check:** the cell right below each exercise holds its visible tests. Run it: no
#    error means you pass them. Hidden tests with other cases run when your work is graded, so
#    test edge cases yourself too.
# 5. Written answers (marked *manually graded*) are read by your instructor.
#
# Restart the kernel and run all cells (Kernel → Restart Kernel and Run All Cells) before you
# submit: that is exactly what the grader does.

# %% [markdown]
# ## Where to run it
#
# - **Binder**: the badge in the README opens this course in JupyterLab in your browser, with
#   nothing to install. Binder sessions are temporary: download your notebooks
#   (File → Download) before you leave.
# - **Your own machine, offline**: clone the repository, then run `make lab`. It creates
#   `.venv`, installs the pinned packages and opens JupyterLab here. After that first install
#   nothing needs the network: the engines are Python packages and the datasets are in
#   `datasets/`.
# - **As a graded class**: your instructor releases each week through nbgrader (the
#   *Assignments* tab) or your LMS; submit the notebook you worked in, with the same file name.

# %% [markdown]
# ## Check your set-up
# Run the next cell: it starts PostgreSQL and Redis and prints their versions.

# %%
import archlab

pg = archlab.postgres()
with pg.connect() as conn:
    print(conn.execute("SELECT version()").fetchone()[0])
print("Redis", archlab.redis().client().info("server")["redis_version"])
