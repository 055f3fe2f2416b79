"""Random well-typed expressions against a reference interpreter written here.

The oracle walks the tree with Python integers and the documented rules (32-bit
saturation, division truncating toward zero, MOD with the dividend's sign, division by
zero gives 0). It evaluates every operand (no short-circuit), so the engine's fault bits
must be a subset of the oracle's, and equal when the expression has no AND/OR/IF.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.logic import DIV_ZERO, OVERFLOW, compile_expression

LO, HI = -(2**31), 2**31 - 1
SIG = {"i1": "INT", "i2": "INT", "i3": "INT", "b1": "BOOL", "b2": "BOOL"}


def sat(v, faults):
    if v > HI or v < LO:
        faults.add(OVERFLOW)
        return HI if v > HI else LO
    return v


def oracle(node, env, faults):
    kind = node[0]
    if kind == "name":
        return env[node[1]]
    if kind == "lit":
        return node[1]
    if kind == "not":
        return not oracle(node[1], env, faults)
    if kind == "neg":
        return sat(-oracle(node[1], env, faults), faults)
    if kind == "if":
        c, a, b = (oracle(x, env, faults) for x in node[1:])
        return a if c else b
    op, left, right = node[1], oracle(node[2], env, faults), oracle(node[3], env, faults)
    if op in ("AND", "OR", "XOR"):
        return {"AND": left and right, "OR": left or right, "XOR": left != right}[op]
    if op in ("<", ">", "<=", ">=", "=", "<>"):
        return {"<": left < right, ">": left > right, "<=": left <= right,
                ">=": left >= right, "=": left == right, "<>": left != right}[op]
    if op in ("/", "MOD"):
        if right == 0:
            faults.add(DIV_ZERO)
            return 0
        q = abs(left) // abs(right)
        q = q if (left < 0) == (right < 0) else -q
        return sat(q, faults) if op == "/" else left - right * q
    return sat({"+": left + right, "-": left - right, "*": left * right}[op], faults)


def render(node):
    kind = node[0]
    if kind == "name":
        return node[1]
    if kind == "lit":
        return str(node[1]) if node[1] >= 0 else f"({node[1]})"
    if kind == "not":
        return f"NOT ({render(node[1])})"
    if kind == "neg":
        return f"-({render(node[1])})"
    if kind == "if":
        return f"IF {render(node[1])} THEN {render(node[2])} ELSE {render(node[3])} END_IF"
    return f"({render(node[2])} {node[1]} {render(node[3])})"


ints_leaf = st.one_of(st.sampled_from([("name", "i1"), ("name", "i2"), ("name", "i3")]),
                      st.integers(-5, 5).map(lambda v: ("lit", v)))
bools_leaf = st.sampled_from([("name", "b1"), ("name", "b2")])


def int_expr(depth):
    if depth == 0:
        return ints_leaf
    sub = int_expr(depth - 1)
    return st.one_of(
        ints_leaf,
        st.tuples(st.just("bin"), st.sampled_from(["+", "-", "*", "/", "MOD"]), sub, sub),
        st.tuples(st.just("neg"), sub),
        st.tuples(st.just("if"), bool_expr(depth - 1), sub, sub))


def bool_expr(depth):
    if depth == 0:
        return bools_leaf
    isub, bsub = int_expr(depth - 1), bool_expr(depth - 1)
    return st.one_of(
        bools_leaf,
        st.tuples(st.just("bin"), st.sampled_from(["<", ">", "<=", ">=", "=", "<>"]), isub,
                  isub),
        st.tuples(st.just("bin"), st.sampled_from(["AND", "OR", "XOR"]), bsub, bsub),
        st.tuples(st.just("not"), bsub))


def has_name(node):
    return node[0] == "name" or any(isinstance(x, tuple) and has_name(x) for x in node[1:])


def has_lazy(node):
    return (node[0] == "if" or (node[0] == "bin" and node[1] in ("AND", "OR"))
            or any(isinstance(x, tuple) and has_lazy(x) for x in node[1:]))


def constant_subtree(node):
    return isinstance(node, tuple) and node[0] not in ("lit",) and (
        not has_name(node) or any(constant_subtree(x) for x in node[1:]))


values = st.fixed_dictionaries({
    "i1": st.sampled_from([0, 1, -1, 7, -7, 2**31 - 1, -(2**31), 46341, 65536]),
    "i2": st.integers(LO, HI), "i3": st.integers(-3, 3),
    "b1": st.booleans(), "b2": st.booleans()})


@settings(max_examples=400, deadline=None)
@given(st.one_of(int_expr(3), bool_expr(3)), values)
def test_engine_agrees_with_reference_interpreter(tree, env):
    if constant_subtree(tree):        # constant parts are folded (and may be compile errors)
        return
    f = compile_expression(render(tree), SIG)
    strict_faults: set[int] = set()
    want = oracle(tree, env, strict_faults)
    got = f(env)
    assert got == want and type(got) is type(want), render(tree)
    flags = {bit for bit in (OVERFLOW, DIV_ZERO) if f.faults.flags & bit}
    if has_lazy(tree):
        assert flags <= strict_faults, render(tree)
    else:
        assert flags == strict_faults, render(tree)
