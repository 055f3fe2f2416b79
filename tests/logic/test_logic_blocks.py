"""Function blocks and rules in virtual time: scan(inputs, tick) at a 10 ms period.

Expected sequences are written out by hand from the IEC 61131-3 definitions; the
hypothesis tests compare against small oracles written here over the whole input trace.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.logic import compile_program

MS = 1_000_000
PERIOD = 10 * MS


def run(text, signals, trace, outputs):
    """Scan once per tick with trace[k] as inputs; return {output: [values per tick]}."""
    prog = compile_program(text, signals, period_ns=PERIOD)
    seen = {name: [] for name in outputs}
    results = []
    for tick, inputs in enumerate(trace):
        results.append(prog.scan(inputs, tick))
        for name in outputs:
            seen[name].append(prog.vars[name])
    return seen, results


def bits(s):
    return [{"x": c == "1"} for c in s]


def timer(kind, pattern, pt="50ms"):
    text = (f"VAR t : {kind}; END_VAR VAR_OUTPUT q : BOOL; et : TIME; END_VAR\n"
            f"t(IN := x, PT := {pt}); q := t.Q; et := t.ET;")
    seen, _ = run(text, {"x": "BOOL"}, bits(pattern), ["q", "et"])
    return "".join("1" if v else "0" for v in seen["q"]), [v // MS for v in seen["et"]]


def test_ton_rises_after_pt_and_drops_with_in():
    q, et = timer("TON", "0011111111000111")
    assert q == "0000000111000000"
    assert et == [0, 0, 0, 10, 20, 30, 40, 50, 50, 50, 0, 0, 0, 0, 10, 20]


def test_ton_short_pulses_never_reach_q():
    q, _ = timer("TON", "0111101111011110")
    assert q == "0" * 16


def test_tof_holds_q_for_pt_after_in_falls():
    q, et = timer("TOF", "0111000000011000")
    assert q == "0111111110011111"
    assert et[4:10] == [0, 10, 20, 30, 40, 50]


def test_tp_pulse_has_exactly_pt_whatever_in_does():
    q, _ = timer("TP", "0100000000000000")
    assert q == "0111110000000000"
    q, _ = timer("TP", "0111111111111000")       # IN held: one pulse only
    assert q == "0111110000000000"
    q, _ = timer("TP", "0101010101010101")       # retriggers inside a pulse are ignored
    assert q == "0111110111110111"


def test_zero_preset_timers():
    q, _ = timer("TON", "0110", pt="0ms")
    assert q == "0110"


def test_edges_latches_counters_and_hysteresis():
    text = """
    VAR r : R_TRIG; f : F_TRIG; sr : SR; rs : RS; cu : CTU; cd : CTD; h : HYST; END_VAR
    VAR_OUTPUT rq, fq, srq, rsq, cuq, cdq, hq : BOOL; cv, dv : INT; END_VAR
    r(CLK := a); f(CLK := a); rq := r.Q; fq := f.Q;
    sr(S1 := a, R := b); rs(S := a, R1 := b); srq := sr.Q1; rsq := rs.Q1;
    cu(CU := a, R := b, PV := 2); cuq := cu.Q; cv := cu.CV;
    cd(CD := a, LD := b, PV := 2); cdq := cd.Q; dv := cd.CV;
    h(IN := level, HIGH := 10.0, LOW := 5.0); hq := h.Q;
    """
    a = "0110110011"
    b = "1000011000"
    level = [0.0, 11.0, 7.0, 4.0, 6.0, 10.0, 10.5, 9.0, 5.0, 4.9]
    trace = [{"a": a[k] == "1", "b": b[k] == "1", "level": level[k]} for k in range(10)]
    names = ["rq", "fq", "srq", "rsq", "cuq", "cdq", "hq", "cv", "dv"]
    seen, _ = run(text, {"a": "BOOL", "b": "BOOL", "level": "REAL"}, trace, names)
    s = {n: "".join("1" if v else "0" for v in seen[n]) for n in names[:7]}
    assert s["rq"] == "0100100010"
    assert s["fq"] == "0001001000"
    assert s["srq"] == "0111110011"        # set wins over reset (tick 5: S1 and R)
    assert s["rsq"] == "0111100011"        # reset wins (tick 5)
    assert seen["cv"] == [0, 1, 1, 1, 2, 0, 0, 0, 1, 1]
    assert s["cuq"] == "0000100000"
    assert seen["dv"] == [2, 1, 1, 1, 0, 2, 2, 2, 1, 1]
    assert s["cdq"] == "0000100000"
    assert s["hq"] == "0110001110"


def test_rule_fires_once_per_rising_edge_and_rearms():
    text = 'WHEN x THEN EVENT "up"; END_WHEN WHEN NOT x THEN EVENT "down"; STOP 2; END_WHEN'
    _, results = run(text, {"x": "BOOL"}, bits("0110011"), [])
    assert [r.events for r in results] == [
        [(1, "down")], [(0, "up")], [], [(1, "down")], [], [(0, "up")], []]
    assert [r.stop_category for r in results] == [2, None, None, 2, None, None, None]


def test_rule_for_needs_the_condition_held_for_the_duration():
    text = 'WHEN x FOR 30ms THEN EVENT "held"; END_WHEN'
    _, results = run(text, {"x": "BOOL"}, bits("0111011111111001111"), [])
    fired = [k for k, r in enumerate(results) if r.events]
    assert fired == [8, 18]


def test_rule_actions_assign_and_later_items_see_the_new_value():
    text = """VAR_OUTPUT n : INT; armed : BOOL; END_VAR
    WHEN x THEN n := n + 1; armed := TRUE; END_WHEN
    WHEN armed AND n >= 2 THEN EVENT "second"; armed := FALSE; END_WHEN"""
    seen, results = run(text, {"x": "BOOL"}, bits("0101010"), ["n", "armed"])
    assert seen["n"] == [0, 1, 1, 2, 2, 3, 3]
    assert [k for k, r in enumerate(results) if r.events] == [3, 5]


def test_math_fault_is_readable_by_rules():
    text = 'VAR_OUTPUT q : INT; END_VAR q := 10 / d; WHEN MATH_FAULT THEN EVENT "math"; END_WHEN'
    prog = compile_program(text, {"d": "INT"})
    assert prog.scan({"d": 2}, 0).events == [] and prog.vars["q"] == 5
    r = prog.scan({"d": 0}, 1)
    assert r.events == [(0, "math")] and r.faults and prog.vars["q"] == 0
    prog.clear_faults()
    assert prog.scan({"d": 1}, 2).faults == 0


# -- properties against oracles --------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(0, 6))
def test_ton_matches_oracle(trace, pt_ticks):
    q, _ = timer("TON", "".join("1" if v else "0" for v in trace), pt=f"{pt_ticks * 10}ms")
    run_len, want = 0, []
    for v in trace:
        run_len = run_len + 1 if v else 0
        want.append("1" if v and run_len - 1 >= pt_ticks else "0")
    assert q == "".join(want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(1, 6))
def test_tp_matches_oracle(trace, pt_ticks):
    q, _ = timer("TP", "".join("1" if v else "0" for v in trace), pt=f"{pt_ticks * 10}ms")
    # a pulse covers ticks s .. s + pt - 1; the tick s + pt that ends it cannot start
    # another (the trigger is looked at before the pulse is timed out, as in CODESYS)
    want, start, prev = [], None, False
    for k, v in enumerate(trace):
        if start is not None and k - start > pt_ticks:
            start = None
        if start is None and v and not prev:
            start = k
        want.append("1" if start is not None and k - start < pt_ticks else "0")
        prev = v
    assert q == "".join(want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(0, 5))
def test_when_for_matches_oracle(trace, d_ticks):
    text = f'WHEN x FOR {d_ticks * 10}ms THEN EVENT "e"; END_WHEN'
    _, results = run(text, {"x": "BOOL"}, [{"x": v} for v in trace], [])
    got = [k for k, r in enumerate(results) if r.events]
    want, run_len = [], 0
    for k, v in enumerate(trace):
        run_len = run_len + 1 if v else 0
        if run_len - 1 == d_ticks:
            want.append(k)
    assert got == want


@pytest.mark.parametrize("pt", ["-10ms"])
def test_negative_preset_acts_as_zero(pt):
    q, _ = timer("TON", "0110", pt=pt)
    assert q == "0110"


def test_declarations_initial_values_widening_and_outputs():
    text = """
    VAR_OUTPUT r : REAL := 2; t : TIME := 1s + 500ms; n : INT := -3; f : BOOL := TRUE; END_VAR
    VAR k : INT := 16#10; END_VAR
    r := r + k;           // INT widened into REAL
    t := t * 2;
    n := n * k;
    f := NOT f;
    """
    prog = compile_program(text, {})
    assert prog.outputs() == {"r": 2.0, "t": 1_500_000_000, "n": -3, "f": True}
    prog.scan({}, 0)
    out = prog.outputs()
    assert out == {"r": 18.0, "t": 3_000_000_000, "n": -48, "f": False}
    assert isinstance(out["r"], float)
    prog.scan({}, 1)
    assert prog.outputs() == {"r": 34.0, "t": 6_000_000_000, "n": -768, "f": True}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(0, 6))
def test_tof_matches_oracle(trace, pt_ticks):
    q, _ = timer("TOF", "".join("1" if v else "0" for v in trace), pt=f"{pt_ticks * 10}ms")
    # Q is TRUE while IN is, and for the pt_ticks scans after IN fell (not before any TRUE)
    want, since_fall, ever = [], None, False
    for v in trace:
        if v:
            since_fall, ever = None, True
            want.append("1")
            continue
        since_fall = 0 if since_fall is None else since_fall + 1
        want.append("1" if ever and since_fall < pt_ticks else "0")
        if since_fall >= pt_ticks:
            ever = False
    assert q == "".join(want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60),
       st.integers(0, 4))
def test_ctu_matches_oracle(trace, pv):
    text = (f"VAR c : CTU; END_VAR VAR_OUTPUT q : BOOL; cv : INT; END_VAR\n"
            f"c(CU := u, R := r, PV := {pv}); q := c.Q; cv := c.CV;")
    seen, _ = run(text, {"u": "BOOL", "r": "BOOL"},
                  [{"u": u, "r": r} for u, r in trace], ["q", "cv"])
    cv, prev, want_cv = 0, False, []
    for u, r in trace:
        cv = 0 if r else cv + (1 if u and not prev else 0)
        prev = u
        want_cv.append(cv)
    assert seen["cv"] == want_cv
    assert seen["q"] == [v >= pv for v in want_cv]
