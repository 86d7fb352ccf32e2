"""Caption generation with any Hugging Face image-to-text model.

:class:`Captioner` loads a model and its processor through transformers' auto classes and picks an
*adapter* from the model type, which builds the decoder prefix (start token + optional prompt):

* ``blip`` (``BlipForConditionalGeneration``, e.g. ``Salesforce/blip-image-captioning-large``): the
  prompt goes in as ``[CLS] prompt [SEP]``; BLIP's ``generate`` swaps ``[CLS]`` for ``[DEC]`` and drops
  ``[SEP]``, exactly like the original BLIP code;
* ``encoder-decoder`` (``VisionEncoderDecoderModel``: ViT-GPT2, TrOCR, ...):
  ``decoder_input_ids = [decoder_start] + prompt``;
* ``git`` (``GitForCausalLM``): ``input_ids = [CLS] + prompt``;
* ``generic``: any other model whose ``generate`` takes ``pixel_values`` (+ ``input_ids`` when a
  prompt is given); chat-style VLMs that need image placeholder tokens in the text are not covered.

Length semantics are BLIP's (``models/blip.py`` passes them straight to ``generate``):
``min_length``/``max_length`` count *decoder tokens including the start token and the prompt*. With
the seed's ``a picture of`` prompt (3 tokens + ``[DEC]``), ``max_length=20`` leaves at most 16 caption
tokens. ``max_new_tokens``/``min_new_tokens`` override them when given (used by the benchmark).

Decoding methods, with BLIP's defaults: ``nucleus`` (``do_sample``, ``top_p``, ``temperature``,
``top_k=50`` (transformers' default, which BLIP's sampling inherits; 0 disables it), repetition
penalty 1.1 as BLIP hard-codes for sampling), ``beam`` (``num_beams=3``, penalty 1.0), ``greedy``.
The prompt is removed from the returned caption, as BLIP does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import asdict, dataclass
from typing import Any

from capcse.errors import CapcseError

DEFAULT_MODEL = "Salesforce/blip-image-captioning-large"
DECODING_METHODS = ("nucleus", "beam", "greedy")
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class DecodingConfig:
    method: str = "nucleus"
    top_p: float = 0.9
    top_k: int = 50
    temperature: float = 1.0
    min_length: int = 5
    max_length: int = 20
    num_captions: int = 1
    num_beams: int = 3
    repetition_penalty: float | None = None  # None: BLIP's choice, 1.1 for nucleus, 1.0 otherwise
    prompt: str | None = None
    max_new_tokens: int | None = None
    min_new_tokens: int | None = None

    def __post_init__(self):
        if self.method not in DECODING_METHODS:
            raise CapcseError(f"--decoding must be one of {DECODING_METHODS}, got {self.method!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise CapcseError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0:
            raise CapcseError(f"--temperature must be > 0, got {self.temperature}")
        if self.min_length > self.max_length:
            raise CapcseError(f"--min-length {self.min_length} > --max-length {self.max_length}")
        if self.num_captions < 1:
            raise CapcseError("--num-captions must be >= 1")
        if self.method == "greedy" and self.num_captions > 1:
            raise CapcseError("greedy decoding gives one caption per image; use nucleus or beam for more")
        if self.method == "beam" and self.num_captions > self.num_beams:
            raise CapcseError(f"--num-captions {self.num_captions} > --num-beams {self.num_beams}")

    @property
    def penalty(self) -> float:
        if self.repetition_penalty is not None:
            return self.repetition_penalty
        return 1.1 if self.method == "nucleus" else 1.0

    def describe(self) -> dict[str, Any]:
        """The parameters that matter for this method (stored with every caption)."""
        d: dict[str, Any] = {"method": self.method}
        if self.method == "nucleus":
            d.update(top_p=self.top_p, top_k=self.top_k, temperature=self.temperature)
        elif self.method == "beam":
            d.update(num_beams=self.num_beams)
        if self.max_new_tokens is not None or self.min_new_tokens is not None:
            d.update(min_new_tokens=self.min_new_tokens, max_new_tokens=self.max_new_tokens)
        else:
            d.update(min_length=self.min_length, max_length=self.max_length)
        d.update(repetition_penalty=self.penalty, prompt=self.prompt or "", num_captions=self.num_captions)
        return d

    def generate_kwargs(self, prefix_len: int, length_in_new_tokens: bool = False) -> dict[str, Any]:
        kw: dict[str, Any] = {"num_return_sequences": self.num_captions, "repetition_penalty": self.penalty}
        if self.max_new_tokens is not None or self.min_new_tokens is not None:
            if self.max_new_tokens is not None:
                kw["max_new_tokens"] = self.max_new_tokens
            if self.min_new_tokens is not None:
                kw["min_new_tokens"] = self.min_new_tokens
        elif length_in_new_tokens:  # generic models: keep BLIP's budget of caption tokens
            kw["max_new_tokens"] = max(1, self.max_length - prefix_len)
            kw["min_new_tokens"] = max(0, self.min_length - prefix_len)
        else:
            kw["max_length"] = self.max_length
            kw["min_length"] = self.min_length
        if self.method == "nucleus":
            kw.update(do_sample=True, top_p=self.top_p, top_k=self.top_k, temperature=self.temperature, num_beams=1)
        elif self.method == "beam":
            kw.update(do_sample=False, num_beams=self.num_beams)
        else:
            kw.update(do_sample=False, num_beams=1)
        return kw


def batch_seed(seed: int, part_name: str, start: int) -> int:
    """The RNG seed of the batch that starts at item ``start`` of part ``part_name``.

    Defined on global positions only, so a batch samples the same tokens whether it runs in a single
    process, in any shard, or after a resume.
    """
    digest = hashlib.sha256(f"{seed}|{part_name}|{start}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class ImageTransform:
    """Picklable PIL image -> ``[3, H, W]`` float tensor with the model's image processor (runs in workers)."""

    def __init__(self, image_processor):
        self.image_processor = image_processor

    def __call__(self, image):
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]


