from fastapi import APIRouter

from api.deps import RegistryDep
from api.schemas import VoiceInfo

router = APIRouter(prefix="/v1/voices", tags=["voices"])


@router.get("", response_model=list[VoiceInfo])
def list_voices(registry: RegistryDep) -> list[VoiceInfo]:
    return [
        VoiceInfo(id=v.id, engine=v.engine, model=v.model, language=v.language, sample_rate=v.sample_rate)
        for v in registry.voices.values()
    ]
