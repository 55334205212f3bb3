"""Which lineage a model belongs to: models of one lineage share pre-training data and publisher habits.

The rule, first match wins:
1. a ``lineage`` column in the candidates file (``given``);
2. the seed study's metadata, data/benchmarks/seed_paper_models.csv (``metadata``);
3. a keyword of the model name (the part after ``org/``, lower-cased), in the order of ``KEYWORDS``
   (``inferred``): fine-tunes carry their base's family in their name, e.g. Llama-3.1-Tulu-3-8B;
4. otherwise the organisation (the part before ``/``, lower-cased), a lineage of its own
   (``organisation``): one publisher's models usually share data.
The rule reproduces the metadata's lineage for every one of the study's models (tests/test_plan.py).
"""

from __future__ import annotations

GIVEN, METADATA, INFERRED, ORGANISATION = "given", "metadata", "inferred", "organisation"

KEYWORDS = (  # (keyword in the model name, lineage); earlier entries win
    ("minitron", "mistral"),  # nvidia/Mistral-NeMo-Minitron-8B: pruned from Mistral NeMo
    ("llama", "llama"),  # Llama-3.x, Tulu-3 and Hermes-3 fine-tunes, Llama-3.1-Nemotron
    ("tulu", "llama"),
    ("hermes-3", "llama"),
    ("mistral", "mistral"),
    ("mixtral", "mistral"),
    ("qwen", "qwen"),
    ("gemma", "gemma"),
    ("phi-", "phi"),
    ("yi-", "yi"),
    ("falcon", "falcon"),
    ("stablelm", "stablelm"),
    ("nemotron", "nemotron"),
)


def infer(model_id: str) -> tuple[str, str]:
    """(lineage, how it was found) from the id alone: a name keyword, else the organisation."""
    org, _, name = model_id.rpartition("/")
    lowered = name.lower()
    for keyword, lineage in KEYWORDS:
        if keyword in lowered:
            return lineage, INFERRED
    return (org or name).lower(), ORGANISATION


def lineage_of(model_id: str, metadata: dict[str, dict], given: str = "") -> tuple[str, str]:
    """(lineage, source) for one model: given > metadata > keyword > organisation."""
    if given.strip():
        return given.strip().lower(), GIVEN
    if model_id in metadata and metadata[model_id].get("lineage"):
        return metadata[model_id]["lineage"], METADATA
    return infer(model_id)
