"""Channels: filters streamed in chunks equal the one-piece oracle; quality; deadband."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from edge.acquisition.channel import (
    Channel,
    ChannelConfig,
    FilterSpec,
    Quality,
    Reading,
    make_filter,
)
from edge.errors import ConfigError

samples = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=80)
cuts = st.lists(st.integers(0, 80), max_size=6)
# what a device may really send: NaN and both infinities among ordinary values
NON_FINITE = (math.nan, math.inf, -math.inf)
raw_values = st.one_of(st.none(), st.floats(-200, 200), st.sampled_from(NON_FINITE),
                       st.floats(allow_nan=True, allow_infinity=True))


def expected_refusal(v: float) -> tuple:
    """The independent model of a refused reading: (quality, value, reason)."""
    if math.isnan(v):
        return (Quality.INVALID, None, "NaN")
    if math.isinf(v):
        return (Quality.INVALID, None, "+inf" if v > 0 else "-inf")
    return (Quality.OUT_OF_RANGE, v, None)


def chunked(filt, x, cut_points):
    bounds = sorted({0, len(x), *[c for c in cut_points if c < len(x)]})
    return np.concatenate([filt.process(np.array(x[a:b])) for a, b in zip(bounds, bounds[1:],
                                                                          strict=False)])


@settings(max_examples=60, deadline=None)
@given(samples, cuts)
def test_lowpass_chunked_equals_lfilter_in_one_piece(x, cut_points):
    spec = FilterSpec("lowpass", cutoff_hz=5.0, order=2)
    out = chunked(make_filter(spec, 100.0), x, cut_points)
    b, a = signal.butter(2, 5.0, fs=100.0)         # oracle: scipy directly, one piece
    ref, _ = signal.lfilter(b, a, x, zi=signal.lfilter_zi(b, a) * x[0])
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(samples, cuts, st.integers(1, 7))
def test_moving_average_chunked_equals_hand_mean(x, cut_points, n):
    out = chunked(make_filter(FilterSpec("moving_average", window=n), 10.0), x, cut_points)
    padded = [x[0]] * (n - 1) + list(x)             # primed with the first sample
    ref = [np.mean(padded[i:i + n]) for i in range(len(x))]
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-7)


@settings(max_examples=60, deadline=None)
@given(samples, cuts, st.integers(1, 7))
def test_median_chunked_equals_hand_median(x, cut_points, n):
    out = chunked(make_filter(FilterSpec("median", window=n), 10.0), x, cut_points)
    padded = [x[0]] * (n - 1) + list(x)
    ref = [sorted(padded[i:i + n])[(n - 1) // 2] if n % 2 else
           (sorted(padded[i:i + n])[n // 2 - 1] + sorted(padded[i:i + n])[n // 2]) / 2
           for i in range(len(x))]
    np.testing.assert_allclose(out, ref)


def test_lowpass_attenuates_above_cutoff():
    f = make_filter(FilterSpec("lowpass", cutoff_hz=2.0, order=4), 100.0)
    t = np.arange(2000) / 100.0
    y = f.process(np.sin(2 * np.pi * 30 * t) + 1.0)
    assert abs(np.mean(y[500:]) - 1.0) < 0.01 and np.ptp(y[500:]) < 0.01


def test_lowpass_cutoff_beyond_nyquist_is_a_config_error():
    with pytest.raises(ConfigError, match="Nyquist"):
        make_filter(FilterSpec("lowpass", cutoff_hz=60.0), 100.0)


def R(raw, tick, err=None):
    return Reading(raw, tick, tick * 1000, err)


def chan(**kw):
    cfg = ChannelConfig(name="t", device="d", unit="degC", **kw)
    return Channel(cfg, sample_rate_hz=10.0, period_ns=1_000_000)


def test_calibration_range_and_quality():
    c = chan(scale=0.1, offset=-40.0, valid_min=-20.0, valid_max=80.0)
    s = c.ingest([R(600, 5)], tick=10)
    assert s.quality == Quality.GOOD and s.value == pytest.approx(20.0)
    assert (s.tick, s.t_ns, s.unit) == (5, 5000, "degC")
    s = c.ingest([R(1500, 12)], tick=20)            # 110 degC: outside [-20, 80]
    assert s.quality == Quality.OUT_OF_RANGE and s.value == pytest.approx(110.0)
    s = c.ingest([R(None, 25, "timeout")], tick=30)
    assert s.quality == Quality.COMM_ERROR and s.value == pytest.approx(20.0)
    assert c.ingest([R(None, 35, "timeout")], tick=40) is None     # once per transition
    s = c.ingest([R(610, 45)], tick=50)
    assert s.quality == Quality.GOOD and s.value == pytest.approx(21.0)


def test_stale_after_silence_then_recovery():
    c = chan(stale_ms=100.0)                         # 100 ticks at 1 ms
    assert c.ingest([R(1.0, 0)], tick=0).quality == Quality.GOOD
    assert c.ingest([], tick=100) is None            # 100 ticks: still fresh
    s = c.ingest([], tick=101)
    assert s.quality == Quality.STALE and s.value == 1.0 and s.tick == 0
    assert c.ingest([], tick=150) is None
    assert c.ingest([R(2.0, 160)], tick=160).quality == Quality.GOOD


def test_stale_counts_silence_from_the_last_good_reading_late_in_a_run():
    # The same 100 ms rule far from tick 0: fresh for 100 ticks after the reading at
    # tick 5000, stale from the 101st (hand count, ticks of 1 ms).
    c = chan(stale_ms=100.0)
    assert c.ingest([R(3.0, 5000)], tick=5000).quality == Quality.GOOD
    assert c.ingest([], tick=5100) is None
    s = c.ingest([], tick=5101)
    assert s.quality == Quality.STALE and s.tick == 5000


def test_start_up_grace_counts_from_the_first_release():
    # A channel that never had a reading: stale_ms after its first release, not after 0.
    c = chan(stale_ms=100.0)
    assert c.ingest([], tick=7000) is None
    assert c.ingest([], tick=7100) is None
    assert c.ingest([], tick=7101).quality == Quality.STALE


@pytest.mark.parametrize("bound", [-20.0, 80.0])
def test_a_value_exactly_on_a_valid_bound_is_good_on_every_path(bound):
    # `valid: [lo, hi]` is a closed range: its ends are in range (raws chosen so that
    # raw x 0.5 - 40 lands exactly on each bound)
    from edge.acquisition.channel import PollReadings

    raw = (bound + 40.0) / 0.5                        # -20 -> 40, 80 -> 240, exact in binary
    walked = chan(scale=0.5, offset=-40.0, valid_min=-20.0, valid_max=80.0)
    polled = chan(scale=0.5, offset=-40.0, valid_min=-20.0, valid_max=80.0)
    s = walked.ingest([R(raw, 5)], tick=10)
    assert (s.quality, s.value) == (Quality.GOOD, bound)
    s = walked.ingest(PollReadings([(25, 25000, {"t": raw}, None, None)], "t"), tick=30)
    assert (s.quality, s.value) == (Quality.GOOD, bound)          # the walk over records
    s = polled.ingest_polls([(5, 5000, {"t": raw}, None, None)], tick=10)
    assert (s.quality, s.value) == (Quality.GOOD, bound)          # first release
    s = polled.ingest_polls([(25, 25000, {"t": raw}, None, None)], tick=30)
    assert (s.quality, s.value) == (Quality.GOOD, bound)          # later: taken straight


def test_a_change_exactly_equal_to_the_deadband_is_held_back():
    # the deadband holds changes up to and including it (10.0 -> 10.5 is 0.5 exactly)
    c = chan(deadband=0.5)
    out = [c.ingest([R(v, i)], tick=i) for i, v in enumerate([10.0, 10.5, 10.75])]
    assert [s.value for s in out if s is not None] == [10.0, 10.75]


def test_a_channel_never_read_goes_stale_with_no_value_and_no_time():
    c = chan(stale_ms=100.0)
    assert c.ingest([], tick=0) is None
    s = c.ingest([], tick=101)
    assert (s.quality, s.value, s.tick, s.t_ns) == (Quality.STALE, None, 101, 0)


def test_deadband_holds_small_changes_back():
    c = chan(deadband=0.5)
    values = [10.0, 10.2, 10.4, 10.6, 10.7, 9.9, 12.0]
    out = [c.ingest([R(v, i)], tick=i) for i, v in enumerate(values)]
    published = [s.value for s in out if s is not None]
    assert published == [10.0, 10.6, 9.9, 12.0]   # changes > 0.5 from the last published


def test_decimation_keeps_every_nth_across_releases():
    c = chan(decimate=3)
    kept = []
    for k in range(4):                               # readings 0..9 over uneven releases
        chunk = [R(float(v), v) for v in [[0, 1], [2, 3, 4, 5], [6], [7, 8, 9]][k]]
        s = c.ingest(chunk, tick=10 * k + 10)
        if s is not None:
            kept.append(s.value)
    # kept: the 3rd, 6th, 9th samples (2, 5, 8); a release publishes its latest kept one,
    # and the first release has none yet
    assert kept == [5.0, 8.0]


@settings(max_examples=150, deadline=None)
@given(st.lists(raw_values, min_size=1, max_size=60), cuts, st.integers(1, 5))
def test_release_publishes_what_a_reading_by_reading_model_says(raws, cut_points, d):
    """Any split of a stream into releases: each release publishes its latest event, where
    an event is a kept (every d-th in-range) value or a refused value (OUT_OF_RANGE, or
    INVALID without a value for NaN and infinities), whichever came last; failures alone
    give COMM_ERROR. The model walks the readings one by one."""
    c = chan(valid_min=-100.0, valid_max=100.0, decimate=d, stale_ms=1e9)
    bounds = sorted({0, len(raws), *[k for k in cut_points if k < len(raws)]})
    in_range_seen = 0
    last_published = None
    for a, b in zip(bounds, bounds[1:], strict=False):
        chunk = [R(v, i) for i, v in enumerate(raws[a:b], start=a)]
        event = None
        for r in chunk:
            if r.raw is None:
                continue
            if math.isfinite(r.raw) and -100.0 <= r.raw <= 100.0:
                in_range_seen += 1
                if in_range_seen % d == 0:
                    event = (Quality.GOOD, r.raw, r.tick, None)
            else:
                quality, value, reason = expected_refusal(r.raw)
                event = (quality, value, r.tick, reason)
        if event is None and all(r.raw is None for r in chunk):
            event = (Quality.COMM_ERROR, None, chunk[-1].tick, None)
        if event is not None and last_published is not None and \
                event[0] == last_published[0] and event[0] in (Quality.COMM_ERROR,
                                                               Quality.INVALID):
            event = None                             # bad news once per transition
        s = c.ingest(chunk, tick=b + 100)
        if event is None:
            assert s is None
            continue
        assert (s.quality, s.tick, s.reason) == (event[0], event[2], event[3])
        if event[0] != Quality.COMM_ERROR:
            assert s.value == event[1]
        if s.quality == Quality.GOOD:
            assert math.isfinite(s.value)
        last_published = event


@settings(max_examples=150, deadline=None)
@given(st.lists(raw_values, min_size=1, max_size=40), cuts,
       st.sampled_from([(-100.0, 100.0), (-math.inf, math.inf)]))
def test_unfiltered_walk_back_equals_the_full_path(raws, cut_points, valid):
    """The no-filter shortcut (walk back from the last reading) gives what the full path
    gives with a filter that changes nothing (a one-sample moving average), and so do
    the walk over the device's poll records and the sampler's path (`ingest_polls`,
    which takes a newest value in range straight). With or without a valid range, a
    NaN or an infinity is never published GOOD on any of these paths."""
    from edge.acquisition.channel import PollReadings

    lo, hi = valid
    plain = chan(valid_min=lo, valid_max=hi, stale_ms=1e9)
    polled = chan(valid_min=lo, valid_max=hi, stale_ms=1e9)
    walked = chan(valid_min=lo, valid_max=hi, stale_ms=1e9)
    full = chan(valid_min=lo, valid_max=hi, stale_ms=1e9,
                filter=FilterSpec("moving_average", window=1))
    name = polled.cfg.name
    bounds = sorted({0, len(raws), *[k for k in cut_points if k < len(raws)]})
    for a, b in zip(bounds, bounds[1:], strict=False):
        chunk = [R(v, i) for i, v in enumerate(raws[a:b], start=a)]
        records = [(r.tick, r.t_ns, {name: r.raw}, None if r.raw is not None else "timeout",
                    None) for r in chunk]
        expected = full.ingest(chunk, tick=b + 100)
        assert plain.ingest(chunk, tick=b + 100) == expected
        assert polled.ingest_polls(records, tick=b + 100) == expected
        assert walked.ingest(PollReadings(records, name), tick=b + 100) == expected
        newest = next((r.raw for r in reversed(chunk) if r.raw is not None), None)
        if newest is not None and not math.isfinite(newest):
            # the newest reading decides a release without a filter: INVALID, no value
            # (nothing when the last publication already said INVALID)
            if expected is None:
                assert plain._last_published.quality == Quality.INVALID
            else:
                assert (expected.quality, expected.value) == (Quality.INVALID, None)
                assert expected.reason == expected_refusal(newest)[2]
        if expected is not None and expected.quality == Quality.GOOD:
            assert math.isfinite(expected.value)
    for c in (plain, polled, walked):
        assert c._last_value == full._last_value
        assert c._last_good_tick == full._last_good_tick


def test_out_of_range_readings_do_not_enter_the_filter():
    c = chan(valid_min=0.0, valid_max=100.0, filter=FilterSpec("moving_average", window=2))
    c.ingest([R(10.0, 0)], tick=0)
    assert c.ingest([R(-5000.0, 1)], tick=1).quality == Quality.OUT_OF_RANGE
    assert c.ingest([R(20.0, 2)], tick=2).value == pytest.approx(15.0)


def test_poll_readings_give_each_channel_its_value_refusal_or_failure():
    from edge.acquisition.channel import PollReadings

    records = [(1, 10, {"a": 1.5, "b": 2}, None, None),          # both answered
               (2, 20, {"a": 3.0}, None, {"b": "exception"}),     # b refused by the device
               (3, 30, {"a": None, "b": None}, "timeout", None)]  # the exchange failed
    a, b = PollReadings(records, "a"), PollReadings(records, "b")
    assert list(a) == [Reading(1.5, 1, 10), Reading(3.0, 2, 20), Reading(None, 3, 30, "timeout")]
    assert list(b) == [Reading(2, 1, 10), Reading(None, 2, 20, "exception"),
                       Reading(None, 3, 30, "timeout")]
    assert b[-1] == b[2] and b[1:] == [b[1], b[2]] and len(b) == 3


@pytest.mark.parametrize("raw, reason", [(math.inf, "+inf"), (-math.inf, "-inf"),
                                         (math.nan, "NaN")])
@pytest.mark.parametrize("filtered", [False, True])
def test_a_non_finite_reading_without_a_valid_range_is_invalid_on_every_path(raw, reason,
                                                                           filtered):
    """A float channel with no `valid` range reading +inf (or -inf, NaN): INVALID with a
    reason and no value, on the plain path and on the sampler's poll path; the filter
    state is not poisoned, so the next finite reading is GOOD with its own value."""
    spec = FilterSpec("moving_average", window=1) if filtered else None
    for path in ("ingest", "ingest_polls"):
        c = chan(filter=spec)
        feed = (lambda rs, t, c=c: c.ingest(rs, tick=t)) if path == "ingest" else \
            (lambda rs, t, c=c: c.ingest_polls([(r.tick, r.t_ns, {"t": r.raw}, None, None)
                                                for r in rs], tick=t))
        assert feed([R(1.0, 0)], 0).quality == Quality.GOOD
        s = feed([R(raw, 1)], 1)
        assert (s.quality, s.value, s.reason) == (Quality.INVALID, None, reason), path
        assert s.to_data()["reason"] == reason and s.to_data()["quality"] == "INVALID"
        assert feed([R(raw, 2)], 2) is None                 # once per transition
        s = feed([R(3.0, 3)], 3)
        assert (s.quality, s.value) == (Quality.GOOD, 3.0), path


def test_an_infinite_reading_does_not_trip_a_threshold():
    from edge.acquisition.thresholds import ThresholdMonitor, ThresholdRule

    c = chan()
    mon = ThresholdMonitor(ThresholdRule("hot", "t", above=50.0))
    s = c.ingest_polls([(0, 0, {"t": math.inf}, None, None)], tick=0)
    assert s.quality == Quality.INVALID and mon.evaluate(s) is None and not mon.active
