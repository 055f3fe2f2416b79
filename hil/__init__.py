"""HIL rigs: device simulators and fault injectors driven over the real protocols."""
