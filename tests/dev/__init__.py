"""Tests of reviews/dev and the run/benchmark commands: demo, make run, load benchmarks."""
