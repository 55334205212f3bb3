"""``basepick train --dry-run``: will this run fit? Answered from config.json alone, before any weight is read.

How the estimate is made (``METHOD``, repeated in the output):

* parameters, optimizer state and gradients: exact. The parameter shapes come from the abstract model
  (``nnx.eval_shape``, no weights) and the optimizer state's from ``jax.eval_shape`` of the trainer's own
  optimizer; each array's bytes on one device follow the trainer's FSDP rule (``mesh.param_spec``) on the
  mesh the run would use: fp32 master weights (4 B/param), Adam's two moments and the accumulation buffer
  (12 B/param), fp32 gradients (4 B/param).
* activations: a per-token model of what the backward pass keeps for each layer, by remat policy: ``full``
  keeps each layer's input and recomputes one layer at a time; ``dots`` keeps the projections' outputs;
  ``none`` keeps everything. One layer's working set (1.5 x its forward values, calibrated against XLA's
  compiled memory analysis) comes on top, with T x T attention scores per query token on the XLA
  attention path (none on cuDNN's fused path), at the longest bucket and the rows one device holds. Plus the embedding table gathered in the
  compute dtype and its full fp32 gradient, two layers' gathered weights (FSDP), and a margin of 5% +
  0.5 GiB for XLA's and cuDNN's workspace.

``benchmarks/gpu_check.sh`` compares the estimate with the measured peak on a GPU.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from predictor.errors import DataError
from trainer_jax.train.recipes import TrainConfig

GIB = 2**30
MARGIN = (0.05, GIB // 2)  # share of the total, plus bytes
# One layer's forward values plus the cotangents live during its backward, in units of its forward values.
# Calibrated against XLA's compiled memory analysis on CPU (benchmarks/RESULTS.md): 1.25 (remat full),
# 1.4 (dots), 0.95 (none) measured; 1.5 keeps the estimate on the safe side of all three.
WORKING_SET = 1.5
METHOD = ("exact parameter, optimizer and gradient bytes from the abstract model's shapes under the run's FSDP "
          "sharding; activations from a per-token model of what each remat policy keeps for the backward pass at "
          "the longest bucket, plus 1.5 x one layer's forward values (T x T scores on the XLA attention path only), "
          "the gathered embedding, two layers' gathered weights and a 5% + 0.5 GiB workspace margin")


@dataclasses.dataclass
class DryRun:
    """The estimate and the verdict; ``to_json`` is the CLI's JSON output."""

    model: dict  # architecture, family, parameters, layers, hidden size
    mesh: dict  # platform, devices, data, fsdp
    attention: str  # "cudnn" or "xla", as the run would choose
    remat: str  # remat policy of the run
    device_memory_bytes: int  # capacity of one device
    device_memory_source: str  # where that capacity comes from (--device-memory, the device, host memory)
    per_device_bytes: dict  # params, optimizer, gradients, activations, total
    compiled_shapes: dict  # {"train_step": [[rows, T], ...], "forward": [[rows, T], ...]}
    tokens_per_optimizer_step: dict  # rows and padded tokens at the longest bucket, per optimizer step
    fits: bool  # total <= device memory
    suggestions: list[dict]  # changes that make it fit, each {"change", "total_bytes"}
    method: str = METHOD

    @property
    def headroom(self) -> float:
        return 1.0 - self.per_device_bytes["total"] / self.device_memory_bytes

    def to_json(self) -> dict:
        return {"schema_version": 1, **dataclasses.asdict(self), "headroom": round(self.headroom, 4)}

    def advice(self) -> str:
        need = f"{self.per_device_bytes['total'] / GIB:.1f} GiB per device > {self.device_memory_bytes / GIB:.1f} GiB"
        if not self.suggestions:
            return f"{need}, and no remat, micro-batch or device count within reach makes it fit"
        return f"{need}; it would fit with " + " or ".join(s["change"] for s in self.suggestions)


