"""The board's `acquisition:` section on a Runtime: the sampler's LetTask and its pollers,
offered to other sections as `acquisition`."""

from __future__ import annotations

import dataclasses

from edge.acquisition.config import parse_acquisition
from edge.acquisition.model import AcquisitionConfig
from edge.acquisition.sampler import CHANNEL_PREFIX, Sampler
from edge.sections import Section


def attach(runtime, section: AcquisitionConfig) -> Sampler:
    """Add the sampler task; device pollers run as services in real time only."""
    bus = runtime.bus
    sampler = Sampler(section, runtime.period_ns, tick_fn=runtime.cycle.tick_reader(),
                      clock_ns=bus._clock_ns, virtual_time=runtime.virtual_time)
    runtime.add_task(sampler.task)
    if sampler.pollers or sampler.usage:
        runtime.add_service(sampler.service, "acquisition pollers")
    runtime.add_stop_hook(sampler.stopped)
    runtime.add_summary("acquisition", sampler.stats)
    runtime.add_component("acquisition", sampler)
    runtime.add_topics(CHANNEL_PREFIX + "#")
    return sampler


def for_check(section: AcquisitionConfig) -> AcquisitionConfig:
    """`edge check` builds no usage counters: they count a power cycle when built."""
    return dataclasses.replace(section, usage=None)


SECTIONS = (Section("acquisition", parse_acquisition, attach, for_check=for_check),)
