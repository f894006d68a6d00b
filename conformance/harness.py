"""The conformance harness: runs a reader over the suite and says, per case, pass or fail.

A reader is anything that answers the protocol of spec/0.1/conformance.md §3 (one JSON request per
line on stdin, one JSON answer per line on stdout): a program given as a command line, or one of
the two built-in readers run in this process (the reference engine, the independent NumPy reader).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

SUITE_VERSION = "0.1"


def default_suite() -> Path:
    """fixtures/conformance/<version> of the source tree this package runs from."""
    return Path(__file__).resolve().parents[1] / "fixtures" / "conformance" / SUITE_VERSION


@dataclass
class Case:
    """One folder of the suite."""

    folder: Path
    meta: dict[str, Any]
    points: list[list[float | None]]
    density: np.ndarray | None = None   # expected, NaN where null
    gradient: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"{self.meta['kind']}/{self.meta['name']}"

    @property
    def file(self) -> Path:
        return self.folder / self.meta["file"]


def _array(values: Any) -> np.ndarray:
    return np.array(values if values is not None else [], dtype=np.float64)  # None → NaN


def json_floats(a: np.ndarray) -> Any:
    """A float array as nested lists with None for NaN and ±Inf (JSON has neither)."""
    return [json_floats(x) for x in a] if a.ndim > 1 else [float(v) if np.isfinite(v) else None for v in a]


def load_suite(root: Path) -> list[Case]:
    """Every case under root/valid and root/invalid, in name order."""
    if not (root / "valid").is_dir() or not (root / "invalid").is_dir():
        raise FileNotFoundError(f"{root}: not a conformance suite (no valid/ and invalid/ folders)")
    cases = []
    for kind in ("valid", "invalid"):
        for folder in sorted(p for p in (root / kind).iterdir() if p.is_dir()):
            meta = json.loads((folder / "case.json").read_text())
            queries = json.loads((folder / meta["queries"]).read_text())
            case = Case(folder, meta, queries["points"])
            if kind == "valid":
                case.density = _array(queries["density"])
                case.gradient = _array(queries["gradient"]).reshape(-1, 3)
            cases.append(case)
    return cases


class ProcessReader:
    """A reader program, started once and kept running for the whole suite."""

    def __init__(self, command: str, timeout: float = 120.0):
        self.command = command
        self.timeout = timeout
        self.proc = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request, allow_nan=False) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"reader {self.command!r} exited (status {self.proc.poll()})") from None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"reader {self.command!r} closed its output (status {self.proc.poll()})")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise RuntimeError(f"reader {self.command!r} answered {line[:80]!r}, not a JSON object")
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def builtin_reader(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``engine`` (the reference implementation) or ``numpy`` / ``numpy-float32`` (the independent
    reader), answering protocol requests in this process (no JSON round trip)."""
    if name == "engine":
        from .engine_reader import handle
        return handle
    if name in ("numpy", "numpy-float32"):
        from . import numpy_reader
        dtype = np.float32 if name.endswith("float32") else np.float64
        return lambda request: numpy_reader.handle(request, dtype)
    raise ValueError(f"unknown built-in reader {name!r} (engine, numpy, numpy-float32)")


@dataclass
class Result:
    case: str
    passed: bool
    checks: list[str] = field(default_factory=list)     # what was checked, or why it failed
    density_error: float | None = None                  # max |error| / tolerance (valid cases)
    gradient_error: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case, "passed": self.passed, "checks": self.checks,
                "density_error_over_tolerance": self.density_error, "gradient_error_over_tolerance": self.gradient_error}


def _check_query(case: Case, answer: dict[str, Any], result: Result) -> None:
    if "error" in answer:
        result.passed = False
        result.checks.append(f"query: reader refused a valid file ({answer['error'].get('message')})")
        return
    try:
        got_d = _array(answer["density"])
        got_g = _array(answer["gradient"]).reshape(-1, 3)
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
        bad = int(np.count_nonzero((np.isnan(got_d) != nan_want) | np.any(np.isnan(got_g) != np.isnan(case.gradient), axis=1)))
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


def run_case(reader: Callable[[dict[str, Any]], dict[str, Any]], case: Case, ops: list[str]) -> Result:
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
    if "validate" in ops:
        _check_validate(case, reader({"op": "validate", "file": str(case.file)}), result)
    return result


def run_suite(reader: Callable[[dict[str, Any]], dict[str, Any]], root: Path | None = None,
              progress: Callable[[Result], None] | None = None) -> tuple[dict[str, Any], list[Result]]:
    """Run every case; returns the reader's hello answer and one Result per case."""
    cases = load_suite(root or default_suite())
    hello = reader({"op": "hello"})
    ops = [op for op in hello.get("ops", ["query"]) if op in ("query", "validate")]
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
