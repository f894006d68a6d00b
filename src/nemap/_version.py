"""The installed package's version (not the format's: that is ``nemap.format.limits.VERSION_STRING``).
Imports nothing of nemap, so that every layer may use it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nemap")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
