"""What the benchmark ran on: numbers mean little without the machine and library versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

LIBRARIES = ("duckdb", "shapely", "geopandas", "pandas", "pyarrow", "numpy", "dagster")


def describe_machine() -> dict[str, str]:
    """CPU, cores, memory, OS, Python and library versions, as report-ready strings."""
    return {
        "CPU": _cpuinfo_field("model name") or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "RAM": _memory(),
        "OS": f"{_os_name()} (kernel {platform.release()})",
        "Python": platform.python_version(),
        **{name: _version(name) for name in LIBRARIES},
    }


def _cpuinfo_field(name: str) -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
