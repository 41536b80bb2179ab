"""Pure numerics on arrays: drift tests and distances, data quality, performance metrics.

Nothing here does I/O; every function takes NumPy arrays (or counts) and returns plain results.
"""
