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
# # Week 19-20: API Fundamentals
#
# **Guide:** Phase 3, 3.1 API Design & Management, Week 19-20 (REST vs gRPC, API Versioning, Protocol
# Buffers, Serialization) and the practical exercises "build REST API with OpenAPI specification" and
# "implement gRPC service with Protocol Buffers".
#
# **Time:** about 4 hours (2 h reading and running, 2 h exercises).
#
# **Points:** 25 (four autograded exercises, 21 points; one written answer, 4 points).
#
# **Prerequisites:** week 17-18 (services and their boundaries); HTTP basics (methods, status codes,
# headers); Python classes, `bytes` and bit operations (`<<`, `>>`, `&`, `|`).
#
# **Reading:** Kleppmann, *Designing Data-Intensive Applications* (DDIA), ch. 4 "Encoding and Evolution";
# Newman, *Building Microservices* (2nd ed.), ch. 5 "Implementing Microservice Communication"; Protocol
# Buffers documentation, "Encoding" and "Updating a Message Type"; the Avro 1.11 specification, "Schema
# Resolution"; gRPC documentation, "Deadlines"; RFC 8594 (the `Sunset` header) and RFC 9745 (the
# `Deprecation` header).
#
# **How to use this notebook:** run the cells from top to bottom (Run → Run All Cells works). An HTTP server
# and gRPC servers start inside this kernel on 127.0.0.1; nothing reaches the internet. Write your answers
# where a cell says `YOUR CODE HERE`, then run the test cell below it (more tests run when your work is
# graded). Reruns give the same bytes; timings differ a little from run to run, so the text speaks of ratios
# computed in the cells. Back to the [course map](00-start-here.ipynb).

# %% [markdown]
# ## Learning objectives
#
# By the end of this notebook you can:
#
# 1. serve one product catalogue over REST/JSON and over gRPC, measure the bytes each puts on the wire and
#    its latency, and say which trade-offs (contracts, tooling, browsers, caching, streaming) decide between
#    them (REST vs gRPC);
# 2. use server streaming instead of pagination, set a gRPC deadline, see `DEADLINE_EXCEEDED`, and pass the
#    remaining budget on to the services you call;
# 3. encode Protocol Buffers by hand: varints, zigzag, field tags and wire types, byte for byte what the
#    library writes (Protocol Buffers);
# 4. reproduce Kleppmann's byte counts (81 JSON, 66 MessagePack, 33 Protocol Buffers, 32 Avro), benchmark
#    encoding and decoding, and predict which schema changes old and new code survive in Protocol Buffers and
#    Avro, checked by decoding old bytes with new code (Serialization);
# 5. version an HTTP API by URL, header or media type, and retire a version with `Deprecation` and `Sunset`
#    headers (API Versioning).

# %% [markdown]
# ### Set-up
#
# `archlab.serve` runs a WSGI application (here a Flask app) as a real HTTP server on 127.0.0.1;
# `archlab.rpc` compiles a `.proto` written in a cell with `protoc` (from `grpcio-tools`), returns the
# generated modules, and runs a `grpc.server` on 127.0.0.1. Both servers live in this kernel and stop with it.

# %%
import io
import json
import time
import timeit

import fastavro
import fastjsonschema
import grpc
import msgpack
import pandas as pd
from flask import Flask, abort, request
from google.protobuf.unknown_fields import UnknownFieldSet

import archlab
from archlab import datasets, rpc
from archlab.exercises import needs
from archlab.widgets.serialization import payload_widget

products = datasets.load("products").drop(columns="product_id")
CATALOG = {row["sku"]: row for row in products.to_dict("records")}     # sku -> product, sorted by sku
print(len(CATALOG), "products, e.g.", CATALOG["SKU-000042"])


def solved(fn, *args) -> bool:
    """True once an exercise's function no longer raises NotImplementedError."""
    try:
        fn(*args)
        return True
    except NotImplementedError:
        return False


# %% [markdown]
# ## REST vs gRPC
#
# Both are ways for one service to call another over a network; they differ in almost every layer.
#
# | | REST (as usually built) | gRPC |
# |---|---|---|
# | model | **resources** named by URLs, manipulated with HTTP methods (`GET /products/42`) | **procedures** on a service (`Catalog.GetProduct(request)`) |
# | contract | optional: an OpenAPI document, often written after the code | required: a `.proto` file; client and server code are generated from it |
# | payload | text, usually JSON: self-describing, field names in every message | Protocol Buffers: binary, field *numbers* instead of names, only with the schema can you read it |
# | transport | HTTP/1.1 or HTTP/2; one request per connection at a time in HTTP/1.1 | HTTP/2 only: many calls multiplexed on one connection, headers compressed (HPACK) |
# | streaming | none built in (pagination, long polling, SSE, WebSockets) | server, client and bidirectional streams |
# | time limits | a client timeout, invisible to the server | a **deadline** sent with the call (`grpc-timeout`); the server sees it and cancels |
# | errors | HTTP status codes (404, 409, 503) | gRPC status codes (`NOT_FOUND`, `DEADLINE_EXCEEDED`, `UNAVAILABLE`) |
# | reach | every browser, `curl`, caches and CDNs understand it | browsers need a proxy (gRPC-Web); HTTP caches cannot cache a `POST` of binary |
#
# The rule of thumb that follows: REST/JSON at the edge (public APIs, browsers, partners, anything a
# human debugs with `curl`), gRPC inside (service to service calls with a shared contract, high call rates,
# streaming). To see the differences rather than read them, we serve **one catalogue twice**: the same
# lookups, the same data, behind a REST/JSON API and behind a gRPC service.
#
# ### The contract
#
# gRPC starts from the contract. This `.proto` defines the messages and two services: `Catalog` (look-ups,
# a paginated list, a stream, and a deliberately slow price quote for the deadline demonstrations) and
# `Checkout`, which calls `Catalog` and will show how deadlines travel from service to service.

# %%
SHOP_PROTO = """
syntax = "proto3";
package shop.v1;

message Product {
  string sku = 1;
  string name = 2;
  string category = 3;
  int64 price_cents = 4;
  int32 stock = 5;
}
message GetProductRequest { string sku = 1; }
message ListProductsRequest {
  string category = 1;      // "" = every category
  int32 page_size = 2;
  string page_token = 3;    // "" = the first page; else next_page_token of the page before
}
message ListProductsResponse {
  repeated Product products = 1;
  string next_page_token = 2;   // "" = this was the last page
}
message QuoteRequest { string sku = 1; int32 quantity = 2; int32 work_ms = 3; }
message Quote { string sku = 1; int64 total_cents = 2; }

service Catalog {
  rpc GetProduct(GetProductRequest) returns (Product);
  rpc ListProducts(ListProductsRequest) returns (ListProductsResponse);
  rpc StreamProducts(ListProductsRequest) returns (stream Product);
  rpc GetQuote(QuoteRequest) returns (Quote);          // takes work_ms of work
}
service Checkout {
  rpc PlaceOrder(QuoteRequest) returns (Quote);        // calls Catalog.GetQuote
}
"""
shop_pb2, shop_grpc = rpc.compile_proto(SHOP_PROTO, "shop")
print("messages:", sorted(shop_pb2.DESCRIPTOR.message_types_by_name), "| services:",
      sorted(shop_pb2.DESCRIPTOR.services_by_name))
print("generated for you:", [n for n in vars(shop_grpc) if n.startswith(("Catalog", "add_Catalog"))])

# %% [markdown]
# `protoc` generated a **stub** (`CatalogStub`, the client: one method per RPC), a **servicer** base class
# (`CatalogServicer`, which the server implements) and `add_CatalogServicer_to_server`. The REST side has
# no such contract by default; the nearest equivalent is an **OpenAPI** document, which we write by hand
# below and serve next to the API, as the guide's practical exercise asks.
#
# ### One catalogue, two transports
#
# Both transports call the same three functions; only the wrapping differs. Pagination is **keyset**
# pagination: the page token is the last SKU of the page, and the next page starts after it, so inserts
# between two requests never shift a page (an offset would).

# %%
def get_product(sku):
    return CATALOG.get(sku)


def list_page(category, page_size, page_token):
    """(products, next_page_token): up to page_size products with sku > page_token."""
    page_size = max(1, min(page_size or 20, 100))
    rows = [p for sku, p in CATALOG.items() if sku > page_token and (not category or p["category"] == category)]
    page = rows[:page_size]
    return page, (page[-1]["sku"] if len(rows) > page_size else "")


def quote(sku, quantity):
    return {"sku": sku, "total_cents": CATALOG[sku]["price_cents"] * quantity}


# --- REST / JSON with Flask
rest_app = Flask("catalog-rest")
rest_app.json.sort_keys = False


@rest_app.get("/v1/products/<sku>")
def rest_get(sku):
    product = get_product(sku)
    if product is None:
        abort(404)
    return product


@rest_app.get("/v1/products")
def rest_list():
    page, token = list_page(request.args.get("category", ""), int(request.args.get("page_size", 20)),
                            request.args.get("page_token", ""))
    return {"products": page, "next_page_token": token}


