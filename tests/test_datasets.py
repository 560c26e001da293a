"""The shipped data matches its manifest and regenerates byte for byte."""

from __future__ import annotations

import json
import sqlite3

import duckdb

from archlab import datasets

from .conftest import REPO


def test_shipped_files_match_the_manifest():
    assert datasets.verify(REPO / "datasets") == []


def test_regeneration_is_byte_identical(tmp_path):
    manifest = datasets.write(tmp_path, "small")
    shipped = json.loads((REPO / "datasets" / "manifest.json").read_text())
    assert manifest == shipped
    for rel in shipped["files"]:
        assert (tmp_path / rel).read_bytes() == (REPO / "datasets" / rel).read_bytes()


def test_shipped_data_is_small():
    total = sum(p.stat().st_size for p in (REPO / "datasets").rglob("*") if p.is_file())
    assert total < 20 * 1024 * 1024


def test_loaders_agree_across_engines():
    manifest = json.loads((REPO / "datasets" / "manifest.json").read_text())
    rows = {rel.split("/")[1].removesuffix(".csv"): m["rows"] for rel, m in manifest["files"].items()}
    assert datasets.load_into(duckdb.connect()) == rows
    assert datasets.load_into(sqlite3.connect(":memory:")) == rows
    orders = datasets.load("orders")
    assert len(orders) == rows["orders"] and str(orders["created_at"].dtype).startswith("datetime64")


def test_foreign_keys_hold_in_postgres():
    import archlab

    pg = archlab.postgres()
    with pg.connect(pg.create_database("test_datasets")) as conn:
        counts = datasets.load_into(conn)      # FKs and CHECKs are enforced while loading
        assert counts["order_items"] > counts["orders"]


def test_larger_sizes_are_generated_on_demand(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    gen = datasets.generate("medium")
    assert len(gen["orders"]) == 10 * len(datasets.generate("small")["orders"])
    assert datasets.generate("medium") == gen


def test_unknown_names_are_refused_in_one_sentence():
    import pytest

    with pytest.raises(ValueError, match="Unknown table 'order'"):
        datasets.load("order")
    with pytest.raises(ValueError, match="Unknown dataset size"):
        datasets.path("huge")
