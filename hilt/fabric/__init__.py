"""The GPU fabric: pure parsers of real tool output, platform profiles, and comparisons between them.

Parsers never do I/O; `hilt.fabric.snapshot` is the thin edge that reads a node.
"""

from hilt.errors import ParseError

__all__ = ["ParseError"]