OPENAPI = {
    "openapi": "3.1.0", "info": {"title": "Catalog", "version": "1"},
    "paths": {"/v1/products/{sku}": {"get": {
        "parameters": [{"name": "sku", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Product"}}}},
                      "404": {"description": "no such product"}}}}},
    "components": {"schemas": {"Product": {
        "type": "object", "required": ["sku", "name", "category", "price_cents", "stock"],
        "properties": {"sku": {"type": "string"}, "name": {"type": "string"}, "category": {"type": "string"},
                       "price_cents": {"type": "integer", "minimum": 1}, "stock": {"type": "integer", "minimum": 0}}}}},
}


@rest_app.get("/openapi.json")
def rest_openapi():
    return OPENAPI


# --- gRPC
WORK_LOG = []          # (service, sku, ms worked, finished?) for the deadline demonstrations


def work_done(wait_s=3.0):
    """The GetQuote handler's log entry once it has stopped, one way or the other (no work if it never ran)."""
    until = time.monotonic() + wait_s
    while not WORK_LOG and time.monotonic() < until:
        time.sleep(0.01)
    return WORK_LOG[0] if WORK_LOG else ("catalog", "", 0.0, False)


class CatalogService(shop_grpc.CatalogServicer):
    def GetProduct(self, request, context):
        product = get_product(request.sku)
        if product is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no product {request.sku}")
        return shop_pb2.Product(**product)

    def ListProducts(self, request, context):
        page, token = list_page(request.category, request.page_size, request.page_token)
        return shop_pb2.ListProductsResponse(products=[shop_pb2.Product(**p) for p in page], next_page_token=token)

    def StreamProducts(self, request, context):
        token = request.page_token
        while True:                                  # one call; products flow as they are read
            page, token = list_page(request.category, 100, token)
            yield from (shop_pb2.Product(**p) for p in page)
            if not token:
                return

    def GetQuote(self, request, context):
        start = time.perf_counter()
        while (time.perf_counter() - start) * 1000 < request.work_ms:
            if not context.is_active():              # the caller is gone: stop working for nobody
                WORK_LOG.append(("catalog", request.sku, (time.perf_counter() - start) * 1000, False))
                return shop_pb2.Quote()
            time.sleep(0.002)
        WORK_LOG.append(("catalog", request.sku, (time.perf_counter() - start) * 1000, True))
        return shop_pb2.Quote(**quote(request.sku, request.quantity))


http = archlab.serve(rest_app, "catalog-rest")
catalog = rpc.serve(shop_grpc.add_CatalogServicer_to_server, CatalogService(), "catalog")
rest = http.session()                                  # requests.Session, no proxies
stub = catalog.stub(shop_grpc.CatalogStub)
print(http, "|", catalog)
print("REST :", rest.get(f"{http.url}/v1/products/SKU-000042", timeout=5).json())
print("gRPC :", stub.GetProduct(shop_pb2.GetProductRequest(sku="SKU-000042"), timeout=5))
try:
    stub.GetProduct(shop_pb2.GetProductRequest(sku="SKU-999999"), timeout=5)
except grpc.RpcError as e:
    print("gRPC missing product:", e.code(), e.details(), "| REST:",
          rest.get(f"{http.url}/v1/products/SKU-999999", timeout=5).status_code)

# %% [markdown]
# Same data, same errors in two vocabularies (`404` and `NOT_FOUND`). The OpenAPI document is a contract
# too: its schemas are JSON Schema, so a client (or a contract test in CI) can check every response against
# it. `fastjsonschema` (installed with Jupyter) compiles the served `Product` schema into a validator, which
# accepts the real response and catches a server that sends a price as a string:

# %%
served = rest.get(f"{http.url}/openapi.json", timeout=5).json()
check_product = fastjsonschema.compile(served["components"]["schemas"]["Product"])
check_product(rest.get(f"{http.url}/v1/products/SKU-000007", timeout=5).json())
try:
    check_product({**CATALOG["SKU-000007"], "price_cents": "12.99"})
except fastjsonschema.JsonSchemaValueException as e:
    print("contract violation caught:", e.message)

# %% [markdown]
# ### Payload size
#
# The message bodies first: the same product as compact JSON and as Protocol Buffers. Then what really
# crosses the network per call, headers and framing included. `rpc.tap(port)` is a TCP relay in front of a
# server that counts every byte in each direction; we point each client at a tap and make the same look-up
# 100 times (after one warm-up call, so that connection set-up is not counted).

# %%
row = CATALOG["SKU-000042"]
json_body = json.dumps(row, separators=(",", ":")).encode()
pb_body = shop_pb2.Product(**row).SerializeToString()
print(f"body: JSON {len(json_body)} bytes, protobuf {len(pb_body)} bytes ({len(json_body) / len(pb_body):.1f}x)")

CALLS = 100
rest_tap, grpc_tap = rpc.tap(http.port, "rest"), rpc.tap(catalog.port, "grpc")
tapped_rest = http.session()
tapped_stub = shop_grpc.CatalogStub(rpc.channel(f"127.0.0.1:{grpc_tap.port}"))
for t in (rest_tap, grpc_tap):
    t.reset()
tapped_rest.get(f"http://127.0.0.1:{rest_tap.port}/v1/products/SKU-000042", timeout=5)
tapped_stub.GetProduct(shop_pb2.GetProductRequest(sku="SKU-000042"), timeout=5)
first_call = {"REST/JSON": rest_tap.to_server + rest_tap.to_client, "gRPC": grpc_tap.to_server + grpc_tap.to_client}
conns_before = {"REST/JSON": rest_tap.connections, "gRPC": grpc_tap.connections}
for t in (rest_tap, grpc_tap):
    t.reset()
for _ in range(CALLS):
    tapped_rest.get(f"http://127.0.0.1:{rest_tap.port}/v1/products/SKU-000042", timeout=5)
    tapped_stub.GetProduct(shop_pb2.GetProductRequest(sku="SKU-000042"), timeout=5)
wire = pd.DataFrame({
    "body of the answer (B)": {"REST/JSON": len(json_body), "gRPC": len(pb_body)},
    "first call, both ways (B)": first_call,
    "request per call (B)": {"REST/JSON": rest_tap.to_server / CALLS, "gRPC": grpc_tap.to_server / CALLS},
    "response per call (B)": {"REST/JSON": rest_tap.to_client / CALLS, "gRPC": grpc_tap.to_client / CALLS},
    f"TCP connections for {CALLS} calls": {"REST/JSON": rest_tap.connections - conns_before["REST/JSON"],
                                            "gRPC": grpc_tap.connections - conns_before["gRPC"]},
})
wire["per call, both ways (B)"] = wire["request per call (B)"] + wire["response per call (B)"]
wire_ratio = wire.loc["REST/JSON", "per call, both ways (B)"] / wire.loc["gRPC", "per call, both ways (B)"]
print(f"REST/JSON puts {wire_ratio:.1f}x the bytes of gRPC on the wire per look-up")
wire.round(1)

# %% [markdown]
# Three effects add up:
#
# - the **body** is smaller in Protocol Buffers (field numbers instead of names, numbers as varints);
# - the **headers** dominate a small call in HTTP/1.1: every request repeats `User-Agent`, `Accept`,
#   `Connection`..., every response `Server`, `Date`, `Content-Type`, as text. HTTP/2 compresses headers with
#   HPACK: after the first call, a repeated header is a one-byte index into a table both sides keep, which
#   is why gRPC's first call (connection preface, settings, full headers) costs much more than the next ones;
# - the **connections**: count them in the last column. The werkzeug server behind `archlab.serve` answers
#   `Connection: close`, so each REST call here opens a new TCP connection (a handshake and a server thread
#   each time), while all gRPC calls share one HTTP/2 connection. Production HTTP servers keep HTTP/1.1
#   connections alive, but still serve one request at a time per connection; HTTP/2 multiplexes.
#
# ### Latency
#
# Now the time per look-up: 200 calls each, after 10 warm-up calls, from this kernel to servers in this
# kernel. We report the median and the 99th percentile (p99), and separately the time to encode and decode
# the body alone, to see how much of the difference is serialization.

# %%
def latency_ms(call, n=200, warmup=10):
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    return pd.Series(samples)


get_req = shop_pb2.GetProductRequest(sku="SKU-000042")
samples = {
    "REST/JSON (requests, new connection per call)": latency_ms(
        lambda: rest.get(f"{http.url}/v1/products/SKU-000042", timeout=5).json()),
    "gRPC unary (one HTTP/2 connection)": latency_ms(lambda: stub.GetProduct(get_req, timeout=5)),
}
codec_us = {
    "JSON encode + decode": timeit.timeit(lambda: json.loads(json.dumps(row)), number=5000) / 5000 * 1e6,
    "protobuf encode + decode": timeit.timeit(
        lambda: shop_pb2.Product.FromString(shop_pb2.Product(**row).SerializeToString()), number=5000) / 5000 * 1e6,
}
latency = pd.DataFrame({name: {"median (ms)": s.median(), "p99 (ms)": s.quantile(0.99)} for name, s in samples.items()}).T
rest_name, grpc_name = latency.index
median_ratio = latency.loc[rest_name, "median (ms)"] / latency.loc[grpc_name, "median (ms)"]
codec_share = max(codec_us.values()) / 1000 / latency.loc[grpc_name, "median (ms)"]
print(f"median: REST/JSON takes {median_ratio:.1f}x the time of gRPC; encoding + decoding one body costs "
      + ", ".join(f"{k} {v:.1f} µs" for k, v in codec_us.items())
      + f" (at most {codec_share:.0%} of a gRPC call)")
latency.round(3)

# %% [markdown]
# On loopback there is no network to speak of: the time goes to the client and server libraries (building
# and parsing HTTP, thread hand-offs) and, for REST here, to the new connection per call. Serialization of
# one small body is a small share of a call (the last number printed). Across a real network each round
# trip adds its latency to every call, so what saves round trips (connection reuse, multiplexing,
# streaming) matters more than the few bytes saved per body; on a metered or slow link the bytes matter too.
# Compare the p99 column with the median: the slowest 1 % of calls (a garbage-collection pause, a thread
# switch, here for REST also a slow connection set-up) is what a caller waiting on many calls at once feels,
# because the slowest of them decides when it can answer (week 24 returns to this "tail at scale").
#
# ### Server streaming vs pagination
#
# Fetching the whole catalogue: REST must page (each page a request, each carrying the token of the last),
# gRPC can page the same way, or open **one server stream** and receive products as the server produces
# them. We measure the calls made, the time to the first product and the time to all of them, twice: on
# loopback, and through a tap that delays every byte by 5 ms in each direction, a 10 ms round trip like a
# call between two nearby data centres (`rpc.tap(port, delay_ms=5)`; a new TCP connection also pays one
# extra round trip for its handshake, as on a real network).

# %%
def rest_pages(base_url, page_size=20):
    token, got, calls, first = "", [], 0, None
    t0 = time.perf_counter()
    while True:
        page = rest.get(f"{base_url}/v1/products", params={"page_size": page_size, "page_token": token},
                        timeout=5).json()
        calls += 1
        got += page["products"]
        first = first or (time.perf_counter() - t0) * 1000
        token = page["next_page_token"]
        if not token:
            return len(got), calls, first, (time.perf_counter() - t0) * 1000


def grpc_pages(client, page_size=20):
    token, got, calls, first = "", [], 0, None
    t0 = time.perf_counter()
    while True:
        page = client.ListProducts(shop_pb2.ListProductsRequest(page_size=page_size, page_token=token), timeout=5)
        calls += 1
        got += page.products
        first = first or (time.perf_counter() - t0) * 1000
        token = page.next_page_token
        if not token:
            return len(got), calls, first, (time.perf_counter() - t0) * 1000


def grpc_stream(client):
    got, first = 0, None
    t0 = time.perf_counter()
    for _product in client.StreamProducts(shop_pb2.ListProductsRequest(), timeout=5):
        got += 1
        first = first or (time.perf_counter() - t0) * 1000
    return got, 1, first, (time.perf_counter() - t0) * 1000


far_rest, far_grpc = rpc.tap(http.port, "rest-10ms", delay_ms=5), rpc.tap(catalog.port, "grpc-10ms", delay_ms=5)
far_stub = shop_grpc.CatalogStub(rpc.channel(f"127.0.0.1:{far_grpc.port}"))
rows = []
for network, base_url, client in (("loopback", http.url, stub),
                                  ("10 ms round trip", f"http://127.0.0.1:{far_rest.port}", far_stub)):
    for how, fn, target in (("REST, pages of 20", rest_pages, base_url), ("gRPC, pages of 20", grpc_pages, client),
                            ("gRPC, one server stream", grpc_stream, client)):
        best = min((fn(target) for _ in range(2)), key=lambda r: r[3])  # best of 2 (the first opens connections)
        rows.append(dict(zip(("products", "calls", "first product (ms)", "all products (ms)"), best, strict=True),
                         network=network, how=how))
listing = pd.DataFrame(rows).set_index(["network", "how"])
total = listing["all products (ms)"]
for network in ("loopback", "10 ms round trip"):
    print(f"{network:>16}: the stream takes {total[network, 'gRPC, one server stream'] / total[network, 'gRPC, pages of 20']:.2f}x"
          f" the time of gRPC pagination and {total[network, 'gRPC, one server stream'] / total[network, 'REST, pages of 20']:.2f}x"
          " that of REST pagination")
listing.round(2)

# %% [markdown]
# On loopback the stream does not win against gRPC pagination (first line): Python's gRPC writes each
# streamed message separately through the server's thread pool, so 200 small messages cost more than 10
# unary pages of 20 (sending pages *as* stream messages would fix that). Put a network in between and the
# ranking flips (second line): each page costs a round trip, each REST page here a second one for its new
# connection, while the stream pays one round trip and then receives products back to back. Streaming saves
# **round trips**, which is what networks charge for.
#
# Pagination has its own strengths, which is why public APIs keep it: each page is a short, stateless,
# retryable request (a broken stream restarts from the beginning unless it carries a token, as
# `StreamProducts` accepts), pages can be cached, and a load balancer can send each page to a different
# server, while a stream pins one connection to one server for its whole life.
#
# ### Deadlines
#
# A client timeout in REST is private to the client: the server never learns that nobody is waiting any
# more. A gRPC **deadline** travels with the call (the `grpc-timeout` header): the server can read the time
# left (`context.time_remaining()`), and when the deadline passes, gRPC cancels the call on both sides: the
# client gets `DEADLINE_EXCEEDED` and the server's `context.is_active()` turns false. `GetQuote` checks it
# while working, so it stops early instead of finishing work nobody will read.

# %%
WORK_LOG.clear()
t0 = time.perf_counter()
try:
    stub.GetQuote(shop_pb2.QuoteRequest(sku="SKU-000042", quantity=3, work_ms=400), timeout=0.1)
except grpc.RpcError as e:
    print(f"client: {e.code().name} after {(time.perf_counter() - t0) * 1000:.0f} ms")
_svc, _sku, worked, finished = work_done()
print(f"server: worked {worked:.0f} ms, finished the work: {finished}")
print("with enough time:", stub.GetQuote(shop_pb2.QuoteRequest(sku="SKU-000042", quantity=3, work_ms=20), timeout=1))

# %% [markdown]
# **Deadline propagation.** A deadline is a budget for the *whole* call tree. When `Checkout.PlaceOrder`
# calls `Catalog.GetQuote`, it should pass on what is left of its own budget, not start a fresh timeout: if
# it waits with its own two-second timeout, `Catalog` keeps working for a client that gave up long ago, and
# in an overload that wasted work is what keeps the system overloaded. Go, Java and C++ gRPC carry the
# deadline along in the call context; in Python you pass it on by hand as
# `timeout=context.time_remaining()`. Two `Checkout` servers, one of each kind, receive the same order with
# a 150 ms deadline for a quote that needs 400 ms of work:

# %%
class CheckoutService(shop_grpc.CheckoutServicer):
    def __init__(self, propagate: bool):
        self.propagate = propagate
        self.catalog = shop_grpc.CatalogStub(rpc.channel(catalog.target))

    def PlaceOrder(self, request, context):
        budget = context.time_remaining() if self.propagate else 2.0    # what is left, or a fresh 2 s
        try:
            return self.catalog.GetQuote(request, timeout=budget)
        except grpc.RpcError as e:
            context.abort(e.code(), f"catalog: {e.details()}")


checkouts = {propagate: rpc.serve(shop_grpc.add_CheckoutServicer_to_server, CheckoutService(propagate),
                                  f"checkout-propagate-{propagate}") for propagate in (False, True)}
propagation = []
for propagate, server in checkouts.items():
    WORK_LOG.clear()
    t0 = time.perf_counter()
    try:
        server.stub(shop_grpc.CheckoutStub).PlaceOrder(
            shop_pb2.QuoteRequest(sku="SKU-000042", quantity=1, work_ms=400), timeout=0.15)
    except grpc.RpcError as e:
        client_gave_up = (time.perf_counter() - t0) * 1000
        code = e.code().name
    _svc, _sku, worked, finished = work_done()
    propagation.append({"Checkout passes on": "its remaining time" if propagate else "a fresh 2 s timeout",
                        "client sees": code, "client waited (ms)": client_gave_up, "Catalog worked (ms)": worked,
                        "Catalog finished the work": finished,
                        "work after the client gave up (ms)": max(0.0, worked - client_gave_up)})
propagation = pd.DataFrame(propagation).set_index("Checkout passes on")
propagation.round(0)

# %% [markdown]
# Both clients stopped waiting at their 150 ms deadline. Without propagation, `Catalog` kept working after
# the client had gone and finished all 400 ms of it (the last two columns); with propagation, its call
# carried the same absolute deadline and was cancelled at the same moment as the client's. Leave a little margin when you
# pass the budget on (the caller needs time to send the answer back), and never *extend* it.

# %% [markdown]
# ## Protocol Buffers
#
# Protocol Buffers (protobuf) is the encoding behind gRPC, and the one DDIA uses to explain binary
# encodings. Here is DDIA's example schema (it uses the older proto2 syntax, with `required` and
# `optional`) and its example record:

# %%
DDIA_PROTO = """
syntax = "proto2";

message Person {
  required string user_name       = 1;
  optional int64  favorite_number = 2;
  repeated string interests       = 3;
}
"""
ddia_pb2, _ = rpc.compile_proto(DDIA_PROTO, "ddia")
Person = ddia_pb2.Person
martin = {"userName": "Martin", "favoriteNumber": 1337, "interests": ["daydreaming", "hacking"]}
martin_pb = Person(user_name="Martin", favorite_number=1337, interests=["daydreaming", "hacking"]).SerializeToString()
assert len(martin_pb) == 33, len(martin_pb)
print(len(martin_pb), "bytes:", martin_pb.hex(" "))

# %% [markdown]
# 33 bytes, as in the book. Reading them from the left:
#
# | bytes | meaning |
# |---|---|
# | `0a` | key: field 1, wire type 2 (length-delimited): `(1 << 3) \| 2` |
# | `06` | length 6 |
# | `4d 61 72 74 69 6e` | `Martin` in UTF-8 |
# | `10` | key: field 2, wire type 0 (varint): `(2 << 3) \| 0` |
# | `b9 0a` | 1337 as a varint |
# | `1a 0b` + 11 bytes | key: field 3, wire type 2; length 11; `daydreaming` |
# | `1a 07` + 7 bytes | field 3 again (a repeated field is just the field several times); `hacking` |
#
# Every field is a **key** followed by a value. The key is a varint of `field_number << 3 | wire_type`. The
# **wire type** tells a reader how long the value is *without knowing the schema*, which is what lets old
# code skip fields it has never heard of:
#
# | wire type | name | used for | the value is |
# |---|---|---|---|
# | 0 | VARINT | `int32`, `int64`, `uint32`, `uint64`, `sint32`, `sint64`, `bool`, `enum` | a varint |
# | 1 | I64 | `fixed64`, `sfixed64`, `double` | 8 bytes, little-endian |
# | 2 | LEN | `string`, `bytes`, messages, packed repeated numbers | a varint length, then that many bytes |
# | 5 | I32 | `fixed32`, `sfixed32`, `float` | 4 bytes, little-endian |
#
# (3 and 4 were the start and end of "groups", deprecated.) Parsing the bytes with a message type that
# has **no fields** shows exactly what a schema-less reader sees: field numbers, wire types and raw values.

# %%
Empty = rpc.compile_proto('syntax = "proto3"; message Empty {}', "empty")[0].Empty
blind = Empty.FromString(martin_pb)
pd.DataFrame([{"field number": f.field_number, "wire type": f.wire_type, "raw value": f.data}
              for f in UnknownFieldSet(blind)])

# %% [markdown]
# **Varints.** A varint stores an unsigned integer in 7-bit groups, **least significant group first**; each
# byte carries one group in its low 7 bits, and its top bit (the *continuation bit*, `0x80`) is 1 when more
# bytes follow. 1337 is `0b101_0011_1001`: the low 7 bits `0111001` (0x39) go first with the continuation
# bit set (`0x39 | 0x80 = 0xb9`), then the remaining `1010` (0x0a) without it: `b9 0a`. Values below 128
# take one byte, below 16,384 two, and a 64-bit value at most ten.
#
# **Negative numbers and zigzag.** An `int64` of -1 is encoded as the unsigned 64-bit number with the
# same bits (2^64 - 1): ten bytes. For fields that are often negative, `sint64` first maps signed to
# unsigned with **zigzag** encoding, `(n << 1) ^ (n >> 63)`, which sends 0, -1, 1, -2, 2 ... to 0, 1, 2, 3,
# 4 ... so small magnitudes stay small. Avro uses zigzag for all its `int` and `long` values.

# %%
Numbers = rpc.compile_proto('syntax = "proto3"; message Numbers { optional int64 i = 1; optional sint64 s = 2;'
                            ' optional uint64 u = 3; }', "numbers")[0].Numbers
pd.DataFrame([{"value": v, "int64 bytes": Numbers(i=v).SerializeToString()[1:].hex(" "),
               "sint64 bytes": Numbers(s=v).SerializeToString()[1:].hex(" ")}
              for v in (0, 1, -1, 63, -64, 64, 1337, -1337, 2**31, -(2**63))])

# %% [markdown]
# ### Exercise 1: varints and zigzag (5 points)
#
# Write the four functions below. The tests compare your bytes with the protobuf library's on thousands of
# values, including every boundary where a varint gains a byte, and decode long runs of concatenated
# varints.

# %% nbgrader={"grade_id": "week19-api-fundamentals-ex01-varint", "solution": true}
def encode_varint(n: int) -> bytes:
    """The varint of 0 <= n < 2**64: 7-bit groups, least significant first, the top bit (0x80) set on
    every byte except the last. Raises ValueError for n outside that range."""
    ### BEGIN SOLUTION
    if not 0 <= n < 2**64:
        raise ValueError(f"{n} is not a 64-bit unsigned integer")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
    ### END SOLUTION


def decode_varint(data: bytes, pos: int = 0) -> tuple:
    """(value, position just after the varint) for the varint starting at data[pos].
    Raises ValueError if the data ends before the varint does."""
    ### BEGIN SOLUTION
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    ### END SOLUTION


def zigzag(n: int) -> int:
    """Zigzag of a signed 64-bit n (-2**63 <= n < 2**63): 0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ..."""
    ### BEGIN SOLUTION
    return (n << 1) ^ (n >> 63)
    ### END SOLUTION


def unzigzag(z: int) -> int:
    """The inverse of zigzag: 0, 1, 2, 3, 4 ... -> 0, -1, 1, -2, 2 ..."""
    ### BEGIN SOLUTION
    return (z >> 1) ^ -(z & 1)
    ### END SOLUTION


# %% nbgrader={"grade_id": "week19-api-fundamentals-ex01-varint-tests", "grade": true, "points": 2}
assert type(encode_varint(1337)) is bytes and encode_varint(1337) == bytes([0xB9, 0x0A])
assert encode_varint(0) == b"\x00" and encode_varint(127) == b"\x7f" and encode_varint(128) == b"\x80\x01"
assert encode_varint(2**64 - 1) == b"\xff" * 9 + b"\x01"
_r = decode_varint(b"\xb9\x0a")
assert type(_r) is tuple and _r == (1337, 2) and type(_r[0]) is int and type(_r[1]) is int, _r
assert decode_varint(b"\x00\xac\x02\x05", 1) == (300, 3)
assert [zigzag(n) for n in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]
assert [unzigzag(z) for z in (0, 1, 2, 3, 4)] == [0, -1, 1, -2, 2]
for _v in (0, 1, 300, 1337, 2**40):
    assert b"\x18" + encode_varint(_v) == Numbers(u=_v).SerializeToString(), _v
    assert b"\x10" + encode_varint(zigzag(-_v)) == Numbers(s=-_v).SerializeToString(), _v
print("visible varint tests pass")

# %% nbgrader={"grade_id": "week19-api-fundamentals-ex01-varint-hidden", "grade": true, "points": 3}
assert decode_varint(encode_varint(5))[0] == 5
### BEGIN HIDDEN TESTS
import random as _random

from archlab import rpc as _rpc

_N = _rpc.compile_proto('syntax = "proto3"; message N { optional uint64 u = 1; optional sint64 s = 2; '
                        'optional int64 i = 3; }', "hidden_n")[0].N
_rng = _random.Random(1919)
_values = [0, 1, 2**64 - 1, 2**63, 2**63 - 1] + [2 ** (7 * k) + d for k in range(1, 10) for d in (-1, 0, 1)]
_values += [_rng.randrange(2 ** _rng.randrange(1, 65)) for _ in range(3000)]
for _v in _values:
    _got = encode_varint(_v)
    assert type(_got) is bytes, type(_got)
    assert b"\x08" + _got == _N(u=_v).SerializeToString(), (_v, _got.hex())
for _bad in (-1, 2**64, -(2**70)):
    try:
        encode_varint(_bad)
        raise AssertionError(f"encode_varint({_bad}) must raise ValueError")
    except ValueError:
        pass
_signed = [0, -1, 1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)]
_signed += [_rng.randrange(-(2**63), 2**63) >> _rng.randrange(0, 63) for _ in range(3000)]
for _n in _signed:
    _z = zigzag(_n)
    assert type(_z) is int and 0 <= _z < 2**64, (_n, _z)
    assert b"\x10" + encode_varint(_z) == _N(s=_n).SerializeToString(), (_n, _z)
    assert type(unzigzag(_z)) is int and unzigzag(_z) == _n, (_n, _z)
    assert b"\x18" + encode_varint(_n % 2**64) == _N(i=_n).SerializeToString(), _n     # int64: two's complement
