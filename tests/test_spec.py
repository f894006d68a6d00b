"""The spec, its schema, its worked example and the code agree."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import jsonschema
import numpy as np

import nemap
from nemap.format.codes import CODES
from nemap.format.hdf5 import digest
from nemap.format.header_json import load_schema
from nemap.format.reference import evaluate_map
from nemap.format.validate import validate

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "spec" / "0.1"
EXAMPLES = SPEC / "examples"


def spec_text() -> str:
    return (SPEC / "nemap.md").read_text("utf-8")


def test_every_code_is_in_the_requirement_table_and_back() -> None:
    table = spec_text().split("## 14.", 1)[1].split("## 15.", 1)[0]
    for version in ("0.2", "0.3"):
        table += (SPEC.parent / version / "nemap.md").read_text("utf-8").split("## 14.", 1)[1].split("## 16.", 1)[0]
    in_spec = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", table)) - {"DATASET_DTYPE_MISMATCH"}  # 0.3 corrects
    assert set(CODES) == in_spec


def test_every_requirement_of_0_3_and_its_extension_is_in_the_0_3_table() -> None:
    doc = (SPEC.parent / "0.3" / "nemap.md").read_text("utf-8")
    extension = (SPEC.parent / "extensions" / "NEMAP_quantized" / "README.md").read_text("utf-8")
    body, table = doc.split("## 14.", 1)
    ids = set(re.findall(r"\[(R-[A-Z]+-\d\d)\]", body + table + extension))
    assert ids == set(re.findall(r"^\| (R-[A-Z]+-\d\d)", table, re.M)) and len(ids) >= 9


def test_the_0_3_header_schema_is_the_composition_of_its_parts_and_reads_the_suite() -> None:
    """spec/0.3/schema/header.schema.json = 0.1's schema with the extensions' and evidence's members inlined
    (compose.py), so it cannot drift from them; every valid case's header is valid against it."""
    composer = runpy.run_path(str(SPEC.parent / "0.3" / "schema" / "compose.py"))
    combined = json.loads((SPEC.parent / "0.3" / "schema" / "header.schema.json").read_text("utf-8"))
    assert combined == composer["compose"]()
    validator = jsonschema.Draft202012Validator(combined)
    suite = REPO / "src" / "nemap" / "conformance" / "suite" / "0.3"
    import h5py

    for case in sorted((suite / "valid").iterdir()):
        if case.name == "newer_minor_version":  # a newer minor may add what 0.3 does not know
            continue
        with h5py.File(case / "map.nemap", "r") as f:
            header = json.loads(f["header"][()])
        assert not list(validator.iter_errors(header)), case.name
    bad = {"order": 5, "tile_shape": [0, 8, 8], "step": 1.0, "error_bound": 1.0}
    header["extensions"] = {"NEMAP_quantized": bad}
    assert list(validator.iter_errors(header))


def test_bundled_quantized_schema_is_the_spec_schema() -> None:
    on_disk = json.loads((SPEC.parent / "extensions" / "NEMAP_quantized" / "header.schema.json").read_text())
    assert load_schema("NEMAP_quantized") == on_disk
    jsonschema.Draft202012Validator.check_schema(on_disk)


def test_every_requirement_id_is_in_the_table() -> None:
    body, table = spec_text().split("## 14.", 1)
    ids = set(re.findall(r"\[(R-[A-Z]+-\d\d)\]", body))
    assert len(ids) > 30
    assert ids == set(re.findall(r"R-[A-Z]+-\d\d", table.split("Order of checks", 1)[0]))


def test_every_requirement_of_0_2_and_its_extension_is_in_the_0_2_table() -> None:
    doc = (SPEC.parent / "0.2" / "nemap.md").read_text("utf-8")
    extension = (SPEC.parent / "extensions" / "NEMAP_feature_grid" / "README.md").read_text("utf-8")
    body, table = doc.split("## 14.", 1)
    ids = set(re.findall(r"\[(R-[A-Z]+-\d\d)\]", body + extension)) - {"R-NET-01"}  # R-NET-01 amended: 0.1's row
    assert ids == set(re.findall(r"^\| (R-[A-Z]+-\d\d)", table, re.M))


