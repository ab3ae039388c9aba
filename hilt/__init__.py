"""hilt: hardware-in-the-loop validation of GPU server images."""

__version__ = "0.1.0"
