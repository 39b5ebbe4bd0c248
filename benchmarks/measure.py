"""What the benchmark scripts measure besides wall time (imported from the scripts' folder)."""

import resource


def peak_memory_gb() -> float:
    """Peak resident set size of this process so far (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