_run = b"".join(_N(u=_v).SerializeToString()[1:] for _v in _values[:500])             # the library's varints
_pos, _back = 0, []
while _pos < len(_run) and len(_back) <= 500:
    _val, _next = decode_varint(_run, _pos)
    assert type(_val) is int and type(_next) is int and _next > _pos, f"decode_varint(data, {_pos}) returned {_next}"
    _back.append(_val)
    _pos = _next
assert _back == [_v for _v in _values[:500]], "decoding a run of concatenated varints"
for _trunc in (b"", b"\x80", b"\xff\xff", _N(u=2**40).SerializeToString()[1:-1]):
    try:
        decode_varint(_trunc)
        raise AssertionError(f"decode_varint({_trunc!r}) must raise ValueError")
    except ValueError:
        pass
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: DDIA's Person, by hand (5 points)
#
# Encode a `Person` of the proto2 schema above in the protobuf wire format without the library, using your
# `encode_varint`. It must be **byte for byte** what `Person(...).SerializeToString()` gives:
#
# - fields in field-number order: `user_name` (1), then `favorite_number` (2), then each interest (3);
# - strings are UTF-8, and their length prefix counts **bytes**, not characters;
# - `favorite_number` is an `int64`: written whenever it is not `None` (proto2 `optional` has presence, so
#   0 is written), as the varint of its 64-bit two's complement (negative numbers take ten bytes; `int64`
#   does not use zigzag);
# - a repeated field is the same key and value once per element, in order.

