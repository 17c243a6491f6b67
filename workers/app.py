"""The Celery app as a synthesis worker sees it: the shared app plus the segment
task and the once-per-process model loading.

    CHORUS_MODEL=piper-joe celery -A chorus.workers.app worker -Q chorus.synth.piper-joe

``chorus worker --model NAME`` runs exactly that with the right options.
"""

from chorus.tasks.app import app
from chorus.workers import model as _model  # noqa: F401  (connects worker_process_init)
from chorus.workers import synthesize as _synthesize  # noqa: F401  (registers the tasks)

__all__ = ["app"]
