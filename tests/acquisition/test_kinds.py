"""Device kinds and filters are one table each: the parser, the sampler and the docs read
only the table, so a kind added to it is accepted everywhere and nothing else knows it."""

import re

import numpy as np
import pytest

from edge.acquisition.devices import DEVICE_KINDS
from edge.acquisition.filters import FILTERS, FilterKind, FilterSpec, LinearFilter, make_filter
from edge.acquisition.sampler import Sampler
from edge.acquisition.sources import DeviceKind, Source
from edge.config import parse_board
from edge.errors import ConfigError
from tests.docs.doc_blocks import ROOT
from tests.import_graph import cycles, imports

DOC = (ROOT / "docs" / "acquisition.md").read_text(encoding="utf-8")
HEAD = """name: t
cycle: {period_us: 1000}
axes: [{name: a, max_velocity: 1.0, max_acceleration: 1.0}]
"""


def _code_spans(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def test_the_documented_device_kinds_are_the_table():
    row = next(line for line in DOC.splitlines() if line.startswith("| `name`, `kind` |"))
    documented = re.findall(r"`(\w+)`", row.split("|")[4])
    assert documented == list(DEVICE_KINDS)
    in_examples = set(re.findall(r"- \{name: \w+, kind: (\w+)", DOC))
    assert in_examples and in_examples <= set(DEVICE_KINDS)


@pytest.mark.parametrize("kind", DEVICE_KINDS.values(), ids=lambda k: k.name)
def test_every_field_of_a_kind_is_documented(kind):
    spans = _code_spans(DOC)
    words = {w for s in spans for w in re.findall(r"[\w-]+", s)}
    missing = [f for f in kind.fields + kind.channel_fields if f not in words]
    assert not missing, f"docs/acquisition.md does not document {kind.name} fields {missing}"


def test_the_documented_filters_are_the_table():
    row = next(line for line in DOC.splitlines() if line.startswith("| `filter` |"))
    documented = re.findall(r"\{kind: (\w+)((?:, \w+)*)\}", row)
    assert sorted(name for name, _ in documented) == sorted(FILTERS)
    for name, fields in documented:
        assert tuple(re.findall(r"\w+", fields)) == FILTERS[name].fields, name


def test_the_documented_signal_shapes_are_the_table():
    from edge.acquisition.sources.simulated import SHAPES

    row = next(line for line in DOC.splitlines() if line.startswith("| `signal` |"))
    assert re.search(r"shape: ([\w/]+)", row)[1].split("/") == list(SHAPES)


def test_the_documented_checksums_are_the_table_and_their_sizes_hold():
    from edge.acquisition.sources.serial import CHECKSUMS

    row = next(line for line in DOC.splitlines() if line.startswith("| `sync`, `checksum` |"))
    meaning = row.split("|")[4]
    assert re.findall(r"`(\w+)`", meaning) == list(CHECKSUMS)
    for name, (size, compute) in CHECKSUMS.items():
        assert len(compute(b"\x01\x02\x03")) == size, name


# -- a kind added to the table is known to every reader -------------------------------------
class EchoSource(Source):
    """Reads back the channel's `register` field as its raw value."""

    async def open(self):
        return None

    async def close(self):
        return None

    async def read(self):
        return {c.name: float(c.source["register"]) for c in self.channels}, None


def _parse_echo(node, dev):
    dev.link = {"speed": node.get("speed", int, 7)}


@pytest.fixture
def echo_kind(monkeypatch):
    kind = DeviceKind(
        "echo", "echo", fields=("speed",), channel_fields=("register",),
        parse_device=_parse_echo,
        parse_channel=lambda node, dev: {"register": node.get("register", int)},
        make_source=lambda dev, channels, ctx: EchoSource(dev.name, channels))
    monkeypatch.setitem(DEVICE_KINDS, "echo", kind)
    return kind


def test_a_new_device_kind_is_one_table_entry(echo_kind):
    board = parse_board(HEAD + """acquisition:
  devices:
    - {name: e, kind: echo, speed: 3, period_ms: 5}
  channels:
    - {name: c, device: e, register: 42}
""", "b.yaml")
    acq = board.sections["acquisition"]
    assert acq.devices[0].link == {"speed": 3} and acq.channels[0].source == {"register": 42}
    sampler = Sampler(acq, 1_000_000, tick_fn=lambda: 0)
    assert isinstance(sampler.sources["e"], EchoSource) and set(sampler.pollers) == {"e"}


def test_a_new_kind_s_fields_are_its_own(echo_kind):
    with pytest.raises(ConfigError) as info:
        parse_board(HEAD + """acquisition:
  devices:
    - {name: e, kind: echo, host: h}
  channels: []
""", "b.yaml")
    assert info.value.field == "acquisition.devices[0].host"
    assert "speed" in info.value.message and "dropout_s" not in info.value.message


def test_a_new_filter_is_one_table_entry(monkeypatch):
    def parse_gain(node, rate_hz):
        return FilterSpec("gain", order=node.get("times", int))

    monkeypatch.setitem(FILTERS, "gain", FilterKind(
        "gain", ("times",), parse_gain,
        lambda spec, rate_hz: LinearFilter(np.array([float(spec.order)]), np.array([1.0]))))
    board = parse_board(HEAD + """acquisition:
  devices:
    - {name: s, kind: simulated, period_ms: 10}
  channels:
    - {name: c, device: s, filter: {kind: gain, times: 3}}
""", "b.yaml")
    spec = board.sections["acquisition"].channels[0].filter
    assert spec == FilterSpec("gain", order=3)
    assert make_filter(spec, 100.0).process(np.array([1.0, 2.0])).tolist() == [3.0, 6.0]


def test_an_unknown_filter_lists_the_table():
    with pytest.raises(ConfigError, match="expected one of: lowpass, median, moving_average"):
        make_filter(FilterSpec("notch"), 100.0)


def test_the_acquisition_package_has_no_import_cycle():
    assert not cycles(imports("edge.acquisition"))
