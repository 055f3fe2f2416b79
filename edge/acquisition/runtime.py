"""Attach the acquisition section to a Runtime: the sampler's LetTask and its pollers."""

from __future__ import annotations

from edge.acquisition.model import AcquisitionConfig
from edge.acquisition.sampler import Sampler


def attach(runtime, section: AcquisitionConfig) -> Sampler:
    """Add the sampler task; device pollers run as services in real time only."""
    bus = runtime.bus
    sampler = Sampler(section, runtime.period_ns, tick_fn=runtime.cycle.tick_reader(),
                      clock_ns=bus._clock_ns, virtual_time=runtime.virtual_time)
    runtime.add_task(sampler.task)
    if sampler.pollers or sampler.usage:
        runtime.add_service(sampler.service)
    runtime.add_stop_hook(sampler.stopped)
    runtime.extra_summary["acquisition"] = sampler.stats
    runtime.acquisition = sampler
    return sampler
