"""The HTTP API (FastAPI). It validates, records and enqueues; it never imports
an ML runtime."""
