"""Payload sizes of one record type in JSON, MessagePack, Protocol Buffers and Avro, and the
figure of the week 19 payload widget.

The record is the one of Kleppmann's *Designing Data-Intensive Applications*, ch. 4
(userName, favoriteNumber, interests); the notebook compiles its Protocol Buffers schema and
parses its Avro schema and passes them in, so everything here works on any schema with those
three fields.

    recs = serialization.people(100, name_len=6, digits=4, interests=2)
    serialization.payload_sizes(recs, Person, avro_schema)          # {format: (raw bytes, gzip bytes)}
    serialization.payload_figure(100, 6, 4, 2, person_cls=Person, avro_schema=avro_schema)

How n records travel in each format (a batch, as an API response or a file would carry them):
- JSON: one array of objects, compact separators (`json.dumps(recs, separators=(",", ":"))`);
- MessagePack: one array of maps (`msgpack.packb(recs)`);
- Protocol Buffers: each message preceded by its length as a varint (a delimited stream, what
  `writeDelimitedTo` writes and what a `repeated Person` field costs minus one tag byte each);
- Avro, schemaless: the records back to back, the reader already has the writer's schema
  (a schema registry, or an RPC handshake);
- Avro object container file: a header carrying the schema as JSON once, then the records in
  blocks with a 16-byte sync marker (`fastavro.writer`, no codec).
"gzip" is each whole payload compressed with gzip at level 6, the default of most HTTP servers.

Pure functions of their arguments (the same seed gives the same records): tests call them.
"""

from __future__ import annotations

import gzip
import io
import json
import random

FORMATS = ("JSON", "MessagePack", "Protocol Buffers", "Avro (schemaless)", "Avro (container file)")
HOBBIES = ("daydreaming", "hacking", "chess", "climbing", "cooking", "cycling", "gardening", "jazz",
           "knitting", "origami", "painting", "photography", "poetry", "running", "sailing", "skiing")


def people(n: int, name_len: int = 6, digits: int = 4, interests: int = 2, seed: int = 19) -> list[dict]:
    """n records {"userName", "favoriteNumber", "interests"} drawn with `seed`: names of `name_len`
    random letters, favourite numbers of exactly `digits` decimal digits (0 when digits is 0),
    `interests` hobbies each from a list of 16."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(n):
        name = "".join(rng.choices(letters, k=name_len)).capitalize()
        number = rng.randrange(10 ** (digits - 1), 10 ** digits) if digits > 0 else 0
        out.append({"userName": name, "favoriteNumber": number,
                    "interests": rng.choices(HOBBIES, k=interests)})
    return out


def encode_all(records: list[dict], person_cls, avro_schema) -> dict[str, bytes]:
    """{format: the bytes of the whole batch} for every format in FORMATS (see the module docstring)."""
    import fastavro
    import msgpack
    from google.protobuf.internal.encoder import _VarintBytes  # the library's own length prefix

    parsed = fastavro.parse_schema(avro_schema)
    out = {"JSON": json.dumps(records, separators=(",", ":")).encode(), "MessagePack": msgpack.packb(records)}
    stream = bytearray()
    for r in records:
        body = person_cls(user_name=r["userName"], favorite_number=r["favoriteNumber"],
                          interests=r["interests"]).SerializeToString()
        stream += _VarintBytes(len(body)) + body
    out["Protocol Buffers"] = bytes(stream)
    buf = io.BytesIO()
    for r in records:
        fastavro.schemaless_writer(buf, parsed, r)
    out["Avro (schemaless)"] = buf.getvalue()
    buf = io.BytesIO()
    fastavro.writer(buf, parsed, records, codec="null", sync_marker=b"archlab-week19!!")
    out["Avro (container file)"] = buf.getvalue()
    return out


def payload_sizes(records: list[dict], person_cls, avro_schema) -> dict[str, tuple[int, int]]:
    """{format: (bytes as encoded, bytes after gzip -6)} for the batch `records`."""
    return {fmt: (len(data), len(gzip.compress(data, compresslevel=6, mtime=0)))
            for fmt, data in encode_all(records, person_cls, avro_schema).items()}


def payload_figure(records: int = 100, name_len: int = 6, digits: int = 4, interests: int = 2, *,
                   person_cls, avro_schema, seed: int = 19):
    """Bytes per record in each format, as encoded and gzipped, for `records` generated records."""
    import plotly.graph_objects as go

    recs = people(records, name_len, digits, interests, seed)
    sizes = payload_sizes(recs, person_cls, avro_schema)
    json_raw = sizes["JSON"][0]
    fig = go.Figure()
    for i, label in enumerate(("as encoded", "gzip -6")):
        per = [sizes[f][i] / records for f in FORMATS]
        fig.add_bar(x=list(FORMATS), y=per, name=label,
                    text=[f"{p:,.1f} B<br>{sizes[f][i] / json_raw:.0%} of JSON" for f, p in zip(FORMATS, per,
                                                                                                strict=True)],
                    textposition="outside", marker_color=("#1f77b4", "#ff7f0e")[i])
    top = max(max(v) for v in sizes.values()) / records
    fig.update_layout(barmode="group", height=430, margin={"t": 60, "b": 40},
                      title=f"{records:,} record(s): name {name_len} letters, a {digits}-digit number, "
                            f"{interests} interest(s) each",
                      xaxis_title="format", yaxis_title="bytes per record (B)",
                      yaxis_range=[0, top * 1.3], legend={"orientation": "h", "y": 1.08, "x": 0})
    return fig
