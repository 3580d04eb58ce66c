"""Engines of python -m adain.stylize_dataset beyond one host (ray_engine: Ray Data)."""

# A local Ray started for one run (--ray without an address) is one machine: Ray binds it to
# 127.0.0.1 only in its one-machine mode (named for macOS), and reads these when it is imported.
LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
