"""STAND-IN for ``cosyvoice.utils`` (see the package docstring)."""
