"""The wire contract: generated code is fresh, and the seed document's protocol is kept exactly."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor

from woxqaq.v1 import task_service_pb2, upload_service_pb2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import gen_proto  # noqa: E402

SEED = ROOT / "docs" / "protocol-seed.md"
FILES = {
    "task_service": task_service_pb2.DESCRIPTOR,
    "upload_service": upload_service_pb2.DESCRIPTOR,
}
SCALARS = {
    "string": descriptor.FieldDescriptor.TYPE_STRING,
    "bool": descriptor.FieldDescriptor.TYPE_BOOL,
    "int32": descriptor.FieldDescriptor.TYPE_INT32,
    "uint64": descriptor.FieldDescriptor.TYPE_UINT64,
}


def test_generated_code_matches_proto_sources(tmp_path: Path) -> None:
    gen_proto.generate(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*.py*"))
    assert generated, "protoc produced nothing"
    for rel in generated:
        committed = ROOT / rel
        assert committed.exists(), f"{rel} is not committed; run: python scripts/gen_proto.py"
        assert committed.read_bytes() == (tmp_path / rel).read_bytes(), (
            f"{rel} is stale; run: python scripts/gen_proto.py"
        )


def _seed_sections() -> list[tuple[str, str, list[list[str]]]]:
    """(kind, name, table rows) for every message and enum documented in the seed."""
    text = SEED.read_text(encoding="utf-8")
    sections = []
    for m in re.finditer(
        r'<a name="woxqaq-v1-[\w-]+"></a>\s*\n\s*### ([\w.]+)\n(.*?)(?=<a name=|\n## |\Z)',
        text,
        re.S,
    ):
        name, body = m.group(1), m.group(2)
        rows = [
            [c.strip() for c in line.strip().strip("|").split("|")]
            for line in body.splitlines()
            if line.startswith("|")
            and not line.startswith("| -")
            and not line.startswith("| Field")
            and not line.startswith("| Name")
            and not line.startswith("| Method")
        ]
        kind = (
            "enum" if "| Number |" in body else "service" if "| Method Name" in body else "message"
        )
        sections.append((kind, name, rows))
    return sections


def _find(name: str):  # type: ignore[no-untyped-def]
    for fd in FILES.values():
        try:
            return fd.pool.FindMessageTypeByName(f"woxqaq.v1.{name}")
        except KeyError:
            pass
        try:
            return fd.pool.FindEnumTypeByName(f"woxqaq.v1.{name}")
        except KeyError:
            pass
        try:
            return fd.pool.FindServiceByName(f"woxqaq.v1.{name}")
        except KeyError:
            pass
    raise AssertionError(f"woxqaq.v1.{name} from the seed is missing")


SECTIONS = _seed_sections()


def test_seed_document_was_read() -> None:
    kinds = [k for k, _, _ in SECTIONS]
    assert kinds.count("message") == 17 and kinds.count("enum") == 9 and kinds.count("service") == 2


@pytest.mark.parametrize(("kind", "name", "rows"), SECTIONS, ids=[n for _, n, _ in SECTIONS])
def test_seed_definitions_are_kept_exactly(kind: str, name: str, rows: list[list[str]]) -> None:
    found = _find(name)
    if kind == "enum":
        assert [(v.name, v.number) for v in found.values][: len(rows)] == [
            (r[0], int(r[1])) for r in rows
        ]
    elif kind == "service":
        methods = {m.name: m for m in found.methods}
        for method, req, resp, _ in rows:
            req_name = re.match(r"\[(\w+)\]", req).group(1)  # type: ignore[union-attr]
            resp_name = re.match(r"\[(\w+)\]", resp).group(1)  # type: ignore[union-attr]
            assert methods[method].input_type.name == req_name
            assert methods[method].output_type.name == resp_name
    else:
        # Field numbers follow the listed order from 1; additions come after.
        for number, (field, type_, label, _) in enumerate(rows, start=1):
            f = found.fields_by_name[field]
            assert f.number == number, f"{name}.{field} must be field {number}"
            type_name = re.match(r"\[([\w.]+)\]", type_).group(1)  # type: ignore[union-attr]
            if type_name in SCALARS:
                assert f.type == SCALARS[type_name]
            else:
                target = f.message_type or f.enum_type
                assert target is not None and target.full_name.endswith(type_name.split(".")[-1])
            assert f.is_repeated == (label == "repeated")


def test_method_paths_are_in_package_woxqaq_v1() -> None:
    service = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]
    assert service.full_name == "woxqaq.v1.TaskService"
    assert (
        upload_service_pb2.DESCRIPTOR.services_by_name["UploadService"].full_name
        == "woxqaq.v1.UploadService"
    )
