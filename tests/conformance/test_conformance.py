"""The conformance suite (spec/0.1/conformance.md): reproducible fixtures, exact validator codes, both
readers passing with the stated margin, the protocol over a real pipe, and readers with known bugs failing."""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import nemap
from fixtures.conformance import generate
from fixtures.conformance.generate import SUITE
from nemap.cli import main
from nemap.conformance import numpy_reader
from nemap.conformance.harness import load_suite, run_suite
from nemap.conformance.readers import builtin_reader
from nemap.format.codes import CODES
from nemap.format.validate import validate
from nemap.io.mrc import read_mrc

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "spec" / "0.1"
CASES = load_suite(SUITE)


def test_regenerating_the_suite_reproduces_the_committed_files() -> None:
    assert generate.main(["--check"]) == 0


def test_every_case_file_matches_the_case_schema() -> None:
    schema = json.loads((SPEC / "schema" / "conformance-case.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for case in CASES:
        jsonschema.validate(case.meta, schema)
        assert case.meta["spec_version"] == "0.3" and case.file.is_file()
        assert case.meta["since"] in ("0.1", "0.2", "0.3")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validator_reports_exactly_the_fixture_codes(case) -> None:
    report = validate(case.file)
    assert sorted({i.code for i in report.issues}) == case.meta["validator_codes"], report.to_text()
    assert report.valid == (case.meta["kind"] == "valid")
    jsonschema.validate(report.to_json(), json.loads((SPEC / "schema" / "validation-report.schema.json").read_text()))


@pytest.mark.parametrize("reader", ["engine", "numpy", "numpy-float32"])
def test_reader_passes_every_case_with_a_tenfold_margin(reader: str) -> None:
    hello, results = run_suite(builtin_reader(reader), SUITE)
    failed = [r.to_json() for r in results if not r.passed]
    assert not failed, failed
    assert len(results) == len(CASES)
    # float32 networks stay 10x inside the tolerance on every case (spec/0.1/conformance.md §4)
    worst = max(max(r.density_error or 0.0, r.gradient_error or 0.0) for r in results)
    assert worst <= 0.1, worst
    if reader == "numpy":  # binary64 all the way: agrees with the binary64 expected values to rounding
        assert worst < 1e-6


INDEPENDENT = ("numpy_reader", "numpy_header", "numpy_evaluate", "numpy_evidence", "numpy_quantized")


def test_numpy_reader_imports_only_numpy_h5py_the_standard_library_and_its_own_modules() -> None:
    """The independent reader is its five modules (nemap.conformance.numpy_*), which import nothing else of nemap."""
    roots, own = set(), set()
    for name in INDEPENDENT:
        tree = ast.parse((Path(numpy_reader.__file__).parent / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, "no relative imports"
                if node.module == "nemap.conformance":
                    own |= {a.name for a in node.names}
                else:
                    roots.add(node.module.split(".")[0])
    assert roots - set(sys.stdlib_module_names) <= {"numpy", "h5py"}, roots
    assert own <= set(INDEPENDENT), own


def test_every_code_and_requirement_has_a_fixture_and_the_spec_table_says_which() -> None:
    exercised = defaultdict(set)
    for case in CASES:
        for req in case.meta["exercises"]:
            exercised[req].add(case.name)
    used_codes = {code for case in CASES for code in case.meta["validator_codes"]}
    assert set(CODES) - used_codes == {"IO_CANNOT_OPEN"}  # a path that does not exist is not a fixture
    text = (SPEC / "nemap.md").read_text().split("## 14.", 1)[1].split("## 15.", 1)[0]
    text += (SPEC.parent / "0.2" / "nemap.md").read_text().split("## 14.", 1)[1].split("## 16.", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("| R-")]
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        reqs = re.findall(r"R-[A-Z]+-\d\d", cells[0])
        listed = set(re.findall(r"`((?:valid|invalid)/[a-z0-9_]+)`", cells[-1]))
        assert listed == set().union(*(exercised.get(r, set()) for r in reqs)), row
        if reqs == ["R-VER-05"]:  # every 0.1 case
            continue
        if "error" in cells[3] or "warning" in cells[3]:
            assert listed, f"no fixture for {reqs}"


def test_permuted_source_mrc_holds_the_density_at_every_voxel_centre() -> None:
    folder = SUITE / "valid" / "permuted_source_axes"
    grid = read_mrc(folder / "source.mrc")  # MAPC/MAPR/MAPS = 3, 1, 2, offset in NSTART
    with nemap.open(folder / "map.nemap") as m:
        assert grid.geometry == m.geometry
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in grid.values.shape], indexing="ij"), -1).reshape(-1, 3)
        density, _ = m.evaluate(m.geometry.to_physical(idx))
        span = m.normalization.value_max - m.normalization.value_min
    np.testing.assert_allclose(density, grid.values.reshape(-1), atol=1e-6 * span)


# --- readers with known bugs must fail -------------------------------------------------------

class _Buggy(numpy_reader.NemapFile):
    bug = ""

    def _weight(self, r, q):
        w, dw = super()._weight(r, q)
        return (w, 0 * dw) if self.bug == "no-weight-gradient" else (w, dw)

    def evaluate(self, points, dtype=np.float64):
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if self.bug == "half-voxel-shift":
            p = p + 0.5 * self.voxel
        if self.bug == "bfloat16-weights":
            for arrays in (self.weights, self.biases):
                for i, a in enumerate(arrays):
                    arrays[i] = (np.asarray(a, np.float32).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
        d, g = super().evaluate(p, dtype)
        if self.bug == "gradient-per-voxel":
            g = g * self.voxel
        return d, g


@pytest.mark.parametrize("bug", ["no-weight-gradient", "half-voxel-shift", "bfloat16-weights", "gradient-per-voxel"])
def test_readers_with_known_bugs_fail(bug: str, monkeypatch) -> None:
    monkeypatch.setattr(_Buggy, "bug", bug)
    monkeypatch.setattr(numpy_reader, "NemapFile", _Buggy)
    _, results = run_suite(builtin_reader("numpy"), SUITE)
    failed = {r.case for r in results if not r.passed}
    assert failed and all(name.startswith("valid/") for name in failed), failed


def test_a_reader_that_never_refuses_fails_the_invalid_cases() -> None:
    honest = builtin_reader("numpy")

    def lenient(request):
        answer = honest(request)
        if "error" in answer and request["op"] == "query":
            n = len(request["points"])
            return {"density": [0.0] * n, "gradient": [[0.0, 0.0, 0.0]] * n}
        return answer

    _, results = run_suite(lenient, SUITE)
    failed = {r.case for r in results if not r.passed}
    must_refuse = {c.name for c in CASES if c.meta["reader"] == "must-refuse"}
    assert failed == must_refuse


# --- the command and the protocol over a pipe ------------------------------------------------

def test_cli_runs_a_reader_program_over_the_protocol(capsys) -> None:
    reader = f'"{sys.executable}" "{Path(numpy_reader.__file__)}" --float32'
    assert main(["conformance", "--reader", reader, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (summary,) = report["readers"]
    assert summary["passed"] == summary["cases"] == len(CASES)
    assert summary["reader"].startswith("nemap numpy_reader")


def test_cli_runs_the_engine_program_and_validates(capsys) -> None:
    reader = f'"{sys.executable}" -m nemap.conformance.engine_reader'
    assert main(["conformance", "--reader", reader]) == 0
    out = capsys.readouterr().out
    assert f"{len(CASES)}/{len(CASES)} cases pass (query, validate, local_resolution)" in out


def test_cli_fails_for_a_reader_that_answers_nonsense(tmp_path: Path, capsys) -> None:
    script = tmp_path / "echo_reader.py"
    script.write_text("import sys\nfor line in sys.stdin:\n    print('{}', flush=True)\n")
    assert main(["conformance", "--reader", f'"{sys.executable}" "{script}"', "-q"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  valid/one_region: query: malformed answer" in out
    assert "FAIL  invalid/nan_weight: query: the reader evaluated a file it must refuse" in out


def test_cli_without_a_suite_says_so_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["conformance", "--suite", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(tmp_path) in err and "not a conformance suite" in err


def test_the_suite_exercises_every_part_of_the_tile_layout() -> None:
    """Between them the valid quantized cases use every class mode (0 empty, 1 bitmap and magnitudes, 2 bytes),
    one and four classes, every prediction order, escaped values and a base: a reader that gets any of them wrong
    fails a case."""
    from nemap.format.kinds import voxel_codec
    from nemap.format.kinds.quantized import tile_box

    modes, counts, orders, escaped, based = set(), set(), set(), False, False
    read_class = voxel_codec._read_class

    def noting(reader, n):
        modes.add(reader.data[reader.at])
        return read_class(reader, n)

    voxel_codec._read_class = noting
    try:
        for path in sorted((SUITE / "valid").glob("quantized*/map.nemap")):
            with nemap.open(path) as m:
                q, shape = m.quantized, m.geometry.grid_shape
                based |= q.base is not None
                for t in range(len(q.offsets) - 1):
                    data = q.tile_bytes(t)
                    box = tile_box(t, shape, q.tile_shape)
                    k = voxel_codec.decode_tile(data, tuple(s.stop - s.start for s in box))
                    table = data[1:1 + 3 * data[0]]
                    counts |= {byte // 16 + 1 for byte in table}
                    orders |= {byte % 16 for byte in table}
                    escaped |= bool(np.abs(k).max() > 10**4)
    finally:
        voxel_codec._read_class = read_class
    assert modes == {0, 1, 2} and counts == {1, 4} and orders == {1, 3, 5} and escaped and based


def test_a_reader_with_the_wrong_class_thresholds_fails(monkeypatch) -> None:
    from nemap.conformance import numpy_quantized

    honest = numpy_quantized.predict

    def strict(*args):
        p, cls = honest(*args)
        return p, np.maximum(cls - 1, 0)  # one threshold too high: classes shift down

    monkeypatch.setattr(numpy_quantized, "predict", strict)
    _, results = run_suite(builtin_reader("numpy"), SUITE)
    failed = {r.case for r in results if not r.passed}
    assert "valid/quantized_classes" in failed
