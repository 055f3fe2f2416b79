"""Dependencies run one way, edge <- hil <- bench: the product never imports a rig or a
benchmark, a rig never imports a benchmark nor encodes with edge's own encoders. Checked
statically on the sources, so an import inside a function or through importlib with a
literal name counts too."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAY_NOT_IMPORT = {"edge": {"hil", "bench"}, "hil": {"bench"}}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement and every
    importlib.import_module / __import__ call with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def test_the_scan_sees_every_form_of_import():
    source = ("import hil.broker\nfrom bench.soak import run\n"
              "def f():\n    from hil import faults\n"
              "importlib.import_module('bench.motion')\nfrom . import sibling\n")
    assert [m for _, m in imported_modules(source)] == ["hil.broker", "bench.soak", "hil",
                                                        "bench.motion"]


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_dependencies_run_one_way(package):
    forbidden = MAY_NOT_IMPORT[package]
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in sorted((ROOT / package).rglob("*.py"))
             for line, module in imported_modules(path.read_text())
             if module.split(".")[0] in forbidden]
    assert wrong == []


# edge's encoders: a rig that used them would agree with any bug in edge's decoders
EDGE_ENCODERS = {"edge.acquisition.codec": None,       # the whole register codec
                 "edge.acquisition.sources.serial": {"encode_frame", "encode_line", "checksum",
                                                     "crc16_modbus", "nmea_checksum"}}


def test_rigs_encode_with_their_own_code():
    wrong = []
    for path in sorted((ROOT / "hil").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in EDGE_ENCODERS:
                names = {a.name for a in node.names}
                banned = EDGE_ENCODERS[node.module]
                if banned is None or names & banned:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
            elif isinstance(node, ast.Import):
                wrong += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}"
                          for a in node.names if a.name == "edge.acquisition.codec"]
    assert wrong == []
