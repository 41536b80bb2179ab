"""System signals of the serving process: CPU and memory (psutil), GPU use (pynvml, optional)."""

from __future__ import annotations

__all__ = ["system_signals"]


def system_signals() -> dict[str, float]:
    """Process CPU and memory (psutil), and GPU use when pynvml is importable."""
    import psutil

    process = psutil.Process()
    memory = psutil.virtual_memory()
    signals = {
        "process_cpu_percent": float(process.cpu_percent(interval=None)),
        "process_rss_bytes": float(process.memory_info().rss),
        "process_threads": float(process.num_threads()),
        "system_memory_total_bytes": float(memory.total),
        "system_memory_available_bytes": float(memory.available),
        "system_memory_percent": float(memory.percent),
        "system_cpu_percent": float(psutil.cpu_percent(interval=None)),
    }
    signals |= _gpu_signals()
    return signals


def _gpu_signals() -> dict[str, float]:
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:
        return {}
    signals: dict[str, float] = {}
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            use = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            signals[f"gpu_{index}_utilization_percent"] = float(use.gpu)
            signals[f"gpu_{index}_memory_used_bytes"] = float(memory.used)
    except Exception:
        return signals
    finally:
        pynvml.nvmlShutdown()
    return signals