def test_bundled_extension_schema_is_the_spec_schema() -> None:
    on_disk = json.loads((SPEC.parent / "extensions" / "NEMAP_feature_grid" / "header.schema.json").read_text())
    assert load_schema("NEMAP_feature_grid") == on_disk
    jsonschema.Draft202012Validator.check_schema(on_disk)


def test_bundled_evidence_schema_is_the_spec_schema() -> None:
    on_disk = json.loads((SPEC.parent / "0.2" / "schema" / "evidence.schema.json").read_text())
    assert load_schema("evidence") == on_disk
    jsonschema.Draft202012Validator.check_schema(on_disk)
    assert not {"dependentRequired", "dependentSchemas", "unevaluatedProperties"} & set(json.dumps(on_disk).split('"'))


def test_bundled_schema_is_the_spec_schema_and_draft07_safe() -> None:
    on_disk = json.loads((SPEC / "schema" / "header.schema.json").read_text("utf-8"))
    assert load_schema() == on_disk
    jsonschema.Draft202012Validator.check_schema(on_disk)
    text = json.dumps(on_disk)
    for keyword in ("prefixItems", "unevaluatedProperties", "$dynamicRef", "dependentSchemas"):
        assert keyword not in text


def test_worked_example_file_is_reproducible_and_valid(tmp_path: Path) -> None:
    module = runpy.run_path(str(EXAMPLES / "make_tiny.py"))
    fresh = tmp_path / "tiny.nemap"
    nemap.write(fresh, module["tiny"]())
    with nemap.open(EXAMPLES / "tiny.nemap", verify=True) as committed, nemap.open(fresh) as made:
        assert committed.header["integrity"] == made.header["integrity"]
        assert committed.header["geometry"] == made.header["geometry"]
    header = json.loads((EXAMPLES / "tiny.header.json").read_text())
    with nemap.open(EXAMPLES / "tiny.nemap") as m:
        assert m.header == header
    assert validate(EXAMPLES / "tiny.nemap").valid


def test_worked_example_numbers_in_the_spec() -> None:
    """The figures printed in §12 are what the spec's formulas give for the committed file."""
    points = np.array([[15.5, 1.5, 0.5], [12.0, 2.0, 0.5], [20.0, 3.0, 1.0], [9.0, 0.0, 0.0]])
    with nemap.open(EXAMPLES / "tiny.nemap") as m:
        d, g = evaluate_map(m, points)
    text = spec_text().split("## 12.", 1)[1].split("## 13.", 1)[0]
    assert "`D = 0 + (Y + 1)/2 · 4 = 1.3276465471`" in text and f"{d[0]:.10f}" == "1.3276465471"
    assert "(−1.1672756126, 0.078125, 0.0183779354)" in text
    np.testing.assert_allclose(g[0], [-1.1672756126, 0.078125, 0.0183779354], atol=1e-10)
    assert f"{d[1]:.10f}" == "2.5306089020" and "D = 2.5306089020" in text
    np.testing.assert_allclose(g[1], [0.3287144105, 0.4387912809, 0.4930716158], atol=1e-10)
    assert d[2] == 1.0 and np.all(g[2] == 0)
    assert np.isnan(d[3]) and np.all(np.isnan(g[3]))
    # the digests quoted in §12 are the file's
    with nemap.open(EXAMPLES / "tiny.nemap") as m:
        assert digest(m.biases[0]).startswith("sha256:856ed651")


def test_packaged_schemas_are_the_spec_schemas() -> None:
    """src/nemap/format/schema/0.1 (package data the reader loads) is a byte copy of spec/0.1/schema."""
    packaged = REPO / "src" / "nemap" / "format" / "schema" / "0.1"
    names = sorted(p.name for p in (SPEC / "schema").glob("*.json"))
    assert names == sorted(p.name for p in packaged.glob("*.json")) and names
    for name in names:
        assert (packaged / name).read_bytes() == (SPEC / "schema" / name).read_bytes(), name
