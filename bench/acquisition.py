"""`edge bench acquisition`: Modbus TCP polling through the sampler vs a bare pymodbus loop.

One pymodbus server runs in its own process (hil.slave_sim). In the same run, on
uvloop: (1) the anchor, a bare AsyncModbusTcpClient reading the same registers back to
back; (2) the sampler: a DevicePoller polling back to back while the native cycle runs
and the LetTask publishes every channel each task period (5 ms by default); (3)
end-to-end latency: a second client writes a new value into the register, and the time
until that value is delivered on the bus is recorded (from just before the write request
is sent, so the write's own round trip is included: an upper bound).

(1) and (2) alternate over several rounds, and each sampler run is compared with the
bare runs that open its round and the next: on a shared machine the speed drifts by more, from
one run to the next, than the difference being measured. Each round also runs two
references: the bare loop with an idle native cycle beside it (what the cycle alone
costs), and the bare loop with no per-request timeout in pymodbus (the sampler keeps its
TCP timeouts with one watchdog per connection; this shows how much of its speed that is).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import subprocess
import sys
import time
from typing import Any

import numpy as np

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError

N_REGISTERS = 8          # four float32 channels in one block: one request per poll


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="measurement time per contender and round (default 1)")
    parser.add_argument("--period-us", type=int, default=1000,
                        help="cycle period for the sampler run (default 1000)")
    parser.add_argument("--changes", type=int, default=200,
                        help="register changes timed for the latency figure (default 200)")
    parser.add_argument("--rounds", type=int, default=20,
                        help="rounds of bare, sampler, bare with the cycle, bare without a "
                             "request timeout (and a last bare run); the ratio is the median "
                             "of the rounds' ratios (default 20)")
    parser.add_argument("--busy-tail-us", type=float, default=0.0,
                        help="native cycle busy-wait tail during the sampler runs (default 0: "
                             "the cycle sleeps; its CPU cost is the jitter bench's subject)")
    parser.add_argument("--task-ms", type=float, default=5.0,
                        help="sampler LetTask period = deadline (default 5)")
    parser.add_argument("--poll-ms", type=float, default=0.0,
                        help="sampler poll period during the latency run (default 0: "
                             "back to back)")


@contextlib.contextmanager
def _server_process():
    """The Modbus rig (`python -m hil.slave_sim`, from wherever this interpreter finds the
    hil package: a checkout or an installed wheel) in a subprocess; yields its TCP port."""
    proc = subprocess.Popen([sys.executable, "-m", "hil.slave_sim", "--port", "0", "--uvloop"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise EdgeError("the Modbus simulator did not start")
        yield int(line)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()


async def _raw_loop(port: int, seconds: float, cycle_period_ns: int = 0,
                    request_timeout: bool = True) -> dict[str, float]:
    """The anchor; with cycle_period_ns, an idle native cycle ticks beside it (same
    wake-ups and CPU states as the sampler run, without the sampler); without
    request_timeout, pymodbus arms no timer per request (the loop would hang on a dead
    device: a reference for the sampler's watchdog, not a usable loop)."""
    from pymodbus.client import AsyncModbusTcpClient

    from edge.rt.native import Cycle

    cycle = Cycle(cycle_period_ns, 0, busy_tail_ns=0) if cycle_period_ns else None

    client = AsyncModbusTcpClient("127.0.0.1", port=port,
                                  timeout=1.0 if request_timeout else None, retries=0,
                                  reconnect_delay=0)
    if not await client.connect():
        raise EdgeError("cannot connect to the Modbus simulator")
    if cycle is not None:
        cycle.start()
    try:
        n = 0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        end = t0 + seconds
        while time.perf_counter() < end:
            rsp = await client.read_holding_registers(0, count=N_REGISTERS, device_id=1)
            if rsp.isError():
                raise EdgeError(f"Modbus simulator answered {rsp}")
            n += 1
        dt = time.perf_counter() - t0
        return {"polls_per_s": n / dt, "cpu_us_per_poll": (time.process_time() - cpu0) / n * 1e6}
    finally:
        client.close()
        if cycle is not None:
            cycle.stop()


def _sampler_setup(port: int, period_ns: int, poll_ms: float, task_ms: float,
                   busy_tail_ns: int = 0):
    from edge.acquisition.channel import ChannelConfig
    from edge.acquisition.model import AcquisitionConfig, DeviceConfig, TaskConfig
    from edge.acquisition.sampler import Sampler
    from edge.acquisition.sources.modbus import ModbusLink
    from edge.rt.bus import Bus
    from edge.rt.executor import Executor
    from edge.rt.native import Cycle

    chans = [ChannelConfig(name=f"r{i}", device="plc", period_ms=task_ms,
                           source={"table": "holding", "address": 2 * i, "type": "float32"})
             for i in range(N_REGISTERS // 2)]
    dev = DeviceConfig("plc", "modbus_tcp", period_ms=poll_ms,
                       link=ModbusLink("tcp", port=port, timeout_s=1.0))
    cfg = AcquisitionConfig(devices=[dev], channels=chans,
                            task=TaskConfig(period_ms=task_ms, deadline_ms=task_ms))
    cycle = Cycle(period_ns, 0, busy_tail_ns=busy_tail_ns)
    bus = Bus()
    ex = Executor(cycle, bus)
    sampler = Sampler(cfg, period_ns, tick_fn=cycle.tick_reader())
    ex.add_task(sampler.task)
    return sampler, ex, bus


async def _sampler_rate(port: int, period_ns: int, seconds: float, task_ms: float,
                        busy_tail_ns: int) -> dict[str, Any]:
    sampler, ex, bus = _sampler_setup(port, period_ns, 0.0, task_ms, busy_tail_ns)
    poller = sampler.pollers["plc"]
    published = []
    bus.subscribe("acq/r0", callback=published.append)
    stop = asyncio.Event()
    async with sampler.service():
        runner = asyncio.create_task(ex.run(None, stop))
        await poller.wait_attempts(1, 5.0)        # connected and polling
        start_polls, t0, cpu0 = poller.polls, time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        polls, dt = poller.polls - start_polls, time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stop.set()
        await runner
    if sum(poller.errors.values()):
        raise EdgeError(f"the sampler met device errors during the benchmark: {poller.errors}")
    return {"polls_per_s": polls / dt, "published": len(published),
            "cpu_us_per_poll": cpu / max(polls, 1) * 1e6,
            "deadline_misses": ex.deadline_misses, "ticks": ex.processed_ticks}


async def _latency(port: int, period_ns: int, changes: int, poll_ms: float,
                   task_ms: float, busy_tail_ns: int) -> dict[str, Any]:
    from pymodbus.client import AsyncModbusTcpClient

    from edge.acquisition.codec import encode

    sampler, ex, bus = _sampler_setup(port, period_ns, poll_ms, task_ms, busy_tail_ns)
    arrived: dict[float, int] = {}

    def on_value(msg) -> None:
        v = msg.data["value"]
        if v is not None and v not in arrived:
            arrived[v] = time.time_ns()

    bus.subscribe("acq/r0", callback=on_value)
    writer = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0,
                                  reconnect_delay=0)
    if not await writer.connect():
        raise EdgeError("cannot connect to the Modbus simulator")
    stop = asyncio.Event()
    lat_ns: list[int] = []
    lost = 0
    try:
        async with sampler.service():
            runner = asyncio.create_task(ex.run(None, stop))
            await sampler.pollers["plc"].wait_attempts(1, 5.0)
            for k in range(1, changes + 1):
                value = float(k)
                t0 = time.time_ns()
                await writer.write_registers(0, encode(value, "float32"), device_id=1)
                deadline = time.perf_counter() + 1.0
                while value not in arrived and time.perf_counter() < deadline:
                    await asyncio.sleep(0.0002)
                if value in arrived:
                    lat_ns.append(arrived[value] - t0)
                else:
                    lost += 1
                await asyncio.sleep(0.003)         # let the next change start apart
            stop.set()
            await runner
    finally:
        writer.close()
    a = np.array(lat_ns, float) / 1e3
    if not len(a):
        raise EdgeError("no register change reached the bus")
    return {"samples": len(a), "lost": lost, "deadline_misses": ex.deadline_misses,
            "p50_us": float(np.percentile(a, 50)),
            "p99_us": float(np.percentile(a, 99)), "max_us": float(a.max()),
            "min_us": float(a.min()), "poll_ms": poll_ms, "period_us": period_ns / 1e3,
            "task_ms": task_ms}


def run(args: argparse.Namespace) -> BenchReport:
    import uvloop

    if not 0 < args.seconds <= 600:
        raise EdgeError(f"--seconds must be in (0, 600], got {args.seconds}")
    if not 100 <= args.period_us <= 100_000:
        raise EdgeError(f"--period-us must be in [100, 100000], got {args.period_us}")
    if args.changes < 1:
        raise EdgeError("--changes must be at least 1")
    if not args.period_us / 1e3 <= args.task_ms <= 1000:
        raise EdgeError("--task-ms must be between one cycle period and 1000 ms")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("edge.rt.executor").setLevel(logging.ERROR)   # misses are counted
    period_ns = args.period_us * 1000
    if not 1 <= args.rounds <= 50:
        raise EdgeError("--rounds must be between 1 and 50")
    tail_ns = int(args.busy_tail_us * 1000)
    raws, samplers, raws_cycle, raws_untimed = [], [], [], []
    with _server_process() as port:
        # bare, sampler, then the two references; a last bare run closes the series: every
        # run lies between two bare runs, which are its reference
        for _ in range(args.rounds):
            raws.append(uvloop.run(_raw_loop(port, args.seconds)))
            samplers.append(uvloop.run(_sampler_rate(port, period_ns, args.seconds,
                                                     args.task_ms, tail_ns)))
            raws_cycle.append(uvloop.run(_raw_loop(port, args.seconds, period_ns)))
            raws_untimed.append(uvloop.run(_raw_loop(port, args.seconds,
                                                     request_timeout=False)))
        raws.append(uvloop.run(_raw_loop(port, args.seconds)))
        latency = uvloop.run(_latency(port, period_ns, args.changes, args.poll_ms,
                                      args.task_ms, tail_ns))
    raw_rates = [r["polls_per_s"] for r in raws]
    sampler_rates = [x["polls_per_s"] for x in samplers]
    cycle_rates = [r["polls_per_s"] for r in raws_cycle]
    untimed_rates = [r["polls_per_s"] for r in raws_untimed]

    def against_bare(rates: list[float]) -> list[float]:
        # The machine's speed drifts by more than the difference measured, within
        # seconds: each run is judged against the bare runs that open its round and the next.
        return [x / ((raw_rates[i] + raw_rates[i + 1]) / 2) for i, x in enumerate(rates)]

    round_ratios = against_bare(sampler_rates)
    cycle_ratios, untimed_ratios = against_bare(cycle_rates), against_bare(untimed_rates)
    ratio = float(np.median(round_ratios))
    q1, q3 = (float(q) for q in np.percentile(round_ratios, [25, 75]))
    ratio_stderr = float(np.std(round_ratios, ddof=1) / np.sqrt(len(round_ratios))) \
        if len(round_ratios) > 1 else float("nan")
    raw_med = float(np.median(raw_rates))
    sampler = dict(samplers[int(np.argsort(sampler_rates)[len(samplers) // 2])])
    sampler["polls_per_s_runs"] = sampler_rates
    sampler["deadline_misses"] = sum(x["deadline_misses"] for x in samplers)
    sampler["ticks"] = sum(x["ticks"] for x in samplers)
    sampler["cpu_us_per_poll"] = float(np.median([x["cpu_us_per_poll"] for x in samplers]))
    raw_cpu = float(np.median([r["cpu_us_per_poll"] for r in raws]))
    raw_cycle_med = float(np.median(cycle_rates))
    data = {
        "sampler_polls_per_s": sampler["polls_per_s"],
        "raw_polls_per_s": raw_med,
        "ratio": ratio,
        "ratio_method": "median over rounds of sampler / mean of the bare runs before and "
                        "after it",
        "round_ratios": round_ratios,
        "ratio_quartiles": [q1, q3],
        "ratio_mean": float(np.mean(round_ratios)),
        "ratio_stderr": ratio_stderr,
        "idle_cycle_ratio": float(np.median(cycle_ratios)),
        "untimed_raw_ratio": float(np.median(untimed_ratios)),
        "untimed_raw_polls_per_s_runs": untimed_rates,
        "sampler_vs_untimed_raw_ratio": float(np.median(
            [s / u for s, u in zip(sampler_rates, untimed_rates, strict=True)])),
        "ratio_of_medians": sampler["polls_per_s"] / raw_med,
        "raw_polls_per_s_runs": raw_rates,
        "raw_with_cycle_polls_per_s": raw_cycle_med,
        "raw_with_cycle_polls_per_s_runs": cycle_rates,
        "raw_cpu_us_per_poll": raw_cpu,
        "sampler_cpu_us_per_poll": sampler["cpu_us_per_poll"],
        "rounds": args.rounds,
        "busy_tail_us": args.busy_tail_us,
        "registers_per_poll": N_REGISTERS,
        "sampler": sampler,
        "latency_register_to_bus": latency,
        "seconds": args.seconds,
        "machine": machine_facts(),
    }
    poll = f"every {args.poll_ms:g} ms" if args.poll_ms else "back to back"
    lines = [
        f"Modbus TCP polling, {N_REGISTERS} holding registers per request, "
        f"{args.seconds:g} s each, server in its own process ({data['machine']['cpus']} CPUs)",
        f"{'bare pymodbus loop (anchor)':<34}{raw_med:>10.0f} polls/s (median; runs "
        f"{', '.join(f'{r:.0f}' for r in raw_rates)})",
        f"{'through the sampler':<34}{sampler['polls_per_s']:>10.0f} polls/s (median; runs "
        f"{', '.join(f'{r:.0f}' for r in sampler_rates)})",
        f"{'':<34}cycle {args.period_us} us (busy tail {args.busy_tail_us:g} us), task "
        f"{args.task_ms:g} ms, {sampler['ticks']} ticks, {sampler['deadline_misses']} "
        f"deadline misses",
        f"{'bare loop, idle native cycle beside':<34}{raw_cycle_med:>10.0f} polls/s (median; "
        f"runs {', '.join(f'{r:.0f}' for r in cycle_rates)})",
        f"ratio sampler / bare = {ratio:.3f} (target >= 0.9): median of {len(round_ratios)} "
        f"rounds, each sampler run against the bare runs before and after it; quartiles "
        f"{q1:.3f}..{q3:.3f}, mean {data['ratio_mean']:.3f} +- {ratio_stderr:.3f} (standard "
        f"error); ratio of the medians {data['ratio_of_medians']:.3f}",
        f"{'':<34}rounds: {', '.join(f'{r:.2f}' for r in round_ratios)}",
        f"idle native cycle beside the bare loop / bare = {data['idle_cycle_ratio']:.3f} "
        f"(median of the rounds)",
        f"bare loop without pymodbus' per-request timeout / bare = "
        f"{data['untimed_raw_ratio']:.3f}; sampler / that loop = "
        f"{data['sampler_vs_untimed_raw_ratio']:.3f} (the sampler keeps TCP timeouts with "
        f"one watchdog per connection instead)",
        f"CPU of this process per poll: bare {raw_cpu:.0f} us, sampler "
        f"{sampler['cpu_us_per_poll']:.0f} us (cycle thread, executor and LetTask included)",
        f"register change -> bus: p50 {latency['p50_us']:.0f} us, "
        f"p99 {latency['p99_us']:.0f} us, max {latency['max_us']:.0f} us over "
        f"{latency['samples']} changes ({latency['lost']} lost, "
        f"{latency['deadline_misses']} deadline misses; poll {poll})",
    ]
    return BenchReport("\n".join(lines), data)
