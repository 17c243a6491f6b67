"""STAND-IN for ``cosyvoice.cli`` (see the package docstring)."""
