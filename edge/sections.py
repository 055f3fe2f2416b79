"""The board sections this build of edge knows: one registry for `edge check` and `edge run`.

Each package declares its sections once, beside their implementation, as `Section`
objects in a module-level `SECTIONS` tuple (parser, builder, what they need). This
module lists where each one is declared, in the order they are parsed and built, and
loads a declaration only when a board uses it: a package left out of a build makes its
section "not supported by this build", not an import error. How a board becomes a
controller is described in docs/composition.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.config import Board, Node
    from edge.rt.runtime import Runtime

# board section -> the module declaring it, in parse and build order (a section may read
# the sections before it: safety reads the motion section's arm)
DECLARED_IN: dict[str, str] = {
    "cycle": "edge.config",
    "axes": "edge.config",
    "motion": "edge.motion.runtime",
    "demo_motion": "edge.motion.demo",
    "safety": "edge.motion.safety_monitor",
    "program": "edge.motion.program",
    "logic": "edge.logic.runtime",
    "acquisition": "edge.acquisition.runtime",
    "bus": "edge.rt.bus_config",
    "mqtt": "edge.rt.bus_config",
    "record": "edge.rt.recorder",      # last: it records what every other section does
}


@dataclass(frozen=True)
class Section:
    """One board section: how it is parsed and what it adds to a runtime.

    parse(node, board) -> the section's settings (raises ConfigError with file/line/field).
    build(runtime, settings): adds blocks to stages, tasks, services and components; reads
        other sections' components only in a connect hook (`runtime.on_connect`).
    needs: sections that must be on the board too (and come before it in DECLARED_IN).
    core_options(settings) -> fields of edge.rt.runtime.CoreOptions this section sets on
        the cycle or bus before any section is built (the e-stop category, bus queues).
    from_option(value, board) -> settings from a command-line value (`edge run --mqtt URL`).
    for_check(settings) -> the settings `edge check` builds instead: nothing durable
        written (the acquisition usage counters count a power cycle when built).
    """

    name: str
    parse: Callable[[Node, Board], Any]
    build: Callable[[Runtime, Any], Any] | None = None     # None: the runtime core reads it
    needs: tuple[str, ...] = ()
    core_options: Callable[[Any], dict[str, Any]] | None = None
    from_option: Callable[[str, Board], Any] | None = None
    for_check: Callable[[Any], Any] | None = None


def declaration(name: str, node: Node | None = None) -> Section:
    """The declaration of section `name`; ConfigError (pointing at `node` when given) when
    its package is not part of this build."""
    module_name = DECLARED_IN[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"section '{name}' is not supported by this build of edge",
                              file=node.file if node else None,
                              line=node.line if node else None, field=name) from None
        raise
    for section in module.SECTIONS:
        if section.name == name:
            return section
    raise LookupError(f"{module_name} declares no section {name!r} (edge.sections.DECLARED_IN)")


def needs_problem(name: str, present: Any) -> str | None:
    """Why section `name` cannot be used with the sections `present` (None when it can)."""
    for need in declaration(name).needs:
        if need not in present:
            return f"the {name} section needs a {need} section"
    return None
