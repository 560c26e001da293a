"""archlab.rpc: a .proto written as text compiles into working message classes and gRPC stubs,
a servicer answers unary and streaming calls on 127.0.0.1, deadlines expire, a bad .proto gives
one sentence with protoc's message, a stopped server is gone, and the byte tap counts the wire."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time

import grpc
import pytest

from archlab import rpc
from archlab.engines import EngineError

CATALOG = """
syntax = "proto3";
package testcatalog;

enum Kind { PLAIN = 0; FRAGILE = 1; }

message ProductRequest { string sku = 1; int32 delay_ms = 2; }
message Product {
  message Dimensions { int32 width_mm = 1; int32 height_mm = 2; }
  string sku = 1;
  int64 price_cents = 2;
  Kind kind = 3;
  Dimensions size = 4;
}

service Catalog {
  rpc GetProduct(ProductRequest) returns (Product);
  rpc ListProducts(ProductRequest) returns (stream Product);
}
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def catalog():
    pb2, pb2_grpc = rpc.compile_proto(CATALOG, "catalog")
    seen = {"cancelled": threading.Event()}

    class Catalog(pb2_grpc.CatalogServicer):
        def GetProduct(self, request, context):
            deadline = time.monotonic() + request.delay_ms / 1000
            while time.monotonic() < deadline:
                if not context.is_active():           # the client gave up: stop working
                    seen["cancelled"].set()
                    return pb2.Product()
                time.sleep(0.005)
            return pb2.Product(sku=request.sku, price_cents=1999, kind=pb2.FRAGILE,
                               size=pb2.Product.Dimensions(width_mm=30, height_mm=40))

        def ListProducts(self, request, context):
            for i in range(5):
                yield pb2.Product(sku=f"{request.sku}-{i}", price_cents=100 * i)

    svc = rpc.serve(pb2_grpc.add_CatalogServicer_to_server, Catalog(), "test-catalog")
    yield pb2, pb2_grpc, svc, seen
    svc.stop()


def test_compile_gives_messages_enums_and_nested_types():
    pb2, pb2_grpc = rpc.compile_proto(CATALOG, "catalog")
    p = pb2.Product(sku="A-1", price_cents=150, kind=pb2.FRAGILE, size=pb2.Product.Dimensions(width_mm=3))
    assert pb2.Product.FromString(p.SerializeToString()) == p
    assert pb2.Kind.Name(1) == "FRAGILE" and pb2.PLAIN == 0
    assert pb2.PROTO == CATALOG and pb2.DESCRIPTOR.package == "testcatalog"
    assert hasattr(pb2_grpc, "CatalogStub") and hasattr(pb2_grpc, "add_CatalogServicer_to_server")
    assert rpc.compile_proto(CATALOG, "catalog")[0] is pb2, "the same text compiles once"


def test_two_versions_of_one_message_live_side_by_side():
    v1 = 'syntax = "proto3"; package people; message Person { string name = 1; int64 number = 2; }'
    v2 = 'syntax = "proto3"; package people; message Person { string name = 1; sint64 number = 2; string email = 3; }'
    Old, New = rpc.compile_proto(v1)[0].Person, rpc.compile_proto(v2)[0].Person
    assert Old is not New and Old.DESCRIPTOR.full_name == New.DESCRIPTOR.full_name == "people.Person"
    got = New.FromString(Old(name="Martin", number=1337).SerializeToString())
    assert got.name == "Martin" and got.email == "" and got.number == -669     # zigzag reads 2674 as -669
    # messages-only .proto: pb2_grpc exists and is empty of services
    assert not [n for n in vars(rpc.compile_proto(v1)[1]) if n.endswith("Stub")]


def test_bad_proto_is_one_sentence_with_protocs_message():
    with pytest.raises(EngineError) as e:
        rpc.compile_proto('syntax = "proto3";\nmessage X { int32 a = 1 }\n')
    msg = str(e.value)
    assert msg.startswith("The .proto did not compile: line 2, column") and 'Expected ";"' in msg, msg
    assert "/" not in msg.split(":", 1)[1], f"no temporary paths in the message: {msg}"
    with pytest.raises(EngineError, match="Person"):
        rpc.compile_proto('syntax = "proto3";\nmessage Order { Person buyer = 1; }\n')
    with pytest.raises(EngineError, match="text of a .proto"):
        rpc.compile_proto("")


