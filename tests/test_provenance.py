"""Provenance records: fingerprints, freshness, reasons."""

from __future__ import annotations

import os

from mouse_facial_expressions import provenance


def test_quick_hash_sees_content_not_the_name_or_time(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 3_000_000)
    b.write_bytes(b"x" * 3_000_000)
    assert provenance.quick_hash(a) == provenance.quick_hash(b)
    b.write_bytes(b"x" * 2_999_999 + b"y")  # the last MiB differs
    assert provenance.quick_hash(a) != provenance.quick_hash(b)


def test_changes_name_what_differs(tmp_path):
    src = tmp_path / "pose.h5"
    src.write_bytes(b"one")
    rec = provenance.record({"pose file": src}, {"crop_size": 128, "policy": "temporal"})
    assert provenance.changes(rec, {"pose file": src}, {"crop_size": 128, "policy": "temporal"}) == []
    os.utime(src, ns=(0, src.stat().st_mtime_ns + 10**9))  # touched: same content, still fresh
    assert provenance.changes(rec, {"pose file": src}, {"crop_size": 128, "policy": "temporal"}) == []
    src.write_bytes(b"two")
    assert provenance.changes(rec, {"pose file": src}, {"crop_size": 150, "policy": "temporal"}) == [
        "pose file changed", "settings changed: crop_size 128 -> 150"]
    src.unlink()
    assert provenance.changes(rec, {"pose file": src}, {"crop_size": 128, "policy": "temporal"}) == ["pose file missing"]
    assert provenance.changes(None, {"pose file": src}) == ["no provenance record"]


def test_summary_counts_reasons():
    text = provenance.summarise({"a": ["keypoints changed"], "b": ["keypoints changed", "video changed"],
                                 "c": ["settings changed: crop_size 128 -> 150"]})
    assert text == "3 redone: keypoints changed (2), video changed (1), settings changed (1)"
    assert provenance.summarise({"a": ["keypoints changed"]}) == "1 redone: keypoints changed"
