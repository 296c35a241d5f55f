"""The gRPC adapter speaks to the use cases and the domain only: `service/api` reaches the
store, the datasources and the object store through `service.app`, never directly."""

from __future__ import annotations

import ast
from pathlib import Path

API_DIR = Path(__file__).resolve().parent.parent / "service" / "api"

# Packages the adapter may use whole, and the cross-cutting modules it may use beside them.
ALLOWED_PACKAGES = ("service.api", "service.app", "service.domain")
ALLOWED_MODULES = ("service.auth", "service.logs", "service.metrics")


def imported_modules(source: str, package: str) -> list[str]:
    """Every module an import statement of `source` names, anywhere in it (also inside
    functions and `if TYPE_CHECKING:`); `from a import b` names `a.b` too, since `b` may be
    a module. A call to `importlib.import_module` or `__import__` is reported as `<dynamic>`:
    an import this check cannot read."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the package
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                names.append("<dynamic>")
    return names


def forbidden(module: str) -> bool:
    if module == "<dynamic>":
        return True
    if module != "service" and not module.startswith("service."):
        return False  # the wire code, grpc, the standard library
    if module in ALLOWED_MODULES or any(module.startswith(f"{m}.") for m in ALLOWED_MODULES):
        return False
    return not any(module == p or module.startswith(f"{p}.") for p in ALLOWED_PACKAGES)


def forbidden_imports(source: str, package: str = "service.api") -> list[str]:
    return sorted({m for m in imported_modules(source, package) if forbidden(m)})


def test_the_api_imports_only_the_use_cases_the_domain_and_cross_cutting_modules() -> None:
    sources = sorted(API_DIR.glob("*.py"))
    assert len(sources) >= 5, f"expected the servicers under {API_DIR}"
    found = {
        path.name: bad
        for path in sources
        if (bad := forbidden_imports(path.read_text(encoding="utf-8")))
    }
    assert found == {}, f"service/api reaches past service.app: {found}"


def test_the_check_sees_every_way_of_importing_past_the_use_cases() -> None:
    bypasses = {
        "from service.store.repository import TaskStore": "service.store.repository",
        "import service.datasources": "service.datasources",
        "from service import config": "service.config",
        "from .. import storage": "service.storage",
        "def f():\n    from service.export.engine import export": "service.export.engine",
        "if TYPE_CHECKING:\n    from service.storage.base import ObjectStore": "service.storage.base",
        "import importlib\nimportlib.import_module('service.store')": "<dynamic>",
    }
    for source, offender in bypasses.items():
        assert offender in forbidden_imports(source), source
    allowed = (
        "from service.app.tasks import TaskManager\n"
        "from service.domain.errors import NotFound\n"
        "from service.api import convert\n"
        "from . import errors\n"
        "from service.metrics import Metrics\n"
        "import grpc\n"
        "from woxqaq.v1 import task_service_pb2\n"
    )
    assert forbidden_imports(allowed) == []
