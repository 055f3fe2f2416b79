"""The engine itself never hands anything to Python's evaluators: checked statically."""

import ast
from pathlib import Path

import edge.logic

FORBIDDEN = {"eval", "exec", "compile", "__import__", "getattr", "setattr", "globals",
             "locals", "vars"}
ALLOWED = {("program.py", "setattr")}      # function block inputs: names from a fixed table


def test_no_python_evaluator_is_called_in_the_engine():
    root = Path(edge.logic.__file__).parent
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in FORBIDDEN and (path.name, node.func.id) not in ALLOWED:
                found.append(f"{path.name}:{node.lineno} {node.func.id}")
    assert found == []


def test_function_block_inputs_are_only_names_from_the_block_table():
    from edge.logic import LogicError, compile_program

    for bad in ("__class__", "_start", "step", "Q"):
        try:
            compile_program(f"VAR t : TON; END_VAR t({bad} := TRUE);", {})
        except LogicError as e:
            assert "has no input" in e.message or "__" in e.message
        else:
            raise AssertionError(f"input {bad} accepted")
