"""The plan's cache keys, made fast, are the same bytes as ever: a changed
key would miss every segment already in the audio cache."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from chorus.tasks.text.plan import segment_key, segment_keys, synthesis_settings
from tests.conftest import JOE, JOE_MODEL


def key_as_first_written(spoken: str, namespace: str) -> str:
    """Joe's key for a segment at normal speed, computed the first, plain way."""
    material = [namespace, spoken, JOE.id, JOE_MODEL.name, JOE_MODEL.version, synthesis_settings(JOE_MODEL)]
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(max_size=20))
def test_fast_keys_equal_the_keys_as_first_written(spoken: str, namespace: str) -> None:
    expected = key_as_first_written(spoken, namespace)
    assert segment_keys(JOE, JOE_MODEL, namespace)(spoken) == expected
    assert segment_key(spoken, JOE, JOE_MODEL, namespace) == expected
