"""Pure numerics on arrays and summaries: drift tests and distances, data quality, performance
metrics, and the two-arm statistics of experiments and rollouts.

Nothing here does I/O; every function takes NumPy arrays, counts or per-arm summaries and
returns plain results.
"""