# %% nbgrader={"grade_id": "week19-api-fundamentals-ex02-person-encoder", "solution": true}
def encode_person(user_name: str, favorite_number=None, interests=()) -> bytes:
    """DDIA's Person (proto2: required string user_name = 1; optional int64 favorite_number = 2;
    repeated string interests = 3) in protobuf wire format. favorite_number: an int or None."""
    ### BEGIN SOLUTION
    def key(field, wire_type):
        return encode_varint(field << 3 | wire_type)

    def text(field, s):
        data = s.encode("utf-8")
        return key(field, 2) + encode_varint(len(data)) + data

    out = text(1, user_name)
    if favorite_number is not None:
        out += key(2, 0) + encode_varint(favorite_number % 2**64)
    for interest in interests:
        out += text(3, interest)
    return out
    ### END SOLUTION


# %% nbgrader={"grade_id": "week19-api-fundamentals-ex02-person-encoder-tests", "grade": true, "points": 2}
_b = encode_person("Martin", 1337, ["daydreaming", "hacking"])
assert type(_b) is bytes, type(_b)
assert _b == martin_pb, f"{_b.hex(' ')}\n{martin_pb.hex(' ')}"
assert encode_person("Ada") == Person(user_name="Ada").SerializeToString()
assert encode_person("Ada", 7) == Person(user_name="Ada", favorite_number=7).SerializeToString()
print("visible encoder tests pass: 33 bytes, exactly the library's")

# %% nbgrader={"grade_id": "week19-api-fundamentals-ex02-person-encoder-hidden", "grade": true, "points": 3}
assert type(encode_person("x", None, [])) is bytes
### BEGIN HIDDEN TESTS
import random as _random

from archlab import rpc as _rpc

_P = _rpc.compile_proto('syntax = "proto2";\nmessage Person {\n  required string user_name = 1;\n'
                        '  optional int64 favorite_number = 2;\n  repeated string interests = 3;\n}\n',
                        "hidden_person")[0].Person


def _lib(name, number, interests):
    p = _P(user_name=name, interests=interests)
    if number is not None:
        p.favorite_number = number
    return p.SerializeToString()


_cases = [("", None, []), ("", 0, []), ("Zoë", 0, ["", "café"]), ("日本語", -1, ["☃"]), ("x" * 200, 2**63 - 1, []),
          ("é" * 70, -(2**63), ["y" * 128]), ("Kleppmann", -1337, ["a"] * 20), ("🙂", 128, ["z" * 16384])]
_rng = _random.Random(2020)
_alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ éüßøñ中文日本🙂"
for _ in range(400):
    _name = "".join(_rng.choice(_alphabet) for _ in range(_rng.choice([0, 1, 5, 40, 130])))
    _num = _rng.choice([None, 0, _rng.randrange(-(2**63), 2**63), _rng.randrange(-300, 300),
                        _rng.randrange(2 ** _rng.randrange(1, 63))])
    _ints = ["".join(_rng.choice(_alphabet) for _ in range(_rng.choice([0, 3, 12, 140]))) for _ in range(_rng.randrange(4))]
    _cases.append((_name, _num, _ints))
for _name, _num, _ints in _cases:
    _got = encode_person(_name, _num, list(_ints))
    assert type(_got) is bytes, type(_got)
    assert _got == _lib(_name, _num, _ints), (_name, _num, _ints, _got[:40].hex(" "), _lib(_name, _num, _ints)[:40].hex(" "))
    assert _got == encode_person(_name, _num, tuple(_ints)), "interests may be any sequence"
### END HIDDEN TESTS

# %% [markdown]
# Your encoder and the library agree; and since the format is the same for every language, so do the Java,
# Go and C++ libraries. Decoding is the mirror image: read a key, split it into field number and wire type,
# read the value the wire type says, repeat. Your `decode_varint` is enough to walk the 33 bytes:

# %%
needs(solved(decode_varint, b"\x00"), "Exercise 1")
pos, walked = 0, []
while pos < len(martin_pb):
    k, pos = decode_varint(martin_pb, pos)
    field, wire_type = k >> 3, k & 7
    if wire_type == 0:
        value, pos = decode_varint(martin_pb, pos)
    else:                                            # wire type 2: a length, then the bytes
        length, pos = decode_varint(martin_pb, pos)
        value, pos = martin_pb[pos:pos + length].decode(), pos + length
    walked.append({"field": field, "wire type": wire_type, "value": value})
pd.DataFrame(walked)

# %% [markdown]
# ### Field presence: proto2, proto3 and the zero value
#
# proto3 (the syntax of `SHOP_PROTO`) dropped `required`, and by default a scalar field has **no presence**:
# a field equal to its zero value (0, "", false) is simply not written, and a reader cannot tell "0" from
# "never set". Mark the field `optional` (allowed again since protobuf 3.15) when that difference matters,
# e.g. a discount of 0 versus no discount known.

# %%
P3 = rpc.compile_proto('syntax = "proto3"; message P3 { string user_name = 1; int64 favorite_number = 2;'
                       ' optional int64 lucky_number = 3; }', "p3")[0].P3
zero = P3(user_name="Martin", favorite_number=0, lucky_number=0)
back = P3.FromString(zero.SerializeToString())
print("proto2, favorite_number = 0:", Person(user_name="Martin", favorite_number=0).SerializeToString().hex(" "))
print("proto3, both numbers = 0   :", zero.SerializeToString().hex(" "))
print("proto3 reader: HasField('lucky_number') =", back.HasField("lucky_number"),
      "| favorite_number has no presence to ask about, it just reads", back.favorite_number)

# %% [markdown]
# ### Schema evolution: what the field numbers buy
#
# Services are deployed one at a time, so for a while old and new code run side by side: **new code reads
# data written by old code** (*backward compatibility*) and **old code reads data written by new code**
# (*forward compatibility*), in messages on the wire and in data at rest. Protocol Buffers get both from
# three rules:
#
# 1. a field is identified by its **number**, never its name: names can change freely (in the binary
#    format; the JSON mapping does use names);
# 2. a reader **skips** a field number it does not know (the wire type says how long it is) and, in
#    current libraries, *keeps* it as an unknown field, so old code that reads, modifies and writes a
#    record back does not destroy the new fields;
# 3. a field the data does not contain reads as its default.
#
# So: add fields with new numbers; delete fields but **never reuse their numbers** (declare them
# `reserved`); change a type only to one with the same wire type and the same value encoding. Here is rule
# 2 at work: version 2 adds an `email`, version 1 code reads a v2 record, changes the favourite number and
# writes it back, and version 2 code still finds the email. (`rpc.compile_proto` gives every `.proto` its
# own descriptor pool, so both versions of `ddia.evolution.Person` live in this kernel.)

# %%
def proto_person(*fields):
    body = "\n  ".join(fields)
    return f'syntax = "proto3";\npackage ddia.evolution;\nmessage Person {{\n  {body}\n}}\n'


V1_FIELDS = ("string user_name = 1;", "int64 favorite_number = 2;", "repeated string interests = 3;")
PersonV1 = rpc.compile_proto(proto_person(*V1_FIELDS), "person_v1")[0].Person
PersonV2 = rpc.compile_proto(proto_person(*V1_FIELDS, "string email = 4;"), "person_v2")[0].Person

new_bytes = PersonV2(user_name="Martin", favorite_number=1337, email="martin@example.com").SerializeToString()
old_view = PersonV1.FromString(new_bytes)
print("v1 reads v2:", str(old_view).replace("\n", "  "), "| unknown fields kept:",
      [(f.field_number, f.data) for f in UnknownFieldSet(old_view)])
old_view.favorite_number = 1338
round_trip = PersonV2.FromString(old_view.SerializeToString())
print("v2 reads what v1 wrote back:", str(round_trip).replace("\n", "  "))

# %% [markdown]
# ## Serialization
#
# DDIA ch. 4 encodes the same record in several formats to compare their sizes. The record:
# `{"userName": "Martin", "favoriteNumber": 1337, "interests": ["daydreaming", "hacking"]}`. Its Avro schema
# (the book's) names the fields; `favoriteNumber` is a union with null, so it may be missing:

# %%
AVRO_PERSON = {
    "type": "record", "name": "Person",
    "fields": [{"name": "userName", "type": "string"},
               {"name": "favoriteNumber", "type": ["null", "long"], "default": None},
               {"name": "interests", "type": {"type": "array", "items": "string"}}],
}
avro_person = fastavro.parse_schema(AVRO_PERSON)


