"""Write spec/0.3/schema/header.schema.json: the header schema of 0.1 with the members that 0.2 and 0.3 define
(extensions.NEMAP_feature_grid, extensions.NEMAP_quantized, evidence) inlined from their own schemas.

    python spec/0.3/schema/compose.py          # (re)write it; tests/test_spec.py checks it is up to date
"""

from __future__ import annotations

import json
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2]


def load(path: Path) -> dict:
    schema = json.loads(path.read_text("utf-8"))
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def compose() -> dict:
    base = json.loads((SPEC / "0.1" / "schema" / "header.schema.json").read_text("utf-8"))
    base["$id"] = "urn:nemap:spec:0.3:header.schema.json"
    base["title"] = "The JSON header of a .nemap file, format 0.3 (0.1's, with the members of 0.2 and 0.3)"
    base.setdefault("properties", {})["extensions"] = {
        "type": "object",
        "properties": {name: load(SPEC / "extensions" / name / "header.schema.json")
                       for name in ("NEMAP_feature_grid", "NEMAP_quantized")},
    }
    base["properties"]["evidence"] = load(SPEC / "0.2" / "schema" / "evidence.schema.json")
    return base


if __name__ == "__main__":
    out = SPEC / "0.3" / "schema" / "header.schema.json"
    out.write_text(json.dumps(compose(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(out)
