"""Histograms against numpy; the state ring under the real-time thread."""

import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.rt.native import Cycle, drive_sim_block, require_native

ffi, lib = require_native()


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(0, 2**35), min_size=1, max_size=400),
       q=st.sampled_from([0.5, 0.9, 0.99, 0.999]))
def test_quantiles_match_nearest_rank_within_bucket_precision(values, q):
    h = ffi.gc(lib.hist_alloc(), lib.hist_free)
    for v in values:
        lib.hist_record(h, v)
    expected = float(np.percentile(values, 100 * q, method="inverted_cdf"))
    got = lib.hist_quantile(h, q)
    assert abs(got - expected) <= 0.002 * expected + 0.5     # exact below 1024 ns
    assert lib.hist_count(h) == len(values)
    assert lib.hist_max(h) == max(values) and lib.hist_min(h) == min(values)


def test_state_ring_delivers_every_tick_in_order_under_the_real_thread():
    cycle = Cycle(200_000, 2, state_capacity=256)     # 5 kHz, small ring: drained often
    cycle.add_block(drive_sim_block([0.0, 0.0]))
    cycle.start()
    chunks = []
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        chunks.append(cycle.pop_states())
        time.sleep(0.002)
    cycle.stop()
    chunks.append(cycle.pop_states())
    ticks = np.concatenate(chunks)["tick"]
    st_ = cycle.stats()
    assert st_.state_drops == 0
    assert len(ticks) == st_.ticks > 1000
    assert np.array_equal(ticks, np.arange(len(ticks)))
