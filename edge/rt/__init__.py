"""The runtime: native binding, executor (LET), clocks, bus, bridge, journal, stats."""
