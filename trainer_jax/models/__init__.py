"""Flax NNX decoders of the supported Hugging Face families.

Adding a family: give it a row in ``families.FAMILIES``, teach ``config.config_from_dict`` any config.json
switch it adds, give ``keymap`` its tensor names, and add any new computation to ``decoder`` behind a
config switch.
"""

from trainer_jax.models.config import DecoderConfig, config_from_dict, read_config_json
from trainer_jax.models.decoder import CausalLM, DecoderModel
from trainer_jax.models.families import FAMILIES, SUPPORTED_ARCHITECTURES

__all__ = [
    "FAMILIES",
    "SUPPORTED_ARCHITECTURES",
    "CausalLM",
    "DecoderConfig",
    "DecoderModel",
    "config_from_dict",
    "read_config_json",
]
