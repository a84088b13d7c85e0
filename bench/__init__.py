"""appyard benchmarks: `python -m bench` (see README). Loopback only, bounded loops."""
