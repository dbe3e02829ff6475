"""What every layer may use and that belongs to none of them: the version, the on-disk cache
(diskcache.py) and host-memory addresses (hostmem.py). It imports nothing of tilewise."""

__version__ = "0.1.0"
