"""archlab.serialization: the batch encodings match the libraries and Kleppmann's byte counts,
records are seeded, and the payload figure is pure, labelled and fast for every control value."""

from __future__ import annotations

import itertools
import json

import fastavro
import msgpack
import pytest

from archlab import rpc, serialization
from archlab.widgets.serialization import RECORDS, payload_widget

DDIA_PROTO = """
syntax = "proto2";
message Person {
  required string user_name = 1;
  optional int64 favorite_number = 2;
  repeated string interests = 3;
}
"""
AVRO = {"type": "record", "name": "Person", "fields": [
    {"name": "userName", "type": "string"},
    {"name": "favoriteNumber", "type": ["null", "long"], "default": None},
    {"name": "interests", "type": {"type": "array", "items": "string"}}]}
MARTIN = {"userName": "Martin", "favoriteNumber": 1337, "interests": ["daydreaming", "hacking"]}


@pytest.fixture(scope="module")
def person():
    return rpc.compile_proto(DDIA_PROTO, "ddia")[0].Person


def test_one_record_has_kleppmanns_sizes_plus_the_batch_framing(person):
    enc = serialization.encode_all([MARTIN], person, AVRO)
    assert len(enc["JSON"]) == 81 + 2                 # inside [ ]
    assert len(enc["MessagePack"]) == 66 + 1          # inside a one-element array (0x91)
    assert len(enc["Protocol Buffers"]) == 33 + 1     # one length byte
    assert len(enc["Avro (schemaless)"]) == 32
    assert enc["Avro (container file)"].startswith(b"Obj\x01")
    assert list(fastavro.reader(__import__("io").BytesIO(enc["Avro (container file)"]))) == [MARTIN]


def test_batches_decode_back_to_the_records(person):
    recs = serialization.people(50, name_len=9, digits=12, interests=3, seed=4)
    enc = serialization.encode_all(recs, person, AVRO)
    assert json.loads(enc["JSON"]) == recs and msgpack.unpackb(enc["MessagePack"]) == recs
    data, pos, back = enc["Protocol Buffers"], 0, []
    from google.protobuf.internal.decoder import _DecodeVarint
    while pos < len(data):
        n, pos = _DecodeVarint(data, pos)
        p = person.FromString(data[pos:pos + n])
        back.append({"userName": p.user_name, "favoriteNumber": p.favorite_number, "interests": list(p.interests)})
        pos += n
    assert back == recs


def test_people_are_seeded_and_shaped_as_asked():
    a = serialization.people(20, name_len=7, digits=5, interests=4, seed=1)
    assert a == serialization.people(20, name_len=7, digits=5, interests=4, seed=1)
    assert a != serialization.people(20, name_len=7, digits=5, interests=4, seed=2)
    assert all(len(r["userName"]) == 7 and 10_000 <= r["favoriteNumber"] < 100_000 and len(r["interests"]) == 4
               for r in a)
    assert serialization.people(3, name_len=0, digits=0, interests=0)[0] == {"userName": "", "favoriteNumber": 0,
                                                                            "interests": []}


def test_sizes_behave_as_the_formats_predict(person):
    many = serialization.payload_sizes(serialization.people(1000), person, AVRO)
    one = serialization.payload_sizes(serialization.people(1), person, AVRO)
    assert many["Avro (schemaless)"][0] < many["Protocol Buffers"][0] < many["MessagePack"][0] < many["JSON"][0]
    assert one["Avro (container file)"][0] > one["JSON"][0], "one record: the schema in the header dominates"
    assert many["JSON"][1] < many["JSON"][0] / 2, "gzip removes the repeated field names"
    assert one["JSON"][1] > one["JSON"][0], "gzip's own header costs more than it saves on one record"


def test_figure_is_labelled_for_every_corner(person):
    serialization.payload_figure(1, 6, 4, 2, person_cls=person, avro_schema=AVRO)      # imports, first figure
    for n, name, digits, interests in itertools.product((1, 1000), (0, 64), (0, 18), (0, 10)):
        fig = serialization.payload_figure(n, name, digits, interests, person_cls=person, avro_schema=AVRO)
        assert len(fig.data) == 2 and len(fig.data[0].x) == len(serialization.FORMATS)
        assert fig.layout.xaxis.title.text and "(B)" in fig.layout.yaxis.title.text


def test_widget_redraws_for_every_records_value(person):
    box = payload_widget(person, AVRO)
    sliders = box.children[0].children
    for n in RECORDS:
        sliders[0].value = n
        assert box.message.value == "" and len(box.figure.data) == 2
    sliders[1].value, sliders[2].value, sliders[3].value = 0, 18, 10
    assert box.message.value == ""
