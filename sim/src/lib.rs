//! takt-sim: the simulated device set.
