"""capcse.models: text encoders with SimCSE's poolers, the model alias registry."""

from capcse.models.encoder import (SentenceEncoder, autocast_context, load_encoder,
                                   load_sentence_transformer, parse_dtype, pick_device, set_pooler)
from capcse.models.poolers import POOLERS, layer_average_modules, masked_mean, pool
from capcse.models.registry import ALIASES, resolve_model

__all__ = ["ALIASES", "POOLERS", "layer_average_modules", "SentenceEncoder", "autocast_context", "load_encoder",
           "load_sentence_transformer", "masked_mean", "parse_dtype", "pick_device", "pool", "resolve_model",
           "set_pooler"]
