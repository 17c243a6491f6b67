"""The caller's webhook secret: made anew, and shown only in that answer.

Every webhook of the key's jobs is signed with it (``X-Chorus-Signature``,
``tasks/webhooks.py``). There is no route that reads it back.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from chorus.api.deps import CallerDep
from chorus.tasks import clients

router = APIRouter(prefix="/v1", tags=["webhooks"])


class WebhookSecret(BaseModel):
    key_id: str = Field(description="The API key the secret belongs to")
    secret: str = Field(description="HMAC-SHA256 key of X-Chorus-Signature (its UTF-8 bytes); shown only now")


@router.post(
    "/webhook-secret",
    response_model=WebhookSecret,
    summary="Replace this API key's webhook secret and show the new one (once)",
)
def rotate_webhook_secret(caller: CallerDep) -> WebhookSecret:
    """Signs every delivery attempt from now on, pending ones included; the old
    secret signs nothing more."""
    return WebhookSecret(key_id=caller.id, secret=clients.keys().rotate_webhook_secret(caller.id))