def avro_bytes(record, schema=avro_person):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


encoded = {
    "JSON (compact)": json.dumps(martin, separators=(",", ":")).encode(),
    "MessagePack": msgpack.packb(martin),
    "Protocol Buffers": martin_pb,
    "Avro": avro_bytes(martin),
}
kleppmann = {"JSON (compact)": 81, "MessagePack": 66, "Protocol Buffers": 33, "Avro": 32}
for fmt, data in encoded.items():
    assert len(data) == kleppmann[fmt], (fmt, len(data))
pd.DataFrame({"bytes (measured)": {k: len(v) for k, v in encoded.items()}, "bytes (DDIA ch. 4)": kleppmann,
              "first bytes": {k: v[:16].hex(" ") + " ..." for k, v in encoded.items()}})

# %% [markdown]
# All four counts match the book (DDIA also shows Thrift: 59 bytes with BinaryProtocol, 34 with
# CompactProtocol). Where the bytes go:
#
# - **JSON** spells out every field name and every digit, plus quotes, colons and commas;
# - **MessagePack** is binary JSON: a type byte before each value (`0x83` "map of 3", `0xa8` "string of 8"),
#   1337 as a 2-byte integer, but still every field name, so it saves little;
# - **Protocol Buffers** replaces names by one-byte keys;
# - **Avro** has no keys at all: the fields are simply written in schema order, so the bytes only mean
#   something to a reader that has the writer's schema. Avro's 32 bytes: `0c` (6 as zigzag: the length of
#   "Martin"), the 6 letters, `02` (union branch 1, `long`), `f2 14` (1337 zigzagged, 2674, as a varint),
#   `04` (an array block of 2 items), `16` + 11 letters, `0e` + 7 letters, `00` (end of the array).
#
# ### Encode and decode speed
#
# Size is one cost; CPU is the other. Each library below is a C (or Cython) extension, so the comparison
# is fair within Python; in another language the order can differ. Each number is the best of 3 runs of
# 5,000 operations on the record.

# %%
def bench_us(fn, number=5_000):
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


martin_json, martin_mp, martin_avro = encoded["JSON (compact)"], encoded["MessagePack"], encoded["Avro"]
speed = pd.DataFrame({
    "JSON": {"encode (µs)": bench_us(lambda: json.dumps(martin, separators=(",", ":"))),
             "decode (µs)": bench_us(lambda: json.loads(martin_json))},
    "MessagePack": {"encode (µs)": bench_us(lambda: msgpack.packb(martin)),
                    "decode (µs)": bench_us(lambda: msgpack.unpackb(martin_mp))},
    "Protocol Buffers": {
        "encode (µs)": bench_us(lambda: Person(user_name=martin["userName"], favorite_number=martin["favoriteNumber"],
                                               interests=martin["interests"]).SerializeToString()),
        "decode (µs)": bench_us(lambda: Person.FromString(martin_pb))},
    "Avro": {"encode (µs)": bench_us(lambda: avro_bytes(martin)),
             "decode (µs)": bench_us(lambda: fastavro.schemaless_reader(io.BytesIO(martin_avro), avro_person))},
}).T
speed["round trip vs JSON"] = (speed["encode (µs)"] + speed["decode (µs)"]) / (speed.loc["JSON"].sum())
fastest, slowest = speed["round trip vs JSON"].idxmin(), speed["round trip vs JSON"].idxmax()
print(f"fastest round trip: {fastest}; slowest: {slowest}, "
      f"{speed.loc[slowest, 'round trip vs JSON'] / speed.loc[fastest, 'round trip vs JSON']:.1f}x the fastest")
speed.round(2)

# %% [markdown]
# For one small record every format takes at most a few microseconds, and the differences come from how much Python
# work each library does per call (building a protobuf message object, or Avro resolving its schema and a
# `BytesIO` per record), not from the format itself. What the encoding changes for certain is the bytes,
# and therefore the network and storage cost. In the widget below, change the batch size and the shape of
# the records and watch where each format's bytes go, raw and after gzip (what most HTTP servers apply to
# JSON responses). Try one record versus 1,000; names of 0 versus 64 letters; numbers of 1 versus 18 digits.

# %%
payload_widget(Person, AVRO_PERSON, records=100)

# %% [markdown]
# Things to notice: field names cost JSON and MessagePack a fixed amount per record, so they matter for
# small records and vanish in the noise for long strings; a long number is one byte per digit in JSON but
# 7 bits per byte as a varint; gzip removes most of the repeated field names from a large JSON batch
# (but makes a single record *bigger*), so that for large batches gzipped JSON competes with uncompressed
# binary formats (compare the bars); and an Avro container file carries its schema once in its header,
# which is expensive for one record and free for a thousand.
#
# ### Avro schema evolution: writer's schema and reader's schema
#
# Avro bytes have no field numbers and no names, so Avro needs a different mechanism: the reader always
# knows **the writer's schema** (from the file header, a schema registry keyed by an ID in the message, or
# a handshake) **and its own reader's schema**, and *resolves* one against the other while decoding:
#
# - fields are matched **by name** (or by one of the reader field's `aliases`), in any order;
# - a field in the writer's schema but not the reader's is skipped;
# - a field in the reader's schema but not the writer's gets the reader's **default**, and if it has none,
#   decoding fails;
# - a value may be **promoted**: `int` to `long`, `float` or `double`; `long` to `float` or `double`;
#   `float` to `double`; `string` and `bytes` into each other; any other type change fails;
# - unions resolve branch by branch: the branch the writer used must be readable by some branch of the
#   reader's union (or by the reader's type, if it is not a union).
#
# That is why, in Avro, "you may only add or remove a field that has a default value" (DDIA): the default
# is what the other side uses when the field is missing. With `fastavro` we decode v1 data with a v2
# reader that added `email` with a default, and with a v2 reader that forgot the default:

# %%
with_default = {**AVRO_PERSON, "fields": [*AVRO_PERSON["fields"],
                                          {"name": "email", "type": ["null", "string"], "default": None}]}
no_default = {**AVRO_PERSON, "fields": [*AVRO_PERSON["fields"], {"name": "email", "type": "string"}]}
old_data = avro_bytes(martin)
print("v2 with default reads v1 data:", fastavro.schemaless_reader(io.BytesIO(old_data), avro_person,
                                                                  fastavro.parse_schema(with_default)))
try:
    fastavro.schemaless_reader(io.BytesIO(old_data), avro_person, fastavro.parse_schema(no_default))
except fastavro.read.SchemaResolutionError as e:
    print("v2 without default:", type(e).__name__, "-", e)

# %% [markdown]
# ### The compatibility matrix
#
# Now every common change, in both formats and both directions, decided by **actually decoding**: write the
# record with one version, read it with the other, and compare what comes out with what went in. Each cell
# is one of:
#
# - `ok`: every field read back as written;
# - `ok (default)`: a field the writer did not have was read as its default;
# - `ok (skipped)`: a field the reader does not know was skipped (protobuf keeps it as an unknown field);
# - `LOST`: a value that was written reads as empty or zero, silently;
# - `GARBLED`: a value reads as a *different* value, silently;
# - `ERROR`: decoding failed;
# - `n/a`: the change does not exist in that format.
#
# **Predict first.** Fill in the table with what you expect (not graded; the next cell compares), then run
# the two cells after it.

# %%
OUTCOMES = ("ok", "ok (default)", "ok (skipped)", "LOST", "GARBLED", "ERROR", "n/a")
# columns: protobuf new-reads-old, protobuf old-reads-new, Avro new-reads-old, Avro old-reads-new
my_prediction = {
    "add a field with a default": ["?", "?", "?", "?"],
    "add a field without a default": ["?", "?", "?", "?"],
    "remove a field that has a default": ["?", "?", "?", "?"],
    "remove a field without a default": ["?", "?", "?", "?"],
    "rename a field": ["?", "?", "?", "?"],
    "change long to double": ["?", "?", "?", "?"],
    "change long to string": ["?", "?", "?", "?"],
    "change a field number": ["?", "?", "n/a", "n/a"],
    "change int64 to sint64": ["?", "?", "n/a", "n/a"],
}

# %% [markdown]
# Each change is a version 2 of the same schema, in both formats (`P`: the protobuf field lines of
# version 1, `A`: the Avro fields of version 1); `SAME` says which field names mean the same thing, so
# that a renamed field is compared with its old self.

# %%
P = V1_FIELDS                                           # user_name = 1, favorite_number = 2, interests = 3
A_NAME, A_NUMBER, A_INTERESTS = AVRO_PERSON["fields"]


def avro_v2(*fields):
    return {"type": "record", "name": "Person", "fields": list(fields)}


EMAIL = {"name": "email", "type": ["null", "string"], "default": None}
CHANGES = {   # change: (protobuf version 2, Avro version 2 or None)
    "add a field with a default": (proto_person(*P, "string email = 4;"), avro_v2(*AVRO_PERSON["fields"], EMAIL)),
    "add a field without a default": (proto_person(*P, "string email = 4;"),
                                      avro_v2(*AVRO_PERSON["fields"], {"name": "email", "type": "string"})),
    "remove a field that has a default": (proto_person(P[0], P[2], "reserved 2;"), avro_v2(A_NAME, A_INTERESTS)),
    "remove a field without a default": (proto_person(P[1], P[2], "reserved 1;"), avro_v2(A_NUMBER, A_INTERESTS)),
    "rename a field": (proto_person("string name = 1;", P[1], P[2]),
                       avro_v2({"name": "name", "type": "string", "aliases": ["userName"]}, A_NUMBER, A_INTERESTS)),
    "change long to double": (proto_person(P[0], "double favorite_number = 2;", P[2]),
                              avro_v2(A_NAME, {**A_NUMBER, "type": ["null", "double"]}, A_INTERESTS)),
    "change long to string": (proto_person(P[0], "string favorite_number = 2;", P[2]),
                              avro_v2(A_NAME, {**A_NUMBER, "type": ["null", "string"]}, A_INTERESTS)),
    "change a field number": (proto_person(P[0], "int64 favorite_number = 4;", P[2]), None),
    "change int64 to sint64": (proto_person(P[0], "sint64 favorite_number = 2;", P[2]), None),
}
SAME = {"user_name": "userName", "name": "userName", "favorite_number": "favoriteNumber"}   # else: the same name
VALUES = {"userName": "Martin", "favoriteNumber": 1337, "interests": ["daydreaming", "hacking"],
          "email": "martin@example.com"}


def meaning(field):
    return SAME.get(field, field)


def sample(fields, number_type=None):
    """The record a writer with these fields writes (the favourite number as a float or a string if
    number_type says so)."""
    record = {f: VALUES[meaning(f)] for f in fields}
    for f in record:
        if meaning(f) == "favoriteNumber" and number_type:
            record[f] = {"double": float, "string": str}[number_type](record[f])
    return record


def verdict(written: dict, read: dict | None, reader_fields) -> str:
    """Compare what a writer wrote with what a reader read (both keyed by field name)."""
    if read is None:
        return "ERROR"
    by_meaning = {meaning(f): v for f, v in written.items()}
    worst = "ok"
    for f in reader_fields:
        if meaning(f) not in by_meaning:
            state = "ok (default)"
        elif read[f] == by_meaning[meaning(f)]:
            state = "ok"
        elif read[f] in (0, 0.0, "", [], None):
            state = "LOST"
        else:
            state = "GARBLED"
        worst = max(worst, state, key=OUTCOMES.index)
    if worst == "ok" and set(by_meaning) - {meaning(f) for f in reader_fields}:
        worst = "ok (skipped)"
    return worst


