"""HIL rigs: real brokers, device simulators and fault injectors, driven over the real
protocols by tests, benches and (later) scenario runners."""
