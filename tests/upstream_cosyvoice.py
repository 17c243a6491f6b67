"""Upstream CosyVoice's own code for tests and benchmarks: where it is, how to
import it, and a tiny, randomly initialised CosyVoice2 model directory built
from upstream's own classes.

Nothing here is upstream's code and nothing of upstream's is copied: the
checkout stays where it is (``CHORUS_COSYVOICE_SOURCE``, default
``../shared/vendor/cosyvoice-ace7c47`` beside the repository) and goes on
``sys.path`` with its ``third_party/Matcha-TTS``. Where ``import torchaudio``
fails (no CPU build exists for torch 2.13), ``tests/standins/torchaudio_shim``
goes first on the path: the only stand-in, and named as one.

The tiny model (about 64 MB, a few seconds to build) follows the layout of
CosyVoice2-0.5B: ``cosyvoice2.yaml`` naming upstream's classes, with the sizes
that upstream hard-codes kept (512-channel flow encoder, 80 mel bins,
192-dimensional speaker embeddings, 24 kHz, 6561 speech tokens) and the rest
shrunk; ``CosyVoice-BlankEN/`` with a small Qwen2 (transformers' own classes)
and a byte-level BPE tokenizer trained here on a few sentences; ``llm.pt``,
``flow.pt``, ``hift.pt`` from the randomly initialised modules; and two ONNX
models with the inputs and outputs of CampPlus and the v2 speech tokenizer.
Its audio is noise, but every call runs upstream's real code.

Importable without torch: heavy imports happen inside the functions.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ENV = "CHORUS_COSYVOICE_SOURCE"
DEFAULT_SOURCE = ROOT.parent / "shared" / "vendor" / "cosyvoice-ace7c47"
SHIM = Path(__file__).resolve().parent / "standins" / "torchaudio_shim"
COSY_VENV_PYTHON = ROOT / ".venv-cosyvoice" / "bin" / "python"

SAMPLE_RATE = 24000
SPEECH_TOKENS = 6561  # CosyVoice2's speech vocabulary (llm, flow and the tokenizer agree on it)
QWEN_VOCAB = 448  # at least the tokenizer's size plus the 19 special tokens upstream adds
CORPUS = [
    "The lighthouse keeper climbed the stairs every evening at dusk.",
    "He wound the clockwork, trimmed the wick and watched the ships pass by.",
    "Storms came in from the west; the lamp never failed.",
    "One, two, three, four, five, six, seven, eight, nine, ten.",
    "希望你以后能够做的比我还好呦。",
    "收到好友从远方寄来的生日礼物，那份意外的惊喜与深深的祝福让我心中充满了甜蜜的快乐。",
    "用四川话说这句话。春天来了，公园里的花都开了。",
]


def source_dir() -> Path:
    return Path(os.environ.get(SOURCE_ENV) or DEFAULT_SOURCE).resolve()


def needs_shim() -> bool:
    """True where no working torchaudio is installed (this machine, CI)."""
    if importlib.util.find_spec("torchaudio") is None:
        return True
    result = subprocess.run([sys.executable, "-c", "import torchaudio"], capture_output=True, timeout=120)
    return result.returncode != 0


def import_paths() -> list[Path]:
    """sys.path entries for upstream, the shim first where it is needed."""
    source = source_dir()
    return ([SHIM] if needs_shim() else []) + [source, source / "third_party" / "Matcha-TTS"]


def skip_reason() -> str | None:
    """Why upstream's code cannot run in this interpreter, or None."""
    source = source_dir()
    if not (source / "cosyvoice" / "cli" / "cosyvoice.py").is_file():
        return f"upstream CosyVoice not found at {source} (set {SOURCE_ENV} to a checkout of commit ace7c47)"
    missing = [name for name in ("torch", "transformers", "hyperpyyaml", "whisper", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed in {sys.executable}: the upstream_cosyvoice tests run in "
            ".venv-cosyvoice (make cosyvoice-env builds it; make test runs them there)"
        )
    return None


def put_on_path() -> None:
    for path in reversed(import_paths()):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def pythonpath() -> str:
    """PYTHONPATH for a subprocess (a worker) that runs upstream: the shim
    where needed (the model's files.source brings the checkout itself)."""
    entries = [str(SHIM)] if needs_shim() else []
    if os.environ.get("PYTHONPATH"):
        entries.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(entries)


# -- the tiny model ----------------------------------------------------------------------

YAML = """\
# A tiny CosyVoice2 for tests: upstream's classes, random weights. Built by
# tests/upstream_cosyvoice.py; the layout of CosyVoice2-0.5B's cosyvoice2.yaml.
__set_seed1: !apply:random.seed [1986]
__set_seed2: !apply:numpy.random.seed [1986]
__set_seed3: !apply:torch.manual_seed [1986]
__set_seed4: !apply:torch.cuda.manual_seed_all [1986]

sample_rate: {sample_rate}
llm_input_size: 64
llm_output_size: 64
spk_embed_dim: 192
qwen_pretrain_path: ''
token_frame_rate: 25
token_mel_ratio: 2
speech_token_size: {speech_tokens}

llm: !new:cosyvoice.llm.llm.Qwen2LM
    llm_input_size: !ref <llm_input_size>
    llm_output_size: !ref <llm_output_size>
    speech_token_size: !ref <speech_token_size>
    length_normalized_loss: True
    lsm_weight: 0
    mix_ratio: [5, 15]
    llm: !new:cosyvoice.llm.llm.Qwen2Encoder
        pretrain_path: !ref <qwen_pretrain_path>
    sampling: !name:cosyvoice.utils.common.ras_sampling
        top_p: 0.8
        top_k: 25
        win_size: 10
        tau_r: 0.1

flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec
    input_size: 512
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: !ref <speech_token_size>
    input_frame_rate: !ref <token_frame_rate>
    only_mask_loss: True
    token_mel_ratio: !ref <token_mel_ratio>
    pre_lookahead_len: 3
    encoder: !new:cosyvoice.transformer.upsample_encoder.UpsampleConformerEncoder
        output_size: 512
        attention_heads: 2
        linear_units: 64
        num_blocks: 1
        dropout_rate: 0.1
        positional_dropout_rate: 0.1
        attention_dropout_rate: 0.1
        normalize_before: True
        input_layer: 'linear'
        pos_enc_layer_type: 'rel_pos_espnet'
        selfattention_layer_type: 'rel_selfattn'
        input_size: 512
        use_cnn_module: False
        macaron_style: False
        use_dynamic_chunk: True
    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
                t_scheduler: 'cosine'
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: 'l1'
        estimator: !new:cosyvoice.flow.decoder.CausalConditionalDecoder
            in_channels: 320
            out_channels: 80
            channels: [64]
            dropout: 0.0
            attention_head_dim: 16
            n_blocks: 1
            num_mid_blocks: 1
            num_heads: 2
            act_fn: 'gelu'
            static_chunk_size: !ref <token_frame_rate> * <token_mel_ratio>
            num_decoding_left_chunks: 2

hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: 32
    nb_harmonics: 8
    sampling_rate: !ref <sample_rate>
    nsf_alpha: 0.1
    nsf_sigma: 0.003
    nsf_voiced_threshold: 10
    upsample_rates: [8, 5, 3]
    upsample_kernel_sizes: [16, 11, 7]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: [3]
    resblock_dilation_sizes: [[1, 3, 5]]
    source_resblock_kernel_sizes: [7, 7, 11]
    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    lrelu_slope: 0.1
    audio_limit: 0.99
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: 32

get_tokenizer: !name:cosyvoice.tokenizer.tokenizer.get_qwen_tokenizer
    token_path: !ref <qwen_pretrain_path>
    skip_special_tokens: True
allowed_special: 'all'
feat_extractor: !name:matcha.utils.audio.mel_spectrogram
    n_fft: 1920
    num_mels: 80
    sampling_rate: !ref <sample_rate>
    hop_size: 480
    win_size: 1920
    fmin: 0
    fmax: 8000
    center: False
"""


def _qwen(directory: Path) -> None:
    """CosyVoice-BlankEN/: a byte-level BPE tokenizer and a two-layer Qwen2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS, trainer)
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None
    )
    tokenizer.save_pretrained(directory)
    config = Qwen2Config(
        vocab_size=QWEN_VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
    )
    if len(tokenizer) + 19 > QWEN_VOCAB:
        raise AssertionError(f"tokenizer has {len(tokenizer)} tokens: raise QWEN_VOCAB")
    Qwen2ForCausalLM(config).save_pretrained(directory)


def _onnx_models(directory: Path, seed: int = 7) -> None:
    """campplus.onnx (fbank [1, T, 80] -> embedding [1, 192]) and
    speech_tokenizer_v2.onnx (whisper log-mel [1, 128, T] and its length ->
    one speech token per 4 frames, int32 [1, ceil(T/4)]): the inputs and
    outputs upstream's frontend reads, by position, with random weights."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def save(graph, name: str) -> None:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        onnx.checker.check_model(model)
        onnx.save(model, str(directory / name))

    weights = numpy_helper.from_array(rng.standard_normal((80, 192)).astype(np.float32) * 0.1, "w")
    save(helper.make_graph(
        [helper.make_node("ReduceMean", ["feats"], ["pooled"], axes=[1], keepdims=0),
         helper.make_node("MatMul", ["pooled", "w"], ["embedding"])],
        "campplus_stand_in_weights",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, "T", 80])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 192])],
        [weights],
    ), "campplus.onnx")

    projection = numpy_helper.from_array(rng.standard_normal((128, 512)).astype(np.float32), "w")
    constants = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "start"),
        numpy_helper.from_array(np.array([2**62], dtype=np.int64), "end"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis"),
        numpy_helper.from_array(np.array([4], dtype=np.int64), "step"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
    ]
    save(helper.make_graph(
        [helper.make_node("Slice", ["feats", "start", "end", "axis", "step"], ["strided"]),
         helper.make_node("Transpose", ["strided"], ["frames"], perm=[0, 2, 1]),
         helper.make_node("MatMul", ["frames", "w"], ["scores"]),
         helper.make_node("ArgMax", ["scores"], ["ids"], axis=2, keepdims=0),
         # the length input is read (times zero), as the real tokenizer reads it
         helper.make_node("Cast", ["feats_length"], ["length64"], to=TensorProto.INT64),
         helper.make_node("Mul", ["length64", "zero"], ["nothing"]),
         helper.make_node("Add", ["ids", "nothing"], ["ids_read"]),
         helper.make_node("Cast", ["ids_read"], ["tokens"], to=TensorProto.INT32)],
        "speech_tokenizer_stand_in_weights",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 128, "T"]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("tokens", TensorProto.INT32, [1, "N"])],
        [projection, *constants],
    ), "speech_tokenizer_v2.onnx")