def proto_case(writer_cls, reader_cls):
    number = writer_cls.DESCRIPTOR.fields_by_name.get("favorite_number")
    number_type = {number.TYPE_DOUBLE: "double", number.TYPE_STRING: "string"}.get(number.type) if number else None
    written = sample([f.name for f in writer_cls.DESCRIPTOR.fields], number_type)
    msg = reader_cls.FromString(writer_cls(**written).SerializeToString())
    read = {f.name: (list(getattr(msg, f.name)) if f.is_repeated else getattr(msg, f.name))
            for f in reader_cls.DESCRIPTOR.fields}
    return verdict(written, read, [f.name for f in reader_cls.DESCRIPTOR.fields])


def avro_case(writer_schema, reader_schema):
    number = next((f for f in writer_schema["fields"] if f["name"] == "favoriteNumber"), None)
    number_type = next((t for t in number["type"] if t in ("double", "string")), None) if number else None
    written = sample([f["name"] for f in writer_schema["fields"]], number_type)
    try:
        read = fastavro.schemaless_reader(io.BytesIO(avro_bytes(written, fastavro.parse_schema(writer_schema))),
                                          fastavro.parse_schema(writer_schema), fastavro.parse_schema(reader_schema))
    except fastavro.read.SchemaResolutionError:
        read = None
    return verdict(written, read, [f["name"] for f in reader_schema["fields"]])


matrix = {}
for change, (proto_v2, avro_schema_v2) in CHANGES.items():
    PersonNew = rpc.compile_proto(proto_v2, "person_change")[0].Person
    matrix[change] = [proto_case(PersonV1, PersonNew), proto_case(PersonNew, PersonV1),
                      avro_case(AVRO_PERSON, avro_schema_v2) if avro_schema_v2 else "n/a",
                      avro_case(avro_schema_v2, AVRO_PERSON) if avro_schema_v2 else "n/a"]
COLUMNS = pd.MultiIndex.from_product([["Protocol Buffers", "Avro"], ["new reads old", "old reads new"]])
compat = pd.DataFrame.from_dict(matrix, orient="index", columns=COLUMNS)
compat

# %%
prediction = pd.DataFrame.from_dict(my_prediction, orient="index", columns=COLUMNS)
guessed = (prediction != "?") & (compat != "n/a")
right = (prediction == compat) & guessed
print(f"you predicted {int(guessed.sum().sum())} of {int((compat != 'n/a').sum().sum())} cells, "
      f"{int(right.sum().sum())} of them correctly")
compat.where(~guessed | right, compat + "  ← you said: " + prediction)

# %% [markdown]
# Read the matrix column by column:
#
# - **Protocol Buffers never fails to decode.** Its failures are silent: a change of field number or of
#   wire type (`long` to `double` or `string`) turns the value into an unknown field, so it reads as zero
#   (`LOST`); a change between `int64` and `sint64` keeps the wire type but not the encoding (zigzag), so
#   1337 reads as a different number (`GARBLED`). Nothing in the bytes can catch that; only reviewing the
#   `.proto` diff can (tools such as `buf breaking` do it in CI). Removing a field is safe for the decoder,
#   but proto3's implicit defaults hide it from the application: old code reading new data sees `""` as
#   the user name.
# - **Avro fails loudly.** Resolution errors instead of guessing, and the default decides almost every
#   cell: a field added or removed *with* a default is fine both ways, *without* one breaks one direction.
#   An alias makes a rename readable by the new schema, but old readers do not know the new name. Type
#   promotion is one-way (`long` to `double` reads, `double` to `long` does not).
#
# Schema registries (Confluent's, for Kafka) name these directions: **BACKWARD** compatible = the new
# schema can read data written with the old one (consumers upgrade first), **FORWARD** = the old schema
# can read data written with the new one (producers upgrade first), **FULL** = both.
#
# ### Exercise 3: Avro's compatibility rules (6 points)
#
# Write the check a schema registry runs before it accepts a new schema. `avro_can_read(writer, reader)`
# says whether **every** record written with `writer` can be decoded with `reader`, by the rules listed
# above; `avro_compatibility(old, new)` names the relation. Schemas here are records with the same name
# whose field types are a primitive type name (`"boolean"`, `"int"`, `"long"`, `"float"`, `"double"`,
# `"string"`, `"bytes"`, `"null"`), a union (a list of primitive type names), or an array
# (`{"type": "array", "items": <primitive type name>}`). The hidden tests generate hundreds of schema pairs
# and compare your answer with what `fastavro` actually does when it decodes records that use every branch
# of every union.

# %% nbgrader={"grade_id": "week19-api-fundamentals-ex03-avro-compat", "solution": true}
PROMOTIONS = {"int": {"long", "float", "double"}, "long": {"float", "double"}, "float": {"double"},
              "string": {"bytes"}, "bytes": {"string"}}


def avro_can_read(writer: dict, reader: dict) -> bool:
    """True if every record written with the `writer` record schema decodes with the `reader` schema:
    - each reader field takes the writer field of the same name, or else the writer field whose name is
      in the reader field's "aliases"; a reader field with no such writer field needs a "default";
    - writer fields that no reader field takes are skipped;
    - a writer type W is readable as a reader type R when: W is a union and every branch of W is readable
      as R; else R is a union and W is readable as some branch of R; else both are arrays and W's items are
      readable as R's items; else W == R or R is in PROMOTIONS[W]."""
    ### BEGIN SOLUTION
    def readable(w, r):
        if isinstance(w, list):
            return all(readable(branch, r) for branch in w)
        if isinstance(r, list):
            return any(readable(w, branch) for branch in r)
        if isinstance(w, dict) or isinstance(r, dict):
            return (isinstance(w, dict) and isinstance(r, dict) and w["type"] == r["type"] == "array"
                    and readable(w["items"], r["items"]))
        return w == r or r in PROMOTIONS.get(w, set())

    written = {f["name"]: f for f in writer["fields"]}
    for field in reader["fields"]:
        source = next((written[n] for n in [field["name"], *field.get("aliases", [])] if n in written), None)
        if source is None:
            if "default" not in field:
                return False
        elif not readable(source["type"], field["type"]):
            return False
    return True
    ### END SOLUTION


def avro_compatibility(old: dict, new: dict) -> str:
    """"full" if each schema can read the other's data, "backward" if only the new schema can read data
    written with the old one, "forward" if only the old schema can read data written with the new one,
    "none" otherwise."""
    ### BEGIN SOLUTION
    backward, forward = avro_can_read(old, new), avro_can_read(new, old)
    return {(True, True): "full", (True, False): "backward", (False, True): "forward"}.get((backward, forward), "none")
    ### END SOLUTION


# %% nbgrader={"grade_id": "week19-api-fundamentals-ex03-avro-compat-tests", "grade": true, "points": 2}
def _rec(*fields):
    return {"type": "record", "name": "T", "fields": list(fields)}


_v1 = _rec({"name": "id", "type": "long"}, {"name": "note", "type": ["null", "string"], "default": None})
assert avro_can_read(_v1, _v1) is True
assert avro_can_read(_v1, _rec({"name": "id", "type": "long"})) is True                     # note skipped
assert avro_can_read(_rec({"name": "id", "type": "long"}), _v1) is True                     # note: default
assert avro_can_read(_v1, _rec({"name": "id", "type": "long"}, {"name": "x", "type": "int"})) is False
assert avro_can_read(_rec({"name": "n", "type": "int"}), _rec({"name": "n", "type": "double"})) is True
assert avro_can_read(_rec({"name": "n", "type": "double"}), _rec({"name": "n", "type": "int"})) is False
assert avro_compatibility(AVRO_PERSON, with_default) == "full"
assert avro_compatibility(AVRO_PERSON, no_default) == "forward"
_c = avro_compatibility(_rec({"name": "n", "type": "int"}), _rec({"name": "n", "type": "long"}))
assert type(_c) is str and _c == "backward", _c
print("visible Avro compatibility tests pass")

# %% nbgrader={"grade_id": "week19-api-fundamentals-ex03-avro-compat-hidden", "grade": true, "points": 4}
assert type(avro_can_read(AVRO_PERSON, AVRO_PERSON)) is bool
### BEGIN HIDDEN TESTS
import io as _io
import random as _random

import fastavro as _fastavro

_PRIMS = ["boolean", "int", "long", "float", "double", "string", "bytes"]
_NEAR = {"int": ["long", "float", "double", "string"], "long": ["int", "float", "double"],
         "float": ["double", "int", "long"], "double": ["float", "long"], "string": ["bytes", "int"],
         "bytes": ["string", "long"], "boolean": ["int", "string"]}


def _type(rng):
    k = rng.random()
    if k < 0.55:
        return rng.choice(_PRIMS)
    if k < 0.8:
        return ["null", rng.choice(_PRIMS)]
    if k < 0.9:
        return ["long", "string"]
    return {"type": "array", "items": rng.choice(_PRIMS)}


def _mutate(t, rng):
    if isinstance(t, str):
        return rng.choice(_NEAR[t] + [["null", t], ["null", rng.choice(_NEAR[t])]])
    if isinstance(t, list):
        if t[0] == "null":
            return rng.choice([t[1], ["null", rng.choice(_NEAR[t[1]])], ["null", t[1], "string"]])
        return rng.choice(["long", "string", ["string", "long"], ["null", "long", "string"], ["double", "string"]])
    return {"type": "array", "items": rng.choice(_NEAR[t["items"]] + [t["items"]])}


def _value(t, rng, branch):
    if isinstance(t, list):
        return _value(t[branch % len(t)], rng, branch)
    if isinstance(t, dict):
        return [_value(t["items"], rng, branch) for _ in range(rng.randrange(3))]
    return {"null": None, "boolean": rng.random() < 0.5, "int": rng.randrange(-1000, 1000),
            "long": rng.randrange(-(2**40), 2**40), "float": rng.choice([0.5, -2.25, 3.0]), "double": rng.random(),
            "string": rng.choice(["", "abc", "é"]), "bytes": rng.choice([b"", b"\x00ab"])}[t]


def _default(t):
    if isinstance(t, list):
        return _default(t[0])
    if isinstance(t, dict):
        return []
    return {"null": None, "boolean": False, "int": 0, "long": 0, "float": 0.0, "double": 0.0, "string": "",
            "bytes": ""}[t]


def _pair(rng):
    names = rng.sample(["a", "b", "c", "d", "e", "f"], rng.randint(1, 4))
    wf = [{"name": n, "type": _type(rng)} for n in names]
    rf = []
    for f in wf:
        if rng.random() < 0.12:
            continue                                                # removed
        g = {"name": f["name"], "type": f["type"] if rng.random() < 0.6 else _mutate(f["type"], rng)}
        if rng.random() < 0.15:                                     # renamed, with or without an alias
            g["name"] = f["name"].upper() + "2"
            if rng.random() < 0.6:
                g["aliases"] = [f["name"]]
        if rng.random() < 0.3:
            g["default"] = _default(g["type"])
        rf.append(g)
    for n in rng.sample(["x", "y", "z"], rng.randint(0, 2)):      # added, with or without a default
        g = {"name": n, "type": _type(rng)}
        if rng.random() < 0.5:
            g["default"] = _default(g["type"])
        rf.append(g)
    rng.shuffle(rf)
    return {"type": "record", "name": "R", "fields": wf}, {"type": "record", "name": "R", "fields": rf}


