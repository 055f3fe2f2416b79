"""HIL rigs: real brokers, device simulators and fault injectors that tests and benches run."""