def build_tiny_model(directory: Path, stop_after_two_tokens_per_text_token: bool = True) -> Path:
    """Write a tiny CosyVoice2 model directory; returns it.

    With ``stop_after_two_tokens_per_text_token`` the random LLM's end-of-speech
    logit is raised: it then stops at upstream's minimum length (two speech
    tokens per text token) instead of running to the maximum (twenty), so a
    segment's audio length follows its text and tests stay fast.
    """
    put_on_path()
    import torch
    from hyperpyyaml import load_hyperpyyaml

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cosyvoice2.yaml").write_text(
        YAML.format(sample_rate=SAMPLE_RATE, speech_tokens=SPEECH_TOKENS), encoding="utf-8"
    )
    _qwen(directory / "CosyVoice-BlankEN")
    with (directory / "cosyvoice2.yaml").open(encoding="utf-8") as handle:
        configs = load_hyperpyyaml(handle, overrides={"qwen_pretrain_path": str(directory / "CosyVoice-BlankEN")})
    if stop_after_two_tokens_per_text_token:
        with torch.no_grad():
            bias = configs["llm"].llm_decoder.bias
            bias[SPEECH_TOKENS] = 30.0  # end of speech, once the minimum length allows it
            bias[SPEECH_TOKENS + 1 :] = -30.0  # the other special tokens never
    for name in ("llm", "flow", "hift"):
        torch.save(configs[name].state_dict(), directory / f"{name}.pt")
    _onnx_models(directory)
    return directory


def write_prompt(path: Path, seconds: float = 3.0, rate: int = 16000, seed: int = 3) -> Path:
    """A reference clip: a voiced-sounding buzz with a little noise (the tiny
    model cannot tell speech from anything else)."""
    import numpy as np
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.5 * t)
    buzz = 0.3 * np.sign(np.sin(2 * np.pi * np.cumsum(pitch) / rate)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)
    noise = 0.02 * np.random.default_rng(seed).standard_normal(t.size)
    soundfile.write(path, (buzz + noise).astype(np.float32), rate)
    return path


if __name__ == "__main__":  # build one by hand: python tests/upstream_cosyvoice.py DIR
    print(build_tiny_model(Path(sys.argv[1])))