def _decodes(w, r, rng):
    ws, rs = _fastavro.parse_schema(w), _fastavro.parse_schema(r)
    for branch in range(3):                                          # every branch of every union is written
        buf = _io.BytesIO()
        _fastavro.schemaless_writer(buf, ws, {f["name"]: _value(f["type"], rng, branch) for f in w["fields"]})
        buf.seek(0)
        try:
            _fastavro.schemaless_reader(buf, ws, rs)
        except _fastavro.read.SchemaResolutionError:
            return False
    return True


_rng = _random.Random(4242)
_seen = {True: 0, False: 0}
for _ in range(500):
    _w, _r = _pair(_rng)
    _real = _decodes(_w, _r, _rng)
    _got = avro_can_read(_w, _r)
    assert type(_got) is bool, type(_got)
    assert _got == _real, f"avro_can_read said {_got}, fastavro {'decodes' if _real else 'fails'}:\n{_w}\n{_r}"
    _seen[_real] += 1
assert min(_seen.values()) > 100, _seen

_cases = [("int", "long", "backward"), ("long", "int", "forward"), ("string", "bytes", "full"), ("boolean", "int", "none"),
          (["null", "int"], "int", "forward"), ("int", ["null", "long"], "backward")]
for _a, _b, _want in _cases:
    _old = {"type": "record", "name": "R", "fields": [{"name": "v", "type": _a}]}
    _new = {"type": "record", "name": "R", "fields": [{"name": "v", "type": _b}]}
    _got = avro_compatibility(_old, _new)
    assert type(_got) is str and _got == _want, (_a, _b, _got, _want)
_old = {"type": "record", "name": "R", "fields": [{"name": "id", "type": "long"}]}
_renamed = {"type": "record", "name": "R", "fields": [{"name": "key", "type": "long", "aliases": ["id"]}]}
assert avro_compatibility(_old, _renamed) == "backward"
assert avro_compatibility({**_old, "fields": [{"name": "id", "type": "long", "default": 0}]}, _renamed) == "full"
### END HIDDEN TESTS

# %% [markdown]
# Your rules against the Avro columns of the matrix, which came from real decoding:

# %%
needs(solved(avro_can_read, AVRO_PERSON, AVRO_PERSON), "Exercise 3")
pd.DataFrame([{"change": change, "your rule": avro_compatibility(AVRO_PERSON, avro_schema_v2),
               "the matrix (new reads old / old reads new)": " / ".join(matrix[change][2:])}
              for change, (_proto, avro_schema_v2) in CHANGES.items() if avro_schema_v2]).set_index("change")

# %% [markdown]
# ## API Versioning
#
# Schema evolution keeps old and new code talking as long as every change is compatible. An HTTP API has
# the same problem with clients you do not control: a mobile app released two years ago, a partner's
# integration. For JSON APIs the compatible changes are the same as above if clients are **tolerant
# readers** (they ignore fields they do not know): adding an endpoint, adding an optional request
# parameter, adding a response field. Breaking changes are removing or renaming a field, changing its type
# or meaning (a price in euros becomes a price in cents), making a parameter required, changing a status
# code or an error format. Google's API design guide (AIP-180) lists them in detail.
#
# A breaking change needs a new **version**, served **side by side** with the old one until the old one's
# clients have moved. A client says which version it wants in one of three places:
#
# | where | example | for | against |
# |---|---|---|---|
# | URL path | `GET /v2/products/SKU-1` | visible, easy to route, cache and try in a browser | a new version is a new URL for the same resource; clients must rewrite links |
# | header | `Api-Version: 2` (GitHub: `X-GitHub-Api-Version: 2022-11-28`; Stripe: `Stripe-Version`, by date) | URLs stay stable; versions can be per client | invisible in logs and links; caches must `Vary` on it |
# | media type | `Accept: application/vnd.shop.v2+json` | HTTP's own content negotiation, per representation | the hardest for clients to get right |
#
# With none of these, the server applies a **default**, and it should be the oldest supported version (or
# the one the client's account is pinned to, as Stripe does), so that an old client that never sent a
# version keeps working. What a server must never do is guess: a version it does not know is an error,
# not "the latest", or clients break silently on a change they never asked for.
#
# **Retiring a version** is a plan, announced in the responses themselves: a `Deprecation` header (RFC 9745,
# `Deprecation: @<Unix time>`: from when the version is deprecated), a `Sunset` header (RFC 8594, an HTTP
# date: when it will stop working), and a `Link` to the successor (`rel="successor-version"`, RFC 5829). Then
# watch the traffic per version, contact the clients that still call the old one, maybe run short
# "brownouts" (the old version fails for an hour) to find the ones nobody knew about, and after the sunset
# answer `410 Gone`.
#
# ### Exercise 4: version negotiation (5 points)
#
# Write the function a gateway or framework runs before any handler: which version serves this request,
# and which headers go with the answer. `now` is the current Unix time (a parameter, so that tests can
# move the clock).

# %% nbgrader={"grade_id": "week19-api-fundamentals-ex04-version-negotiation", "solution": true}
import re
from email.utils import formatdate


def negotiate(path: str, headers: dict, versions: dict, default: str, now: float) -> tuple:
    """(status, version, resource_path, response_headers) for a request.

    versions: {"1": {"deprecated": unix time or None, "sunset": unix time or None}, "2": {...}} (keys are
    digit strings). The client may ask for a version in three ways:
      - URL: the path's first segment is "v" + digits ("/v2/products/SKU-1"): version "2", resource_path
        "/products/SKU-1" (the rest of the path, "/" if nothing is left); otherwise resource_path is the path;
      - header: "Api-Version: 2" (header names are case-insensitive; the value is stripped of spaces);
      - media type: "application/vnd.shop.v2+json" in the Accept header, which lists media types separated by
        commas, each possibly with parameters after ";" (e.g. "application/vnd.shop.v1+json; q=0.5"). If it
        names several shop versions, the one with the highest q (default 1) wins; ties: the first listed;
        q=0 means "not acceptable" and is ignored.
    Then, in this order:
      1. the ways used name different versions -> (400, None, resource_path, {});
      2. no way used -> `default`;
      3. a version not in `versions` -> nothing is served, never another version: status 404 if it came
         from the URL, else 406 if it came from Accept, else 400 -> (status, None, resource_path, {});
      4. a version whose sunset has passed (now >= sunset) -> status 410, else 200;
      5. response headers (for 200 and 410): "Api-Version": the version; if it has a deprecation time,
         "Deprecation": "@" + that time as an int; if it has a sunset, "Sunset": formatdate(sunset, usegmt=True);
         if it has either, "Link": '</v{latest}{resource_path}>; rel="successor-version"', latest being the
         highest version number in `versions`."""
    ### BEGIN SOLUTION
    lower = {k.lower(): v for k, v in headers.items()}
    asked = {}
    resource = path
    m = re.match(r"^/v(\d+)(/.*)?$", path)
    if m:
        asked["url"] = m.group(1)
        resource = m.group(2) or "/"
    if "api-version" in lower:
        asked["header"] = lower["api-version"].strip()
    best = None
    for i, item in enumerate(lower.get("accept", "").split(",")):
        media, *params = [p.strip() for p in item.split(";")]
        mt = re.fullmatch(r"application/vnd\.shop\.v(\d+)\+json", media)
        if not mt:
            continue
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip() == "q":
                q = float(value)
        if q > 0 and (best is None or q > best[0]):
            best = (q, i, mt.group(1))
    if best:
        asked["accept"] = best[2]
    if len(set(asked.values())) > 1:
        return 400, None, resource, {}
    version = next(iter(asked.values()), default)
    if version not in versions:
        status = 404 if "url" in asked else 406 if "accept" in asked else 400
        return status, None, resource, {}
    info = versions[version]
    deprecated, sunset = info.get("deprecated"), info.get("sunset")
    out = {"Api-Version": version}
    if deprecated is not None:
        out["Deprecation"] = f"@{int(deprecated)}"
    if sunset is not None:
        out["Sunset"] = formatdate(sunset, usegmt=True)
    if deprecated is not None or sunset is not None:
        latest = max(versions, key=int)
        out["Link"] = f'</v{latest}{resource}>; rel="successor-version"'
    status = 410 if sunset is not None and now >= sunset else 200
    return status, version, resource, out
    ### END SOLUTION


# %% nbgrader={"grade_id": "week19-api-fundamentals-ex04-version-negotiation-tests", "grade": true, "points": 2}
_V = {"1": {"deprecated": 1767225600, "sunset": 1782864000}, "2": {"deprecated": None, "sunset": None}}
_NOW = 1772323200                                          # 2026-03-01, between v1's deprecation and sunset
_r = negotiate("/v2/products/SKU-1", {}, _V, "1", _NOW)
assert type(_r) is tuple and len(_r) == 4 and type(_r[0]) is int, _r
assert _r == (200, "2", "/products/SKU-1", {"Api-Version": "2"}), _r
assert negotiate("/products/SKU-1", {"Api-Version": "2"}, _V, "1", _NOW)[:3] == (200, "2", "/products/SKU-1")
assert negotiate("/products/SKU-1", {"Accept": "application/vnd.shop.v2+json"}, _V, "1", _NOW)[1] == "2"
_s, _v, _p, _h = negotiate("/products/SKU-1", {}, _V, "1", _NOW)
assert (_s, _v) == (200, "1") and _h == {"Api-Version": "1", "Deprecation": "@1767225600",
                                          "Sunset": "Wed, 01 Jul 2026 00:00:00 GMT",
                                          "Link": '</v2/products/SKU-1>; rel="successor-version"'}, _h
assert negotiate("/v7/products/SKU-1", {}, _V, "1", _NOW)[:2] == (404, None)
assert negotiate("/v1/products", {"Api-Version": "2"}, _V, "1", _NOW)[:2] == (400, None)
assert negotiate("/v1/products", {}, _V, "1", 1782864000)[0] == 410
print("visible negotiation tests pass")

# %% nbgrader={"grade_id": "week19-api-fundamentals-ex04-version-negotiation-hidden", "grade": true, "points": 3}
assert type(negotiate("/", {}, {"3": {}}, "3", 0)) is tuple
### BEGIN HIDDEN TESTS
import itertools as _it
import random as _random
from email.utils import formatdate as _fmt

_VS = {"3": {"deprecated": 1600000000, "sunset": 1700000000}, "4": {"deprecated": 1750000000, "sunset": None},
       "5": {"deprecated": None, "sunset": 1900000000}, "10": {"deprecated": None, "sunset": None}}


def _expect(path, headers, versions, default, now):
    import re as _re

    low = {k.lower(): v for k, v in headers.items()}
    asked, res = {}, path
    m = _re.match(r"^/v(\d+)(/.*)?$", path)
    if m:
        asked["url"], res = m.group(1), m.group(2) or "/"
    if "api-version" in low:
        asked["header"] = low["api-version"].strip()
    best = None
    for i, item in enumerate(low.get("accept", "").split(",")):
        parts = [p.strip() for p in item.split(";")]
        mt = _re.fullmatch(r"application/vnd\.shop\.v(\d+)\+json", parts[0])
        if mt:
            q = 1.0
            for p in parts[1:]:
                if p.split("=")[0].strip() == "q":
                    q = float(p.split("=")[1])
            if q > 0 and (best is None or q > best[0]):
                best = (q, i, mt.group(1))
    if best:
        asked["accept"] = best[2]
    if len(set(asked.values())) > 1:
        return 400, None, res, {}
    v = next(iter(asked.values()), default)
    if v not in versions:
        return (404 if "url" in asked else 406 if "accept" in asked else 400), None, res, {}
    d, s = versions[v].get("deprecated"), versions[v].get("sunset")
    h = {"Api-Version": v}
    if d is not None:
        h["Deprecation"] = f"@{int(d)}"
    if s is not None:
        h["Sunset"] = _fmt(s, usegmt=True)
    if d is not None or s is not None:
        h["Link"] = f'</v{max(versions, key=int)}{res}>; rel="successor-version"'
    return (410 if s is not None and now >= s else 200), v, res, h


