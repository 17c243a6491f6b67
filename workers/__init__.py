"""What runs beside a model: the engines, the once-per-process model loading and
the segment task. ``celery -A chorus.workers.app worker`` starts a synthesis worker."""
