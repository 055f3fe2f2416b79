"""One source of truth across the C↔Python seam: the enums of edge.rt.contract are the
library's constants, every fault code has a name and a message (the documented ones),
and no module of edge/ types a number C already defines."""

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

from edge.rt import contract
from edge.rt.native import require_native

ffi, lib = require_native()
ROOT = Path(__file__).resolve().parents[2]
# h4's drive contract replaces the simulated arm's command numbers and modes
NOT_YET_FROM_C = ("ARM_SIM_",)


def _lib_constants() -> dict[str, int]:
    return {n: getattr(lib, n) for n in dir(lib) if n.isupper() and
            isinstance(getattr(lib, n), int)}


def _fault_idents() -> dict[str, int]:
    """IDENT -> code as faults.def spells them (read as text, not through the library)."""
    text = (ROOT / "native" / "faults.def").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"^EDGE_FAULT\((\w+),\s*(\d+),", text, re.M)}


@pytest.mark.parametrize("prefix", sorted(contract.FROM_PREFIX))
def test_each_enum_is_exactly_the_library_constants_of_its_prefix(prefix):
    enum = contract.FROM_PREFIX[prefix]
    in_c = {n[len(prefix):]: v for n, v in _lib_constants().items() if n.startswith(prefix)}
    assert in_c and {m.name: int(m) for m in enum} == in_c


def test_inputs_and_scalars_are_the_library_constants():
    assert {m.name: int(m) for m in contract.Input} == {
        "ESTOP": lib.EDGE_IN_ESTOP, "ENABLE_OK": lib.EDGE_IN_ENABLE_OK,
        "REDUCED": lib.SAFETY_IN_REDUCED, "DRIVE_OFF": lib.EDGE_IN_DRIVE_OFF}
    from edge.rt import native

    assert (native.MAX_AXES, native.NO_STOP, native.TARGET_CYCLE, native.TICK_ASAP) == (
        lib.EDGE_MAX_AXES, lib.EDGE_NO_STOP, lib.EDGE_TARGET_CYCLE, lib.EDGE_TICK_ASAP)


def test_fault_codes_are_those_of_faults_def():
    assert sorted(int(c) for c in contract.FaultCode) == sorted(_fault_idents().values())


def test_every_fault_code_has_a_name_and_a_message():
    names = [contract.fault_name(c) for c in contract.FaultCode]
    assert len(set(names)) == len(names)
    for code in contract.FaultCode:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", contract.fault_name(code)), code
        message = contract.fault_message(code)
        assert message.strip() and "unknown" not in message and "\n" not in message


def test_the_force_limit_fault_is_named():
    assert contract.FaultCode.FORCE_LIMIT == 320
    assert contract.fault_name(320) == "force_limit"
    assert "unknown" not in contract.fault_message(320)
    assert contract.fault_label(320) == "320 (force_limit)"
    assert contract.fault_message(999) == "unknown fault 999"


def test_fault_names_match_the_documented_table():
    """docs/motion-safety.md is what integrators read: its table of codes and names is the
    independent statement of the contract."""
    text = (ROOT / "docs" / "motion-safety.md").read_text()
    documented = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (\w+) \|", text, re.M)}
    assert documented == {int(c): contract.fault_name(c) for c in contract.FaultCode}


def _typed_twice(tree: ast.Module, c_names: dict[str, int]) -> list[str]:
    """Module-level assignments that type a C constant again: NAME = literal where NAME is
    a C name, with or without its namespace (FAULT_DEADLINE for EDGE_FAULT_DEADLINE); a
    {"name": literal} table whose keys are C names' tails with their values (WALL_KINDS);
    a table keyed by fault-code literals (FAULT_CODES)."""
    fault_codes = set(_fault_idents().values())

    def c_name_for(name: str, tail: bool = False) -> str | None:
        """The C constant `name` spells: itself or without its namespace (EDGE_, MOTION_);
        with `tail`, any trailing words (a table key: "plane" for SAFETY_WALL_PLANE)."""
        return next((c for c in c_names if not c.startswith(NOT_YET_FROM_C) and (
            c == name or c.split("_", 1)[-1] == name or tail and c.endswith("_" + name))),
            None)

    def literals(node) -> list:
        items = node.elts if isinstance(node, ast.Tuple) else [node]
        return [ast.literal_eval(i) for i in items if isinstance(i, (ast.Constant, ast.UnaryOp))]

    found = []
    for node in tree.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            names = [t.id for t in (target.elts if isinstance(target, ast.Tuple) else [target])
                     if isinstance(t, ast.Name)]
            hits = [n for n in names if c_name_for(n)]
            if hits and any(isinstance(v, int) for v in literals(node.value)):
                found.append(f"{', '.join(hits)} (C: {c_name_for(hits[0])})")
            if isinstance(node.value, ast.Dict) and node.value.keys:
                keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
                values = [v.value for v in node.value.values if isinstance(v, ast.Constant)]
                matched = [(c, key) for key, value in zip(keys, values, strict=False)
                           if isinstance(key, str) and isinstance(value, int)
                           and (c := c_name_for(key.upper(), tail=True)) and c_names[c] == value]
                # a table of C's: two or more keys alike in one namespace (SAFETY_WALL_*);
                # keys alike by chance across namespaces are not
                spaces = Counter(c[:-len(key) - 1] for c, key in matched)
                if any(n > 1 for n in spaces.values()):
                    found.append(f"{names}: {', '.join(c for c, _ in matched)}")
                if len(keys) > 1 and all(isinstance(k, int) and k in fault_codes for k in keys):
                    found.append(f"{names}: a table of fault codes")
    return found


def test_no_module_types_a_number_the_library_defines():
    """Product, rigs and benches (tests may type expected values: they are the oracle)."""
    c_names = {**_lib_constants(), **_fault_idents()}
    offenders = []
    for path in sorted(p for d in ("edge", "hil", "bench") for p in (ROOT / d).rglob("*.py")):
        for hit in _typed_twice(ast.parse(path.read_text()), c_names):
            offenders.append(f"{path.relative_to(ROOT)}: {hit}")
    assert not offenders, "\n".join(offenders)


def test_the_scan_catches_the_old_assignments():
    """What edge typed before this contract existed is caught (the scan can fail)."""
    c_names = {**_lib_constants(), **_fault_idents()}
    old = ("CYCLE_CMD_STOP, CYCLE_CMD_KICK = 1, 3\nFAULT_DEADLINE = 258\nNO_STOP = 255\n"
           "TICK_ASAP = -1\nFAULT_FORCE_LIMIT = 320\n"
           "WALL_KINDS = {'plane': 0, 'keep_out': 1}\nFAULT_CODES = {1: 'a', 256: 'b'}\n"
           "ARM_SIM_CMD_MODE = 2\n")
    hits = _typed_twice(ast.parse(old), c_names)
    assert len(hits) == 7 and not any("ARM_SIM" in h for h in hits), hits
