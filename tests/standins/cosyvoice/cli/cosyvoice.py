"""STAND-IN for ``cosyvoice.cli.cosyvoice``: ``CosyVoice2`` with the real
constructor and inference signatures. It records every call, keeps reference
speakers in ``frontend.spk2info`` like the real frontend, and yields two chunks
of a deterministic sine per call (length proportional to the text), at 24 kHz.

Behaviours of the real library it imitates on purpose:
* ``inference_*`` with an unknown ``zero_shot_spk_id`` raise KeyError (the real
  frontend indexes ``spk2info``);
* ``inference_instruct2`` with a ``zero_shot_spk_id`` deletes
  ``llm_prompt_speech_token`` from that speaker's ``spk2info`` entry in place,
  as the real ``frontend_instruct2`` does (so a second call fails with KeyError
  unless the caller restores the entry).
"""

from __future__ import annotations

import numpy as np

from cosyvoice.tensor import StandInTensor

SAMPLES_PER_CHAR = 240  # per chunk: 10 ms of audio per character at 24 kHz
TONE_HZ = 330.0


class _FrontEnd:
    def __init__(self) -> None:
        # built-in SFT speakers, as the real model's spk2info.pt provides
        self.spk2info: dict[str, dict] = {"中文女": {"embedding": "sft-0"}, "英文男": {"embedding": "sft-1"}}


class CosyVoice2:
    instances: list[CosyVoice2] = []  # every instance built while the stand-in is imported

    def __init__(self, model_dir, load_jit=False, load_trt=False, load_vllm=False, fp16=False, trt_concurrent=1):
        self.model_dir = model_dir
        self.init_args = {
            "model_dir": model_dir, "load_jit": load_jit, "load_trt": load_trt,
            "load_vllm": load_vllm, "fp16": fp16, "trt_concurrent": trt_concurrent,
        }
        self.sample_rate = 24000
        self.frontend = _FrontEnd()
        self.add_calls = 0
        self.calls: list[tuple[str, dict]] = []  # (method name, its arguments)
        CosyVoice2.instances.append(self)

    def list_available_spks(self):
        return list(self.frontend.spk2info.keys())  # like the real one: every key, registered ones too

    def add_zero_shot_spk(self, prompt_text, prompt_speech_16k, zero_shot_spk_id):
        self.add_calls += 1
        assert zero_shot_spk_id != "", "do not use empty zero_shot_spk_id"
        if not prompt_text:
            return False
        self.frontend.spk2info[zero_shot_spk_id] = {
            "prompt_text": prompt_text,
            "prompt_samples": int(prompt_speech_16k.shape[-1]),
            "llm_prompt_speech_token": "tokens",
            "llm_prompt_speech_token_len": 1,
            "llm_embedding": "embedding",
            "flow_embedding": "embedding",
        }
        return True

    # -- inference ------------------------------------------------------------------

    def _speech(self, text: str):
        n = SAMPLES_PER_CHAR * max(1, len(text))
        t = np.arange(2 * n) / self.sample_rate
        wave = (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
        for chunk in (wave[:n], wave[n:]):
            yield {"tts_speech": StandInTensor(chunk[None, :])}

    def inference_sft(self, tts_text, spk_id, stream=False, speed=1.0, text_frontend=True):
        self.calls.append(("inference_sft", {"tts_text": tts_text, "spk_id": spk_id, "stream": stream, "speed": speed}))
        if "embedding" not in self.frontend.spk2info[spk_id]:
            raise KeyError("embedding")
        yield from self._speech(tts_text)

    def inference_zero_shot(self, tts_text, prompt_text, prompt_speech_16k, zero_shot_spk_id="", stream=False, speed=1.0, text_frontend=True):
        self.calls.append(("inference_zero_shot", {
            "tts_text": tts_text, "prompt_text": prompt_text, "prompt_speech_16k": prompt_speech_16k,
            "zero_shot_spk_id": zero_shot_spk_id, "stream": stream, "speed": speed,
        }))
        if zero_shot_spk_id:
            entry = self.frontend.spk2info[zero_shot_spk_id]  # KeyError like the real frontend
            entry["llm_prompt_speech_token"]  # the LLM needs the prompt tokens
        yield from self._speech(tts_text)

    def inference_instruct2(self, tts_text, instruct_text, prompt_speech_16k, zero_shot_spk_id="", stream=False, speed=1.0, text_frontend=True):
        self.calls.append(("inference_instruct2", {
            "tts_text": tts_text, "instruct_text": instruct_text, "prompt_speech_16k": prompt_speech_16k,
            "zero_shot_spk_id": zero_shot_spk_id, "stream": stream, "speed": speed,
        }))
        if zero_shot_spk_id:
            entry = self.frontend.spk2info[zero_shot_spk_id]  # the entry itself, not a copy
            del entry["llm_prompt_speech_token"]
            del entry["llm_prompt_speech_token_len"]
        yield from self._speech(tts_text)
