from __future__ import annotations

from pathlib import Path

from sweeps.results import CURVE_SCHEMA, SCHEMA_VERSION, TRIAL_SCHEMA


def test_schema_doc_lists_every_column():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "SCHEMA.md").read_text()
    assert f"Schema version {SCHEMA_VERSION}." in doc
    for field in list(TRIAL_SCHEMA) + list(CURVE_SCHEMA):
        assert f"| `{field.name}` | {field.type} |" in doc, field.name
