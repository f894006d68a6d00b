"""The conformance harness: runs a reader over the suite and says, per case, pass or fail.

A reader is anything that answers the protocol of spec/0.1/conformance.md §3 (one JSON request per
line on stdin, one JSON answer per line on stdout): a program given as a command line, or one of
the two built-in readers run in this process (the reference engine, the independent NumPy reader).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nemap.conformance.materialize import materialize
from nemap.conformance.protocol import Handler, float_array
from nemap.errors import NemapError

SUITE_VERSION = "0.3"


def default_suite() -> Path:
    """The suite installed with this package: nemap/conformance/suite/<version>/ (package data)."""
    return Path(str(resources.files("nemap.conformance").joinpath("suite", SUITE_VERSION)))


@dataclass
class Case:
    """One folder of the suite."""

    folder: Path
    meta: dict[str, Any]
    points: list[list[float | None]]
    density: np.ndarray | None = None   # expected, NaN where null
    gradient: np.ndarray | None = None
    local_resolution: np.ndarray | None = None  # expected Å (spec/0.2/nemap.md R-EVD-03), NaN where null

    @property
    def name(self) -> str:
        return f"{self.meta['kind']}/{self.meta['name']}"

    built: Path | None = None  # the file, when it was built at run time (materialize)

    @property
    def file(self) -> Path:
        return self.built or self.folder / self.meta["file"]


def check_suite(root: Path) -> None:
    """Refuse a folder that is not a conformance suite (no valid/ and invalid/ folders)."""
    if not (root / "valid").is_dir() or not (root / "invalid").is_dir():
        raise NemapError("not a conformance suite (no valid/ and invalid/ folders)", path=root, code="NOT_A_SUITE",
                         parameter="suite")


_WORKDIR: list[tempfile.TemporaryDirectory] = []


def _workdir() -> Path:
    """A folder for files built at run time, removed when the process ends."""
    if not _WORKDIR:
        _WORKDIR.append(tempfile.TemporaryDirectory(prefix="nemap-conformance-"))
    return Path(_WORKDIR[0].name)


def load_suite(root: Path, workdir: Path | None = None) -> list[Case]:
    """Every case under root/valid and root/invalid, in name order; files too large to ship are built
    in ``workdir`` (default: a temporary folder of this process)."""
    check_suite(root)
    cases = []
    for kind in ("valid", "invalid"):
        for folder in sorted(p for p in (root / kind).iterdir() if p.is_dir()):
            meta = json.loads((folder / "case.json").read_text())
            queries = json.loads((folder / meta["queries"]).read_text())
            case = Case(folder, meta, queries["points"])
            if "materialize" in meta:
                case.built = materialize(folder, meta, workdir or _workdir())
            if kind == "valid":
                case.density = float_array(queries["density"])
                case.gradient = float_array(queries["gradient"]).reshape(-1, 3)
                if "local_resolution" in queries:
                    case.local_resolution = float_array(queries["local_resolution"])
            cases.append(case)
    return cases


class ProcessReader:
    """A reader program, started once and kept running for the whole suite."""

    def __init__(self, command: str, timeout: float = 120.0):
        self.command = command
        self.timeout = timeout
        try:
            self.proc = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True, bufsize=1)
        except (OSError, ValueError) as exc:
            raise NemapError(f"cannot start reader {command!r} ({exc})", code="READER_FAILED",
                             parameter="reader") from None

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request, allow_nan=False) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise NemapError(f"reader {self.command!r} exited (status {self.proc.poll()})",
                             code="READER_FAILED") from None
        line = self.proc.stdout.readline()
        if not line:
            raise NemapError(f"reader {self.command!r} closed its output (status {self.proc.poll()})",
                             code="READER_FAILED")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise NemapError(f"reader {self.command!r} answered {line[:80]!r}, not a JSON object", code="READER_FAILED")
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:  # the reader exited: what was buffered for it is lost, as intended
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Result:
    case: str
    passed: bool
    checks: list[str] = field(default_factory=list)     # what was checked, or why it failed
    density_error: float | None = None                  # max |error| / tolerance (valid cases)
    gradient_error: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case, "passed": self.passed, "checks": self.checks,
                "density_error_over_tolerance": self.density_error,
                "gradient_error_over_tolerance": self.gradient_error}


def _check_query(case: Case, answer: dict[str, Any], result: Result) -> None:
    if "error" in answer:
        result.passed = False
        result.checks.append(f"query: reader refused a valid file ({answer['error'].get('message')})")
        return
    try:
        got_d = float_array(answer["density"])
        got_g = float_array(answer["gradient"]).reshape(-1, 3)
    except (KeyError, TypeError, ValueError) as exc:
        result.passed = False
        result.checks.append(f"query: malformed answer ({exc})")
        return
    assert case.density is not None and case.gradient is not None
    if got_d.shape != case.density.shape or got_g.shape != case.gradient.shape:
        result.passed = False
        result.checks.append(f"query: {got_d.shape[0]} answers for {case.density.shape[0]} points")
        return
    nan_want = np.isnan(case.density)
    if not (np.array_equal(np.isnan(got_d), nan_want) and np.array_equal(np.isnan(got_g), np.isnan(case.gradient))):
        bad = int(np.count_nonzero((np.isnan(got_d) != nan_want) | np.any(np.isnan(got_g) != np.isnan(case.gradient),
                                                                          axis=1)))
        result.passed = False
        result.checks.append(f"query: NaN (outside the map) where a value is expected, or the reverse, at {bad} points")
        return
    tol = case.meta["tolerance"]
    d_err = float(np.max(np.abs(got_d - case.density)[~nan_want], initial=0.0))
    g_err = float(np.max(np.abs(got_g - case.gradient)[~nan_want], initial=0.0))
    result.density_error = d_err / tol["density"]
    result.gradient_error = g_err / tol["gradient"]
    ok = result.density_error <= 1.0 and result.gradient_error <= 1.0
    result.passed &= ok
    result.checks.append(f"query: {len(got_d)} points, density error {result.density_error:.2g} × tolerance, "
                         f"gradient error {result.gradient_error:.2g} × tolerance" + ("" if ok else "  EXCEEDS"))


LOCAL_RESOLUTION_TOLERANCE = 1e-6  # of the largest expected value: the grid is float32, read exactly


def _check_local_resolution(case: Case, answer: dict[str, Any], result: Result) -> None:
    """The optional local_resolution operation against the expected values (NaN exactly where unknown)."""
    want = case.local_resolution
    assert want is not None
    try:
        got = float_array(answer["local_resolution"])
    except (KeyError, TypeError, ValueError):
        result.passed = False
        result.checks.append(f"local_resolution: no answer ({answer.get('error', answer)})")
        return
    known = ~np.isnan(want)
    ok = got.shape == want.shape and np.array_equal(np.isnan(got), ~known) and bool(
        np.all(np.abs(got[known] - want[known]) <= LOCAL_RESOLUTION_TOLERANCE * np.nanmax(want, initial=1.0)))
    result.passed &= ok
    result.checks.append(f"local_resolution: {int(known.sum())} known of {want.size} points"
                         + (" as expected" if ok else "  DIFFERS"))


def _check_validate(case: Case, answer: dict[str, Any], result: Result) -> None:
    if "error" in answer:
        result.passed = False
        result.checks.append(f"validate: {answer['error'].get('message')}")
        return
    codes = sorted({i["code"] for i in answer.get("issues", [])})
    want = case.meta["validator_codes"]
    valid_ok = bool(answer.get("valid")) == (case.meta["kind"] == "valid")
    if codes != want or not valid_ok:
        result.passed = False
        result.checks.append(f"validate: codes {codes}, valid={answer.get('valid')}; expected {want}")
    else:
        result.checks.append(f"validate: codes {codes or '[]'} as expected")


def run_case(reader: Handler, case: Case, ops: list[str]) -> Result:
    result = Result(case.name, True)
    if case.meta["kind"] == "valid" and "query" in ops:
        _check_query(case, reader({"op": "query", "file": str(case.file), "points": case.points}), result)
    elif case.meta["kind"] == "invalid" and "query" in ops:
        answer = reader({"op": "query", "file": str(case.file), "points": case.points})
        if case.meta["reader"] == "must-refuse":
            if "error" in answer:
                result.checks.append(f"query: refused ({answer['error'].get('code')})")
            else:
                result.passed = False
                result.checks.append("query: the reader evaluated a file it must refuse")
        else:
            result.checks.append("query: reader may read or refuse (checked by validators only)")
    if case.local_resolution is not None and "local_resolution" in ops:
        _check_local_resolution(case, reader({"op": "local_resolution", "file": str(case.file), "points": case.points}),
                                result)
    if "validate" in ops:
        _check_validate(case, reader({"op": "validate", "file": str(case.file)}), result)
    return result


def _version(text: Any) -> tuple[int, int]:
    try:
        major, minor = str(text).split(".")
        return int(major), int(minor)
    except ValueError:
        return (0, 0)


def applies(case: Case, versions: list[str]) -> bool:
    """Whether a case tests a reader that declares ``versions`` (spec/0.1/conformance.md §3): its ``since`` (the
    version that made the rule it checks) is not newer than the newest version the reader implements."""
    newest = max((_version(v) for v in versions), default=(0, 1))
    return _version(case.meta.get("since", "0.1")) <= newest


def run_suite(reader: Handler, root: Path | None = None,
              progress: Callable[[Result], None] | None = None) -> tuple[dict[str, Any], list[Result]]:
    """Run the cases of the versions the reader declares (``hello``'s spec_versions; all, if it declares none);
    returns the reader's hello answer and one Result per case run."""
    cases = load_suite(root or default_suite())
    hello = reader({"op": "hello"})
    versions = hello.get("spec_versions") or [SUITE_VERSION]
    cases = [c for c in cases if applies(c, versions)]
    ops = [op for op in hello.get("ops", ["query"]) if op in ("query", "validate", "local_resolution")]
    results = []
    for case in cases:
        try:
            result = run_case(reader, case, ops)
        except Exception as exc:  # a reader that crashes or answers garbage fails the case
            result = Result(case.name, False, [f"reader failed: {type(exc).__name__}: {exc}"])
        results.append(result)
        if progress:
            progress(result)
    return hello, results


def text_line(result: Result) -> str:
    return f"{'PASS' if result.passed else 'FAIL'}  {result.case}: " + "; ".join(result.checks)
