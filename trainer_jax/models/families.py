"""The supported Hugging Face families: their names, classes and the switches that set them apart.

One row per family. Everything a row says is a switch of the one decoder (``trainer_jax.models.decoder``);
what a config.json adds on top (sizes, biases, windows, RoPE) is read by ``trainer_jax.models.config``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Family:
    prefix: str  # Hugging Face class-name prefix of the base LM (Llama -> LlamaForCausalLM)
    classifier: str  # the *ForSequenceClassification class an export is written as
    norm: str  # "rms" (Llama), "rms_f32" (OLMo 2: weight applied in fp32), "rms_1p" (Gemma: 1 + w, fp32),
    #            "layer" (LayerNorm with bias, StableLM), "layer_1p" (Nemotron: LayerNorm with 1 + w and bias)
    block_norms: str  # "pre" (before attention and MLP), "sandwich" (before and after: Gemma 2/3),
    #                   "post" (after: OLMo 2)
    qk_norm: str | None  # norm of queries and keys before RoPE: "head" (per head, Qwen3/Gemma 3),
    #                      "proj" (over the whole projection, OLMo 2), None
    gated_mlp: bool = True  # down(act(gate(x)) * up(x)); False: down(act(up(x))) (Nemotron's squared ReLU)
    sqrt_d_embeddings: bool = False  # token embeddings multiplied by sqrt(D) (Gemma)
    extra_architectures: tuple[str, ...] = ()  # further architectures read (Gemma 3's multimodal checkpoints)


FAMILIES: dict[str, Family] = {
    "llama": Family("Llama", "LlamaForSequenceClassification", "rms", "pre", None),
    "mistral": Family("Mistral", "MistralForSequenceClassification", "rms", "pre", None),
    "ministral": Family("Ministral", "MinistralForSequenceClassification", "rms", "pre", None),
    "qwen2": Family("Qwen2", "Qwen2ForSequenceClassification", "rms", "pre", None),
    "qwen3": Family("Qwen3", "Qwen3ForSequenceClassification", "rms", "pre", "head"),
    "phi3": Family("Phi3", "Phi3ForSequenceClassification", "rms", "pre", None),
    "smollm3": Family("SmolLM3", "SmolLM3ForSequenceClassification", "rms", "pre", None),
    "olmo2": Family("Olmo2", "Olmo2ForSequenceClassification", "rms_f32", "post", "proj"),
    "olmo3": Family("Olmo3", "Olmo3ForSequenceClassification", "rms_f32", "post", "proj"),
    "gemma": Family("Gemma", "GemmaForSequenceClassification", "rms_1p", "pre", None, sqrt_d_embeddings=True),
    "gemma2": Family("Gemma2", "Gemma2ForSequenceClassification", "rms_1p", "sandwich", None, sqrt_d_embeddings=True),
    "gemma3": Family("Gemma3", "Gemma3TextForSequenceClassification", "rms_1p", "sandwich", "head",
                     sqrt_d_embeddings=True, extra_architectures=("Gemma3ForConditionalGeneration",)),
    "stablelm": Family("StableLm", "StableLmForSequenceClassification", "layer", "pre", None),
    "nemotron": Family("Nemotron", "NemotronForSequenceClassification", "layer_1p", "pre", None, gated_mlp=False),
}
# model_type in config.json -> family (Falcon3 ships as "llama"; Gemma 3's text decoder as "gemma3_text",
# inside "gemma3" multimodal checkpoints).
MODEL_TYPES = {**{name: name for name in FAMILIES}, "gemma3_text": "gemma3"}
MULTIMODAL = {"gemma3": "text_config"}  # model_type -> key of the language model's config, whose weights alone are read
# Mixture-of-experts model types, refused by name (their expert layers are not a dense MLP).
MOE_TYPES = frozenset({"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "flex_olmo", "granitemoe", "granitemoeshared",
                       "granitemoehybrid", "phimoe", "dbrx", "jamba", "deepseek_v2", "deepseek_v3", "gpt_oss",
                       "llama4", "llama4_text", "minimax", "qwen3_next", "ernie4_5_moe", "glm4_moe", "dots1",
                       "hunyuan_v1_moe", "longcat_flash"})
EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")  # expert counts


def architectures(family: str) -> tuple[str, ...]:
    """The ``architectures[0]`` values read as this family: base LM, classifier, extras."""
    f = FAMILIES[family]
    return (f"{f.prefix}ForCausalLM", f"{f.prefix}ForSequenceClassification", f.classifier, *f.extra_architectures)


SUPPORTED_ARCHITECTURES = tuple(dict.fromkeys(a for name in FAMILIES for a in architectures(name)))
