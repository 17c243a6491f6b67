"""The ``chorus`` command and the local stack it starts."""
