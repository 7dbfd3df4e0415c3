"""samgap_lib: measure and teach the gap between SAM2 (geometric prompts) and SAM3 (concepts).

The library behind the executable paper "The SAM2-to-SAM3 gap". Data flows one way:
``data -> prompts -> models -> metrics -> experiments``; chapters call into it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("samgap")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
