"""The tree is the architecture: each layer of src/nemap imports only the layers below it (read from
the code's own imports), `import nemap` and `nemap validate` load no torch, no function is too complex,
and every § cited in code and docs exists in the spec document it names."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "nemap"

# What each folder of src/nemap may import from nemap (besides itself and the root modules errors, files, machine and
# _version, which every layer may use). format is the file; engine, graph and resolution sit on it; fit makes
# content with the engine's sampler and resolution's FSC; map is the opened file (nemap.open) with its queries
# and graphs; io reads and writes other formats; tools are what users run; cli parses flags.
ALLOWED = {
    "format": set(),
    "engine": {"format"},
    "graph": {"format"},
    "resolution": {"format"},
    "fit": {"format", "engine", "resolution"},
    "map": {"format", "engine", "graph", "resolution"},
    "io": {"format", "graph"},
    "tools": {"format", "engine", "fit", "graph", "io", "resolution", "map"},
    "conformance": {"format", "engine", "map"},
    "cli": {"format", "engine", "fit", "graph", "io", "tools", "conformance", "resolution", "map"},
}
BASE = {"errors", "files", "machine", "_version"}  # root modules below every layer, importing only each other
ROOT_MODULES = {"__init__": {"format", "map", "tools", "errors"}, "__main__": {"cli"}, "_version": set(),
                "errors": set(), "files": {"errors"}, "machine": set()}
MAX_COMPLEXITY = 15  # the house rule (radon grade C ends at 20, the hard limit)


def nemap_imports(path: Path) -> set[str]:
    """Every nemap module that ``path`` imports (absolute names; relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "nemap"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] == "nemap":
                found |= {f"{base}.{a.name}" for a in node.names} if base == "nemap" else {base}
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_layers_import_only_the_layers_below() -> None:
    wrong = []
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30
    for path in modules:
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0] if len(rel.parts) > 1 else None
        allowed = ALLOWED[own] | {own} | BASE if own else ROOT_MODULES[rel.stem]
        for module in nemap_imports(path):
            target = layer_of(module)
            if target not in allowed | {"_version"}:
                wrong.append(f"{rel} imports {module}")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_every_layer_folder_is_known() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set(ALLOWED)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the nemap modules it imports (anywhere in its code), each resolved to a module of src/nemap
    (``from nemap.format import limits`` is the module nemap.format.limits; a name is its package)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in nemap_imports(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_import_circles_anywhere() -> None:
    """No module imports itself through others, inside a layer or across (lazy imports included)."""
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


def test_the_circle_test_sees_a_circle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_independent_reader_imports_nothing_of_nemap() -> None:
    own = {f"nemap.conformance.{n}" for n in ("numpy_header", "numpy_evaluate", "numpy_evidence", "numpy_quantized")}
    for path in (PACKAGE / "conformance").glob("numpy_*.py"):
        assert nemap_imports(path) <= own | {"nemap.conformance"}, path


def test_the_layering_test_sees_an_upward_import(tmp_path: Path) -> None:
    bad = PACKAGE / "format" / "_probe_upward.py"
    bad.write_text("from nemap.engine.query import Engine\nfrom ..tools import convert\n")
    try:
        assert nemap_imports(bad) == {"nemap.engine.query", "nemap.tools"}
        with pytest.raises(AssertionError, match="format/_probe_upward.py imports nemap.engine.query"):
            test_layers_import_only_the_layers_below()
    finally:
        bad.unlink()


@pytest.mark.parametrize("code", [
    "import nemap",
    "import nemap.format.validate, nemap.format.reader, nemap.format.writer, nemap.io.mrc, nemap.graph",
    "from nemap.cli import main; import sys; sys.argv = ['nemap']; main(['validate', '{file}'])",
    "from nemap.cli import build_parser; build_parser()",
])
def test_no_torch_is_loaded(code: str) -> None:
    file = PACKAGE / "conformance" / "suite" / "0.3" / "valid" / "one_region" / "map.nemap"
    probe = code.format(file=file) + "\nimport sys\nprint('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"


def test_no_function_is_too_complex() -> None:
    from radon.complexity import cc_visit

    too_complex = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if block.complexity > MAX_COMPLEXITY:
                too_complex.append(f"{path.relative_to(PACKAGE)}:{block.lineno} {block.name} ({block.complexity})")
    assert not too_complex, f"cyclomatic complexity above {MAX_COMPLEXITY}:\n" + "\n".join(too_complex)


# -- § citations ------------------------------------------------------------------------------------

SPEC = REPO / "spec" / "0.1"
CITATION = re.compile(r"§\s?(\d+(?:\.\d+)?)")
DOC_NAME = re.compile(r"([\w./-]+\.md)")


def spec_sections(doc: Path) -> set[str]:
    """Section numbers of a spec document's headings ('## 9. Evaluation' → 9, '### 9.4 …' → 9.4)."""
    return {m.group(1) for m in re.finditer(r"^#{2,4} (\d+(?:\.\d+)?)\.? ", doc.read_text(), re.M)}


def cited_document(text: str, at: int, default: str) -> str | None:
    """The spec document a § at ``at`` refers to: the nearest *.md named just before it on the same
    line (None when that is not one of ours), else ``default``."""
    line_start = text.rfind("\n", 0, at) + 1
    names = DOC_NAME.findall(text[line_start:at])
    if not names:
        return default
    if "0.2/" in names[-1]:  # spec/0.2/nemap.md amends 0.1; its sections are keyed "0.2/nemap.md"
        return "0.2/nemap.md"
    name = Path(names[-1]).name
    return name if (SPEC / name).is_file() else None


def citing_files() -> list[tuple[Path, str]]:
    files = [(p, "nemap.md") for p in sorted((REPO / "src").rglob("*.py"))]
    files += [(p, "nemap.md") for p in sorted((REPO / "fixtures").rglob("*.py"))]
    files += [(p, "nemap.md") for p in sorted((REPO / "benchmarks").rglob("*.py"))]
    files += [(p, "nemap.md") for p in sorted((REPO / "tests").rglob("*.py")) if p.name != Path(__file__).name]
    files += [(p, p.name) for p in sorted(SPEC.glob("*.md"))]
    files += [(SPEC.parent / "0.2" / "nemap.md", "0.2+0.1")]  # its bare § cite its own sections, else 0.1's
    files += [(REPO / "README.md", "nemap.md"), (SPEC / "examples" / "make_tiny.py", "nemap.md")]
    return files


def test_every_cited_section_exists() -> None:
    sections = {doc.name: spec_sections(doc) for doc in SPEC.glob("*.md")}
    sections["0.2/nemap.md"] = spec_sections(SPEC.parent / "0.2" / "nemap.md")
    sections["0.2+0.1"] = sections["0.2/nemap.md"] | sections["nemap.md"]
    assert {"3.6", "9.4", "14"} <= sections["nemap.md"] and {"3", "4"} <= sections["conformance.md"]
    missing, count = [], 0
    for path, default in citing_files():
        text = path.read_text(encoding="utf-8")
        for m in CITATION.finditer(text):
            doc = cited_document(text, m.start(), default)
            if doc is None:
                continue
            count += 1
            if m.group(1) not in sections[doc]:
                line = text.count("\n", 0, m.start()) + 1
                missing.append(f"{path.relative_to(REPO)}:{line} cites {doc} §{m.group(1)}")
    assert count > 30
    assert not missing, "citations of sections that do not exist:\n" + "\n".join(missing)


RESERVED_PATHS: set[str] = set()


def test_every_repository_path_named_in_the_docs_exists() -> None:
    """`src/…`, `tests/…`, `fixtures/…`, `benchmarks/…` and `spec/…` paths in README, CHANGELOG's newest
    section and the spec point at something that is there (patterns with *, <…> or {…} are skipped)."""
    pattern = re.compile(r"`((?:src|tests|fixtures|benchmarks|spec)/[^`\s]+?)`")
    docs = [REPO / "README.md", *sorted((REPO / "spec").rglob("*.md"))]
    changelog = (REPO / "CHANGELOG.md").read_text().split("\n## ")[1]  # the newest section only: history moves
    missing = []
    for name, text in [(d.relative_to(REPO), d.read_text()) for d in docs] + [("CHANGELOG.md", changelog)]:
        for m in pattern.finditer(text):
            path = m.group(1).rstrip(".,:;)")
            if any(c in path for c in "*<>{}") or (REPO / path).exists() or path in RESERVED_PATHS:
                continue
            missing.append(f"{name}: {path}")
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_ruff_is_clean() -> None:
    """The linter configured in pyproject.toml ([tool.ruff]) finds nothing."""
    ruff = pytest.importorskip("ruff")
    r = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, (ruff.__name__, r.stdout[-3000:])


def test_no_module_is_too_long() -> None:
    """One responsibility per module: none in src/ over 500 lines."""
    long = [f"{p.relative_to(PACKAGE)} ({n})" for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500]
    assert not long, long