def _bytes_per_device(tree, fsdp: int) -> int:
    """Bytes one device holds of every array in ``tree`` under the FSDP rule with an fsdp axis of size fsdp."""
    import jax
    import numpy as np

    from trainer_jax.train.mesh import is_stacked, param_spec

    total = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        spec = param_spec(leaf.shape, fsdp, stacked=is_stacked(path))
        split = fsdp if "fsdp" in tuple(spec) else 1
        total += int(np.prod(leaf.shape, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize // split
    return total


def _activation_bytes(cfg, config: TrainConfig, rows: int, t: int, attention: str, remat: str) -> int:
    """Bytes of activations and working set on one device for ``rows`` rows of ``t`` tokens."""
    import numpy as np

    b = np.dtype(config.dtype).itemsize
    d, f, n = cfg.hidden_size, cfg.intermediate_size, cfg.num_heads
    q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    block_norms = {"pre": 2, "sandwich": 4, "post": 2}[cfg.block_norms]
    norms = block_norms * (2 * b * d + 4 * d)  # input, output and fp32 statistics
    qk_norms = 0 if cfg.qk_norm is None else 2 * b * (q + kv)  # normed queries and keys next to the raw ones
    mlp = (4 if cfg.gated_mlp else 2) * b * f  # gate, up, activation, product; or up, activation
    scores = 4 * n if attention == "cudnn" else (12 + b) * n * t  # LSE; or XLA's fp32 logits, masked, exp, probs
    per_layer = norms + qk_norms + b * (q + 2 * kv) + b * (q + kv) + b * q + scores + 2 * b * d + mlp + 2 * b * d
    dots = 4 * (q + 2 * kv + d + (2 if cfg.gated_mlp else 1) * f + d)  # projection outputs at fp32 (XLA's CPU dots)
    kept = {"full": b * d, "dots": b * d + dots, "none": per_layer}[remat]
    tokens = rows * t
    layers = cfg.num_layers * kept + WORKING_SET * per_layer  # kept for every layer + one layer being worked on
    head = 2 * b * d + 4 * d  # final norm, pooled fp32 hidden
    return int(tokens * (layers + head))


def _weights_working_set(cfg, config: TrainConfig, fsdp: int) -> int:
    """The embedding gathered in the compute dtype and its full fp32 gradient, and two layers' gathered weights."""
    import numpy as np

    b = np.dtype(config.dtype).itemsize
    d, f = cfg.hidden_size, cfg.intermediate_size
    q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    layer = d * (q + 2 * kv) + q * d + (3 if cfg.gated_mlp else 2) * d * f
    embedding = cfg.vocab_size * d * (b + (4 if fsdp > 1 else 0))
    return embedding + 2 * layer * b


@dataclasses.dataclass(frozen=True)
class _Plan:
    data: int
    fsdp: int
    micro_batch: int
    remat: str


def _total(cfg, config: TrainConfig, static: dict, plan: _Plan, attention: str) -> dict:
    rows_per_pair = 1 if config.recipe == "regression" else 2
    devices = plan.data * plan.fsdp
    rows = math.ceil(plan.micro_batch * rows_per_pair / devices)
    t = max(config.length_buckets)
    parts = {
        "params": _bytes_per_device(static["params"], plan.fsdp),
        "optimizer": _bytes_per_device(static["optimizer"], plan.fsdp),
        "gradients": _bytes_per_device(static["params"], plan.fsdp),
        "activations": _activation_bytes(cfg, config, rows, t, attention, plan.remat)
        + _weights_working_set(cfg, config, plan.fsdp),
    }
    subtotal = sum(parts.values())
    parts["total"] = int(subtotal * (1 + MARGIN[0]) + MARGIN[1])
    return parts


def _suggestions(cfg, config: TrainConfig, static: dict, plan: _Plan, attention: str, capacity: int) -> list[dict]:
    """Changes that make the run fit: full remat, the largest smaller micro batch, the fewest fsdp devices.

    Each alone where it suffices; when none does, the last two together with full remat.
    """
    def fits(p: _Plan) -> int | None:
        total = _total(cfg, config, static, p, attention)["total"]
        return total if total <= capacity else None

    devices = plan.data * plan.fsdp

    def others(base: _Plan, prefix: str) -> list[dict]:
        found = []
        for m in (m for m in range(plan.micro_batch - 1, 0, -1) if config.global_batch % m == 0 and m % devices == 0):
            if total := fits(dataclasses.replace(base, micro_batch=m)):
                found.append({"change": " and ".join(filter(None, [prefix, f"--micro-batch {m}"])), "total_bytes": total})
                break
        for n in (n for n in range(plan.fsdp + 1, 4097) if plan.micro_batch % (plan.data * n) == 0):
            if total := fits(dataclasses.replace(base, fsdp=n)):
                change = f"{plan.data * n} devices ({n} on fsdp)"
                found.append({"change": " and ".join(filter(None, [prefix, change])), "total_bytes": total})
                break
        return found

    full = dataclasses.replace(plan, remat="full")
    alone = []
    if plan.remat != "full" and (total := fits(full)):
        alone.append({"change": "--remat full", "total_bytes": total})
    alone += others(plan, "")
    return alone or (others(full, "--remat full") if plan.remat != "full" else [])


def _device_memory(device_memory_gb: float | None, planned: bool) -> tuple[int, str]:
    """(bytes per device, where the figure comes from): --device-memory, the devices' own report, or, for
    CPU devices (which report none), the host's physical memory shared by its devices."""
    import jax

    if device_memory_gb is not None:
        if not (math.isfinite(device_memory_gb) and device_memory_gb > 0):
            raise DataError(f"--device-memory must be a finite number of GB above 0, not {device_memory_gb}")
        return int(device_memory_gb * 1e9), "--device-memory"
    if planned:
        raise DataError("planning for other devices: give --device-memory GB")
    device = jax.local_devices()[0]
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"]), f"reported by the {device.platform} device"
    if device.platform != "cpu":
        raise DataError(f"{device.platform} devices report no memory size: give --device-memory GB")
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # bytes of physical memory
    n = jax.local_device_count()
    shared = f" shared by {n} CPU devices" if n > 1 else ""
    return host // n, f"host memory ({host / GIB:.1f} GiB{shared}; CPU devices report no size, --device-memory sets one)"


def estimate(base_dir: str | Path, config: TrainConfig, *, device_memory_gb: float | None = None,
             devices: int | None = None, platform: str | None = None) -> DryRun:
    """The memory each device of this run's mesh would need, from BASE_DIR/config.json alone.

    The mesh is the one the run would use here (``jax.device_count()`` devices of JAX's default backend);
    ``devices`` and ``platform`` plan for another machine instead (e.g. a GPU node, from a login node).
    """
    import jax

    from trainer_jax.models.config import config_from_dict, read_config_json, supported_architecture

    hf_config = read_config_json(base_dir)
    arch = supported_architecture(hf_config, base_dir)
    cfg = config_from_dict(hf_config)  # refuses mixture-of-experts and contradictory configs before any estimate
    platform = platform or jax.default_backend()
    capacity, source = _device_memory(device_memory_gb,
                                      planned=platform != jax.default_backend() or devices is not None)
    return estimate_config(cfg, arch, config, capacity=capacity, devices=devices or jax.device_count(),
                           platform=platform, capacity_source=source)


def estimate_config(cfg, architecture: str, config: TrainConfig, *, capacity: int, devices: int,
                    platform: str, capacity_source: str = "given") -> DryRun:
    """The estimate for a DecoderConfig on ``devices`` devices of ``platform`` with ``capacity`` bytes each."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from trainer_jax.models.attention import choose_attention
    from trainer_jax.models.heads import RewardModel
    from trainer_jax.train.loop import Schedule, make_optimizer

    if devices % config.mesh_data:
        raise DataError(f"--mesh-data {config.mesh_data} does not divide the {devices} devices")
    plan = _Plan(data=config.mesh_data, fsdp=devices // config.mesh_data, micro_batch=config.micro_batch,
                 remat=config.remat)
    if plan.micro_batch % devices:
        raise DataError(f"micro batch {plan.micro_batch} must be a multiple of the {devices} devices of the mesh")
    abstract = nnx.eval_shape(lambda: RewardModel(cfg, num_labels=config.num_labels, dtype=jnp.dtype(config.dtype),
                                                  param_dtype=jnp.float32, rngs=nnx.Rngs(0)))
    params = nnx.state(abstract, nnx.Param)
    optimizer = jax.eval_shape(make_optimizer(config, config.lr, Schedule(1, 1)).init, params)
    static = {"params": params, "optimizer": optimizer}
    attention = choose_attention(cfg, jnp.dtype(config.dtype), platform).implementation
    parts = _total(cfg, config, static, plan, attention)
    per_example = 1 if config.recipe == "regression" else 2  # rows per pair: chosen and rejected
    shapes = [[config.micro_batch * per_example, t] for t in config.length_buckets]
    fits = parts["total"] <= capacity
    return DryRun(
        model={"architecture": architecture, "family": cfg.family,
               "parameters": sum(int(x.size) for x in jax.tree.leaves(params)), "layers": cfg.num_layers,
               "hidden_size": cfg.hidden_size},
        mesh={"platform": platform, "devices": devices, "data": plan.data, "fsdp": plan.fsdp},
        attention=attention, remat=config.remat, device_memory_bytes=capacity,
        device_memory_source=capacity_source, per_device_bytes=parts,
        compiled_shapes={"train_step": shapes, "forward": shapes},
        tokens_per_optimizer_step={"rows": config.global_batch * per_example,
                                   "padded_tokens_at_longest_bucket": config.global_batch * per_example
                                   * max(config.length_buckets)},
        fits=fits, suggestions=[] if fits else _suggestions(cfg, config, static, plan, attention, capacity),
    )


def render_table(report: DryRun) -> str:
    """The estimate as aligned text lines."""
    gib = lambda x: f"{x / GIB:8.2f} GiB"  # noqa: E731
    m, p = report.model, report.per_device_bytes
    lines = [f"model        {m['architecture']}, {m['parameters'] / 1e9:.3f}B parameters, {m['layers']} layers",
             f"mesh         {report.mesh['devices']} {report.mesh['platform']} device(s): data {report.mesh['data']} "
             f"x fsdp {report.mesh['fsdp']}; attention {report.attention}, remat {report.remat}",
             "per device"]
    lines += [f"  {name:<12}{gib(p[name])}" for name in ("params", "optimizer", "gradients", "activations", "total")]
    lines.append(f"  {'capacity':<12}{gib(report.device_memory_bytes)}  "
                 f"({'fits' if report.fits else 'does NOT fit'}, headroom {100 * report.headroom:.0f}%; "
                 f"{report.device_memory_source})")
    lines.append("shapes       " + ", ".join(f"{r}x{t}" for r, t in report.compiled_shapes["train_step"]))
    for s in report.suggestions:
        lines.append(f"would fit    {s['change']} ({s['total_bytes'] / GIB:.1f} GiB)")
    lines.append(f"method       {report.method}")
    return "\n".join(lines) + "\n"
