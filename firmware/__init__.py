"""sitegate: firmware for the RFID badge reader at the gate of a Belgian work site."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sitegate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
