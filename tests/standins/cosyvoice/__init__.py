"""STAND-IN for FunAudioLLM CosyVoice — imitates its Python API for contract tests; it synthesises no speech.

Only ``tests/test_cosyvoice.py`` puts this on ``sys.path``. It uses numpy
instead of torch; tensors are ``cosyvoice.tensor.StandInTensor`` objects that
answer ``.cpu()``, ``.numpy()``, ``.shape`` and ``.squeeze()`` like torch's.
"""

STAND_IN = True
