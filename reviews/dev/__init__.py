"""Development and benchmarks: the demo campaign, synthetic pools, benchmark helpers (the floor's dev WSGI
entry, wrk's Lua script, CPU accounting), an embedded Redis."""