def test_unary_and_server_streaming_calls(catalog):
    pb2, pb2_grpc, svc, _ = catalog
    assert svc.target == f"127.0.0.1:{svc.port}" and svc.running
    stub = svc.stub(pb2_grpc.CatalogStub)
    assert svc.stub(pb2_grpc.CatalogStub) is stub
    got = stub.GetProduct(pb2.ProductRequest(sku="SKU-1"), timeout=5)
    assert (got.sku, got.price_cents, got.kind, got.size.height_mm) == ("SKU-1", 1999, pb2.FRAGILE, 40)
    items = list(stub.ListProducts(pb2.ProductRequest(sku="S"), timeout=5))
    assert [p.sku for p in items] == [f"S-{i}" for i in range(5)] and items[4].price_cents == 400


def test_deadline_exceeded_and_the_server_sees_the_cancellation(catalog):
    pb2, pb2_grpc, svc, seen = catalog
    stub = pb2_grpc.CatalogStub(svc.channel())
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        stub.GetProduct(pb2.ProductRequest(sku="slow", delay_ms=2000), timeout=0.1)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 1.0, "the client gives up at its deadline, not when the server finishes"
    assert seen["cancelled"].wait(2), "the handler saw context.is_active() turn False"


def test_tap_counts_bytes_each_way(catalog):
    pb2, pb2_grpc, svc, _ = catalog
    with rpc.tap(svc.port, "count") as t:
        stub = pb2_grpc.CatalogStub(rpc.channel(f"127.0.0.1:{t.port}"))
        stub.GetProduct(pb2.ProductRequest(sku="warm"), timeout=5)
        assert t.connections == 1 and t.to_server > 0 and t.to_client > 0
        t.reset()
        assert (t.to_server, t.to_client) == (0, 0)
        for _ in range(10):
            stub.GetProduct(pb2.ProductRequest(sku="SKU-000001"), timeout=5)
        # a unary call carries at least its message in each direction, plus HTTP/2 framing
        assert t.to_server >= 10 * len(pb2.ProductRequest(sku="SKU-000001").SerializeToString())
        assert t.to_client >= 10 * 10 and t.to_client < 10 * 400, t
    assert not _listening(t.port)


def test_tap_with_a_delay_adds_a_round_trip_per_call(catalog):
    pb2, pb2_grpc, svc, _ = catalog
    with rpc.tap(svc.port, "far", delay_ms=20) as t:
        stub = pb2_grpc.CatalogStub(rpc.channel(f"127.0.0.1:{t.port}"))
        t0 = time.perf_counter()
        stub.GetProduct(pb2.ProductRequest(sku="warm"), timeout=5)
        first = time.perf_counter() - t0
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            stub.GetProduct(pb2.ProductRequest(sku="x"), timeout=5)
            times.append(time.perf_counter() - t0)
        assert first >= 0.060, f"a new connection costs the handshake and the call: {first * 1000:.0f} ms"
        assert all(0.040 <= x < 0.040 + 0.3 for x in times), [round(x * 1000) for x in times]
        items = list(stub.ListProducts(pb2.ProductRequest(sku="S"), timeout=5))    # order kept under delay
        assert [p.sku for p in items] == [f"S-{i}" for i in range(5)]
    with pytest.raises(EngineError, match="delay"):
        rpc.tap(svc.port, delay_ms=-1)


def test_server_is_gone_after_stop():
    pb2, pb2_grpc = rpc.compile_proto(CATALOG, "catalog")

    class Echo(pb2_grpc.CatalogServicer):
        def GetProduct(self, request, context):
            return pb2.Product(sku=request.sku)

    svc = rpc.serve(pb2_grpc.add_CatalogServicer_to_server, Echo(), "doomed")
    stub = svc.stub(pb2_grpc.CatalogStub)
    assert stub.GetProduct(pb2.ProductRequest(sku="x"), timeout=5).sku == "x"
    assert svc in rpc.running()
    svc.stop()
    assert not svc.running and svc not in rpc.running() and not _listening(svc.port)
    with pytest.raises(grpc.RpcError) as e:
        stub.GetProduct(pb2.ProductRequest(sku="x"), timeout=2)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    svc.stop()   # twice is harmless


def test_serve_refuses_what_is_not_a_registration_function():
    with pytest.raises(EngineError, match="add_<Service>Servicer_to_server"):
        rpc.serve("catalog.proto", object())


def test_servers_are_gone_when_the_kernel_exits():
    script = textwrap.dedent(f"""
        from archlab import rpc
        pb2, pb2_grpc = rpc.compile_proto({CATALOG!r}, "catalog")
        svc = rpc.serve(pb2_grpc.add_CatalogServicer_to_server, pb2_grpc.CatalogServicer())
        t = rpc.tap(svc.port)
        print(svc.port, t.port, flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ports = [int(p) for p in out.stdout.split()]
    assert len(ports) == 2 and not any(_listening(p) for p in ports)
