"""Development and benchmarks: the demo campaign, synthetic pools, benchmark helpers, an embedded Redis."""