_paths = ["/orders/9", "/v3/orders/9", "/v4", "/v10/a/b", "/v9/orders", "/version/3", "/v4x/orders", "/"]
_hdrs = [{}, {"Api-Version": "4"}, {"api-version": " 5 "}, {"API-VERSION": "9"}, {"Api-Version": "10"},
         {"Accept": "application/vnd.shop.v4+json"}, {"accept": "text/html, application/vnd.shop.v5+json;q=0.9"},
         {"Accept": "application/vnd.shop.v3+json; q=0.2, application/vnd.shop.v10+json; q=0.8"},
         {"Accept": "application/vnd.shop.v4+json;q=0.5, application/vnd.shop.v5+json;q=0.5"},
         {"Accept": "application/vnd.shop.v9+json"}, {"Accept": "application/vnd.shop.v3+json;q=0, */*"},
         {"Accept": "application/json"}, {"Accept": "application/vnd.shop.v4+json", "Api-Version": "4"},
         {"ACCEPT": "application/vnd.shop.v10+json", "api-version": "5"}]
for _path, _h, _default, _now in _it.product(_paths, _hdrs, ["3", "4"], [1650000000, 1800000000, 2000000000]):
    _got = negotiate(_path, dict(_h), _VS, _default, _now)
    _want = _expect(_path, _h, _VS, _default, _now)
    assert type(_got) is tuple and len(_got) == 4 and type(_got[0]) is int and type(_got[3]) is dict, _got
    assert _got[1] is None or type(_got[1]) is str
    assert _got == _want, (_path, _h, _default, _now, _got, _want)
_rng = _random.Random(7)
for _ in range(200):
    _vs = {str(v): {"deprecated": _rng.choice([None, _rng.randrange(10**9)]),
                    "sunset": _rng.choice([None, _rng.randrange(10**9, 2 * 10**9)])}
           for v in _rng.sample(range(1, 30), _rng.randint(1, 4))}
    _path = _rng.choice(["/x", f"/v{_rng.randrange(1, 30)}/x/y", f"/v{_rng.randrange(1, 30)}"])
    _h = _rng.choice([{}, {"Api-Version": str(_rng.randrange(1, 30))},
                      {"Accept": f"application/vnd.shop.v{_rng.randrange(1, 30)}+json"}])
    _d, _now = _rng.choice(list(_vs)), _rng.randrange(2 * 10**9)
    assert negotiate(_path, _h, _vs, _d, _now) == _expect(_path, _h, _vs, _d, _now), (_path, _h, _vs, _d, _now)
### END HIDDEN TESTS

# %% [markdown]
# ### A versioned API, for real
#
# Version 2 of the catalogue makes a breaking change: the price becomes an object with an amount and a
# currency (v1 sent a number of cents). Both versions are served side by side by one WSGI application that
# asks *your* `negotiate` which one to use, adds its headers, and counts the calls per version, the number
# a deprecation plan watches.

# %%
needs(solved(negotiate, "/", {}, {"1": {}}, "1", 0), "Exercise 4")
API_VERSIONS = {"1": {"deprecated": 1767225600, "sunset": 1782864000},     # 2026-01-01 / 2026-07-01
                "2": {"deprecated": None, "sunset": None}}
NOW = 1772323200                                                            # 2026-03-01: v1 deprecated, not gone
REPRESENT = {
    "1": lambda p: p,
    "2": lambda p: {**{k: v for k, v in p.items() if k != "price_cents"},
                    "price": {"amount_minor": p["price_cents"], "currency": "EUR"}},
}
calls_per_version = {}


def versioned_app(environ, start_response):
    headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
    status, version, path, extra = negotiate(environ["PATH_INFO"], headers, API_VERSIONS, default="1", now=NOW)
    calls_per_version[version] = calls_per_version.get(version, 0) + 1
    sku = path.removeprefix("/products/")
    if status == 200 and sku not in CATALOG:
        status = 404
    body = json.dumps(REPRESENT[version](CATALOG[sku]) if status == 200 else {"error": status}).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 406: "Not Acceptable", 410: "Gone"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                          *extra.items()])
    return [body]


api = archlab.serve(versioned_app, "catalog-versioned")
client = api.session()
tries = [("no version (the default)", "/products/SKU-000042", {}),
         ("URL", "/v2/products/SKU-000042", {}),
         ("header", "/products/SKU-000042", {"Api-Version": "2"}),
         ("media type", "/products/SKU-000042", {"Accept": "application/vnd.shop.v2+json"}),
         ("unknown version", "/v3/products/SKU-000042", {}),
         ("URL and header disagree", "/v2/products/SKU-000042", {"Api-Version": "1"})]
seen = []
for how, path, hdrs in tries:
    r = client.get(api.url + path, headers=hdrs, timeout=5)
    seen.append({"asked by": how, "status": r.status_code, "Api-Version": r.headers.get("Api-Version"),
                 "price in the body": r.json().get("price", r.json().get("price_cents")),
                 "Sunset": r.headers.get("Sunset"), "Link": r.headers.get("Link")})
print("calls per version:", calls_per_version)
pd.DataFrame(seen).set_index("asked by")

# %% [markdown]
# The old client that sends nothing still gets v1 (with the deprecation headers its developers' tools can
# flag), every way of asking for v2 gets v2, and mistakes are errors instead of a silent switch. After
# `NOW` passes v1's sunset, the same request answers `410 Gone`.
#
# The same discipline applies to gRPC, where the version is in the package name (`shop.v1` in
# `SHOP_PROTO`): compatible changes go into `shop.v1` following the protobuf rules above, and a breaking
# change becomes a new package `shop.v2`, served by the same server next to `shop.v1` until v1's clients
# are gone.

# %% [markdown]
# ### Exercise 5 (written): REST or gRPC for a ride-hailing platform (4 points)
#
# A ride-hailing company has (1) a public API for its iOS and Android apps and for a web app: requesting
# rides, seeing prices, paying; (2) about 40 internal services (pricing, dispatch, payments, maps) that call
# each other up to 50,000 times per second at peak, written in Go, Java and Python; (3) driver apps that
# send their GPS position every 2 seconds and must receive ride offers within a second; (4) a partner API
# for hotels and airlines that integrate once and rarely update their code. In 6-10 sentences: which
# protocol (REST/JSON, gRPC, or something else) for each of the four, how you version each one and what
# your deprecation policy for the partner API is, and which deadline or timeout policy the internal calls
# need. Use at least two numbers measured in this notebook.

# %% [markdown] nbgrader={"grade_id": "week19-api-fundamentals-ex05-rest-or-grpc", "solution": true, "grade": true, "points": 4}
# **Model answer.** (1) The public app API is REST/JSON over HTTPS (HTTP/2 where the client supports it):
# browsers speak it natively (gRPC would need gRPC-Web and a proxy), every tool and CDN understands it, and
# GETs such as price estimates can be cached; JSON's size overhead (the body and per-call ratios measured
# here, about 2-3x) is acceptable at human request rates and shrinks with gzip. (2) Internal calls use gRPC:
# a shared `.proto` contract generates clients for Go, Java and Python, protobuf bodies and HPACK headers
# cut the bytes per call (the tap measured less than half the bytes of REST/JSON per look-up), and one
# multiplexed HTTP/2 connection avoids the per-call connection cost seen in the REST column. Every
# internal call carries a deadline, set once at the edge from the user-facing budget and passed on as the
# remaining time (never a fresh timeout), so that abandoned work stops, as the propagation table showed
# (hundreds of ms of wasted work without it); retries only within the remaining budget. (3) Driver
# location and offers need a long-lived bidirectional channel: gRPC bidirectional streaming from the
# native driver apps (or WebSockets if a browser client must be supported), because a 2-second poll per
# driver is one request per position and offers must be pushed, not polled. (4) The partner API is
# REST/JSON with an OpenAPI document, versioned in the URL (`/v1/`) because partners integrate once and
# copy URLs; only additive changes within a version, a new version for breaking ones, and a long
# deprecation policy (e.g. 12 months) announced with `Deprecation`/`Sunset`/`Link` headers, usage
# monitored per partner and version, direct contact, and `410` only after the sunset. Internal gRPC
# versions live in the package name (`pricing.v1`), with `buf breaking`-style checks in CI so that field
# numbers are never reused.
#
# **Rubric (4 points).** 1 point: a defensible protocol for each of the four parts with a reason tied to
# its clients (browsers/tooling/caching for public, contract/polyglot/performance for internal, push or
# streaming for the driver channel, stability and ease for partners). 1 point: versioning for each API
# (URL or header for REST, package versions for protobuf) and a concrete deprecation plan for partners
# (notice period, Deprecation/Sunset headers, monitoring usage, 410 after sunset). 1 point: a deadline
# policy for internal calls that propagates the remaining budget instead of fresh timeouts, and says why
# (wasted work, overload). 1 point: at least two numbers from this notebook used correctly (byte ratio,
# latency ratio, streaming vs pagination speed-up, work after the client gave up, the 81/33-byte
# comparison). Other well-argued choices (e.g. GraphQL or a BFF for the apps, REST everywhere for a small
# team) earn the points when the trade-off is stated.

# %% [markdown]
# ## Wrap-up
#
# ### You can now
#
# - [ ] write a `.proto` contract, generate a gRPC client and server from it, and serve the same data over
#       REST/JSON with an OpenAPI document
# - [ ] measure the bytes on the wire and the latency of both, and explain where the difference comes from
#       (bodies, headers and HPACK, connections, library overhead)
# - [ ] choose between server streaming and pagination, set deadlines and propagate the remaining budget
# - [ ] encode varints, zigzag and protobuf fields by hand, byte for byte the library's output
# - [ ] reproduce DDIA's 81 / 66 / 33 / 32 bytes and explain each format's overhead
# - [ ] say which schema changes are safe in Protocol Buffers and in Avro, in which direction, and check it
#       by decoding
# - [ ] version an HTTP API by URL, header or media type, and retire a version with Deprecation, Sunset,
#       Link and 410
#
# ### Self-assessment
#
# From the guide's monthly questions, this week answers part of:
#
# 1. *How do I ensure data consistency across distributed services?* Agree on contracts (a `.proto` or an
#    OpenAPI document), evolve them only compatibly, and version what cannot be.
# 2. *How would I design a system to handle 1M requests per second?* Per-call costs multiply: the bytes per
#    call, a connection per call, and work done after a deadline passed all scale with the request rate.
#
# Check yourself: why can old protobuf code skip a field it has never seen, while old Avro code needs the
# writer's schema? Why is changing `int64` to `sint64` worse than changing it to `string`? Why should an
# unknown API version be an error rather than the latest version? What goes wrong if every service in a
# call chain sets its own 2-second timeout?