def _load_model_class():
    import transformers

    for name in ("AutoModelForImageTextToText", "AutoModelForVision2Seq"):
        cls = getattr(transformers, name, None)
        if cls is not None:
            yield cls


def check_model_name(model: str) -> None:
    """Refuse a model that names a local folder which does not exist (instead of a hub repo-id error).

    A Hugging Face id is ``name`` or ``owner/name``; anything absolute, starting with ``.``/``~`` or with
    more than one ``/`` is a path.
    """
    m = str(model)
    looks_like_path = m.startswith(("/", ".", "~")) or m.count("/") > 1 or "\\" in m or os.path.isabs(m)
    if looks_like_path and not os.path.isdir(os.path.expanduser(m)):
        raise CapcseError(f"--model {m}: no such model folder (give an existing folder or a Hugging Face id "
                          "such as Salesforce/blip-image-captioning-large)")


class Captioner:
    """A loaded image-to-text model: ``transform`` for the loader, ``caption(pixel_values)`` for batches."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = "auto", dtype: str = "fp32",
                 autocast: str | None = None, adapter: str = "auto", attention: str = "sdpa"):
        import torch
        import transformers
        from transformers import AutoConfig, AutoImageProcessor, AutoProcessor, AutoTokenizer

        if dtype not in DTYPES:
            raise CapcseError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if autocast not in (None, "none", "bf16", "fp16"):
            raise CapcseError(f"--autocast must be none, bf16 or fp16, got {autocast!r}")
        if attention not in ("sdpa", "eager"):
            raise CapcseError(f"--attention must be sdpa or eager, got {attention!r}")
        self.attention = attention
        self.name = model
        self.device = resolve_device(device)
        self.dtype = getattr(torch, DTYPES[dtype])
        self.autocast = None if autocast in (None, "none") else getattr(torch, DTYPES[autocast])
        check_model_name(model)
        try:
            config = AutoConfig.from_pretrained(model)
        except (OSError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CapcseError(f"cannot load captioning model {model!r}: {first}") from exc
        self.model_type = config.model_type
        self.adapter = adapter if adapter != "auto" else {
            "blip": "blip", "vision-encoder-decoder": "encoder-decoder", "git": "git"}.get(self.model_type, "generic")
        if self.adapter not in ("blip", "encoder-decoder", "git", "generic"):
            raise CapcseError(f"unknown adapter {adapter!r}")

        classes = [cls for cls in _load_model_class() if type(config) in cls._model_mapping]
        if not classes:
            raise CapcseError(f"{model!r} (model type {self.model_type!r}) is not an image-to-text model "
                              "known to transformers' AutoModelForImageTextToText")
        self.model = classes[0].from_pretrained(model, dtype=self.dtype)
        try:
            processor = AutoProcessor.from_pretrained(model)
            if isinstance(processor, transformers.ProcessorMixin):
                self.image_processor = processor.image_processor
                self.tokenizer = processor.tokenizer
            else:  # e.g. ViT-GPT2: an image processor and a tokenizer saved side by side
                self.image_processor = AutoImageProcessor.from_pretrained(model)
                self.tokenizer = AutoTokenizer.from_pretrained(model)
        except (OSError, ValueError) as exc:
            raise CapcseError(f"cannot load the image processor / tokenizer of {model!r}: {exc}") from exc
        self.model.to(self.device).eval()
        if attention == "sdpa":  # BLIP's hand-written vision attention -> PyTorch's fused kernel
            from capcse.caption.attention import use_sdpa_vision_attention

            use_sdpa_vision_attention(self.model)
        self.transform = ImageTransform(self.image_processor)

    # ------------------------------------------------------------------------------------- prefix
    def _prompt_ids(self, prompt: str | None) -> list[int]:
        if not prompt:
            return []
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _prefix_inputs(self, batch_size: int, prompt: str | None) -> tuple[dict[str, Any], int]:
        """Model inputs carrying the decoder prefix, and that prefix's length in the output sequences."""
        import torch

        ids = self._prompt_ids(prompt)
        tok = self.tokenizer
        dev = self.device

        def rows(seq):
            return torch.tensor([seq] * batch_size, dtype=torch.long, device=dev)

        if self.adapter == "blip":
            seq = [tok.cls_token_id] + ids + [tok.sep_token_id]
            return {"input_ids": rows(seq), "attention_mask": rows([1] * len(seq))}, len(ids) + 1
        if self.adapter == "encoder-decoder":
            start = self.model.config.decoder_start_token_id
            if start is None:
                start = self.model.generation_config.decoder_start_token_id
            return {"decoder_input_ids": rows([start] + ids)}, len(ids) + 1
        if self.adapter == "git":
            return {"input_ids": rows([tok.cls_token_id] + ids)}, len(ids) + 1
        if ids:
            seq = list(tok(prompt)["input_ids"])
            return {"input_ids": rows(seq), "attention_mask": rows([1] * len(seq))}, len(seq)
        return {}, 0

    # ----------------------------------------------------------------------------------- generate
    def caption(self, pixel_values, decoding: DecodingConfig, seed: int | None = None) -> list[list[str]]:
        """Captions of a batch: ``num_captions`` strings per image, in input order."""
        import torch

        n = int(pixel_values.shape[0])
        inputs, prefix_len = self._prefix_inputs(n, decoding.prompt)
        kwargs = decoding.generate_kwargs(prefix_len, length_in_new_tokens=self.adapter == "generic")
        if seed is not None:
            torch.manual_seed(seed)
        pixel_values = pixel_values.to(self.device, dtype=self.dtype)
        ctx = (torch.autocast(device_type=self.device.split(":")[0], dtype=self.autocast)
               if self.autocast is not None else contextlib.nullcontext())
        with torch.inference_mode(), ctx:
            out = self.model.generate(pixel_values=pixel_values, **inputs, **kwargs)
        if not torch.is_tensor(out):
            out = out.sequences
        out = out.cpu()
        if self.adapter == "generic" and prefix_len and out.shape[1] >= prefix_len:
            # decoder-only generic models echo their input; encoder-decoder ones do not
            echoed = bool((out[:, :prefix_len] == inputs["input_ids"].cpu().repeat_interleave(
                decoding.num_captions, 0)).all())
            prefix_len = prefix_len if echoed else 0
        prompt_text = self.tokenizer.decode(self._prompt_ids(decoding.prompt), skip_special_tokens=True).strip()
        texts = []
        for row in out:
            if prompt_text:
                full = self.tokenizer.decode(row, skip_special_tokens=True).strip()
                if full.startswith(prompt_text):
                    texts.append(" ".join(full[len(prompt_text):].split()))
                    continue
            texts.append(" ".join(self.tokenizer.decode(row[prefix_len:], skip_special_tokens=True).split()))
        k = decoding.num_captions
        return [texts[i * k:(i + 1) * k] for i in range(n)]

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "model_type": self.model_type, "adapter": self.adapter,
                "attention": self.attention}


def decoding_from_dict(d: dict[str, Any]) -> DecodingConfig:
    return DecodingConfig(**d)


def decoding_to_dict(d: DecodingConfig) -> dict[str, Any]:
    return asdict(d)
