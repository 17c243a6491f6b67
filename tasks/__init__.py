"""Everything the pipeline knows that is not a model: the Celery app, job state,
storage, text and audio. Nothing here imports ``workers`` or an ML runtime."""
