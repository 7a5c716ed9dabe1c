"""The engine version. It is part of every cache key: bump it whenever a change alters results,
so that old entries are recomputed instead of misread."""

ENGINE_VERSION = "0.1.0"
