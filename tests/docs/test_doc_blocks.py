"""The docs test's own parts: block extraction, markers and the output-shape comparison,
checked on hand-written pages and outputs (a checker that accepts anything proves nothing)."""

import pytest

from tests.docs import doc_blocks
from tests.docs.doc_blocks import shape_mismatch

SUMMARY = """\
board sim_arm (realtime, period 1000 us): 3001 ticks, 0 overruns, 0 deadline misses
task motion_controller: 290 releases, 0 misses, max runtime 759 us
motion: state moving, mode position, fault None, moves_done 1, tool_xyz_m [-0.1, 0.2, 0.3]
safety: checksum 3a3655fd881413be5730974bd1258e24df729096573c49b1b327f1fdf4143fd0, faults []
"""


def test_numbers_and_checksums_vary_but_words_do_not():
    expected = """\
board sim_arm (realtime, period 1000 us): 10001 ticks, 1 overruns, 2 deadline misses
task motion_controller: 990 releases, 0 misses, max runtime 954 us
"""
    assert shape_mismatch(expected, SUMMARY) is None
    other_board = expected.replace("sim_arm", "gantry")
    assert "gantry" in shape_mismatch(other_board, SUMMARY)
    other_task = expected.replace("motion_controller", "demo_moves")
    assert "demo_moves" in shape_mismatch(other_task, SUMMARY)


def test_summary_lines_compare_keys_in_order():
    expected = ("motion: state idle, mode position, fault None, moves_done 4, "
                "tool_xyz_m [-0.39, -0.23, 0.48]\n"
                "safety: checksum 00112233445566778899aabbccddeeff, faults [{code 1}]\n")
    assert shape_mismatch(expected, SUMMARY) is None
    missing_key = expected.replace("moves_done 4", "moves 4")
    assert shape_mismatch(missing_key, SUMMARY) is not None
    swapped = expected.replace("state idle, mode position", "mode position, state idle")
    assert shape_mismatch(swapped, SUMMARY) is not None


def test_a_key_shown_as_none_may_be_absent():
    faulted = "motion: state faulted, mode position, moves_done 1, tool_xyz_m [0.1, 0.2]\n"
    expected = ("motion: state idle, mode position, fault None, moves_done 4, "
                "tool_xyz_m [-0.39, -0.23]\n")
    assert shape_mismatch(expected, faulted) is None
    assert shape_mismatch(expected.replace("mode position", "mode None"), faulted) is None
    assert shape_mismatch(expected.replace("moves_done 4", "moves_done 1, x 2"),
                          faulted) is not None


def test_lines_must_appear_in_order():
    first, second = SUMMARY.splitlines()[:2]
    assert shape_mismatch(f"{first}\n{second}\n", SUMMARY) is None
    assert shape_mismatch(f"{second}\n{first}\n", SUMMARY) is not None
    assert shape_mismatch("edge: error: nothing like it\n", SUMMARY) is not None


def _page(tmp_path, monkeypatch, text):
    monkeypatch.setattr(doc_blocks, "ROOT", tmp_path)
    page = tmp_path / "page.md"
    page.write_text(text)
    return doc_blocks.blocks(page)


def test_markers_attach_to_the_next_block(tmp_path, monkeypatch):
    found = _page(tmp_path, monkeypatch, """\
text

<!-- doc-test: duration 1; needs-broker -->
```sh
edge run
```

```python
print(1)
```

<!-- doc-test: setup
x = 1
-->
```python
print(x)
```

<!-- doc-test: skip reasons may hold; semicolons -->
```yaml
a: 1
```
""")
    assert [b.lang for b in found] == ["sh", "python", "python", "yaml"]
    assert found[0].directives == {"duration": "1", "needs-broker": ""}
    assert found[1].directives == {} and found[1].line == 8
    assert found[2].setup.strip() == "x = 1"
    assert found[3].directives == {"skip": "reasons may hold; semicolons"}


@pytest.mark.parametrize("marker", ["<!-- doc-test: skip -->", "<!-- doc-test: frgment -->",
                                    "<!-- doc-test: fragment\nx = 1\n-->"])
def test_bad_markers_are_refused(tmp_path, monkeypatch, marker):
    with pytest.raises(ValueError):
        _page(tmp_path, monkeypatch, f"{marker}\n```yaml\na: 1\n```\n")
