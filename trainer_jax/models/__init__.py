"""Flax NNX decoders of the supported Hugging Face families.

Adding a family: teach ``config.config_from_dict`` its config.json switches, give ``keymap`` its tensor
names, and add any new computation to ``decoder`` behind a config switch.
"""

from trainer_jax.models.config import (
    CLASS_PREFIX,
    FAMILIES,
    SUPPORTED_ARCHITECTURES,
    DecoderConfig,
    config_from_dict,
    read_config_json,
)
from trainer_jax.models.decoder import CausalLM, DecoderModel

__all__ = [
    "CLASS_PREFIX",
    "FAMILIES",
    "SUPPORTED_ARCHITECTURES",
    "CausalLM",
    "DecoderConfig",
    "DecoderModel",
    "config_from_dict",
    "read_config_json",
]
