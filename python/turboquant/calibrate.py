"""turboquant.calibrate: a calibration profile measured on a transformers model itself.

The calibrated presets (tq2.5, tq3, tq3.5, tq4) are built per model from a ``KvProfile``: the
second moments of the pre-RoPE queries and keys and of the values per layer and KV head, the
RoPE angles, and each KV head's value metric from the output projection (kv_profile.h). The C++
CLI measures them on a GGUF model (``tq calibrate``); ``calibrate(model)`` measures the same
statistics on a transformers model with one forward pass over the built-in calibration text, so
no GGUF file is needed::

    profile = turboquant.calibrate.calibrate(model, tokenizer)
    cache = TurboQuantCache("tq3", profile=profile, config=model.config)

What it reads from the model: every attention module with ``q_proj``, ``k_proj``, ``v_proj`` and
``o_proj`` (Llama, Mistral, Qwen, Gemma, ... in transformers' layout), in module order as the
layers; the rows are taken pre-RoPE, after ``q_norm`` / ``k_norm`` where the module has them
(Qwen3, Gemma 3 normalise before RoPE); RoPE is transformers' ``rotate_half`` form with the
angles of the model's rotary embedding (``inv_freq``; a Gemma 3 sliding layer's local one).
The first token of the text (BOS, an attention sink with outlying activations) is left out,
as the C++ calibration does. The layer sensitivities the CLI also measures are not (all 1).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("turboquant.calibrate needs torch (pip install torch): " + str(e)) from e

from . import Error, KvProfile, KvProfileBuilder, calibration_text

__all__ = ["calibrate"]


def _text_config(model: Any) -> Any:
    c = model.config
    return c.get_text_config(decoder=True) if hasattr(c, "get_text_config") else c


def _attention_modules(model: Any) -> list:
    mods = [m for m in model.modules() if all(hasattr(m, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj"))]
    if not mods:
        raise Error("turboquant.calibrate: the model has no attention module with q_proj, k_proj, v_proj and o_proj "
                    f"({type(model).__name__}); profile it with the C++ CLI (tq calibrate) instead")
    return mods


def _inv_freqs(model: Any, n_layers: int) -> list:
    """Per layer the rotary inv_freq (radians per position of each pair), as the model applies it:
    one ``inv_freq`` for every layer, or one per layer type (``<type>_inv_freq`` buffers of one
    module in transformers 5, or Gemma 3's ``rotary_emb_local`` for sliding layers in 4.x)."""
    text = _text_config(model)
    types = getattr(text, "layer_types", None) or ["full_attention"] * n_layers
    ropes = {name.rsplit(".", 1)[-1]: m for name, m in model.named_modules()
             if any(b == "inv_freq" or b.endswith("_inv_freq") for b, _ in m.named_buffers(recurse=False))}
    if not ropes:
        raise Error(f"turboquant.calibrate: no rotary embedding (a module with inv_freq) in {type(model).__name__}")
    glob = ropes.get("rotary_emb", next(iter(ropes.values())))
    local = ropes.get("rotary_emb_local")

    def freq(kind: str) -> torch.Tensor:
        if kind == "sliding_attention" and local is not None:
            return local.inv_freq
        f = getattr(glob, f"{kind}_inv_freq", None)
        if f is None:
            f = getattr(glob, "inv_freq", None)
        if f is None:
            raise Error(f"turboquant.calibrate: the rotary embedding has no inv_freq for {kind} layers")
        return f

    return [freq(types[l]).detach().to(torch.float64).cpu() for l in range(n_layers)]


def calibrate(model: Any, tokenizer: Any = None, input_ids: Optional[torch.Tensor] = None,
              text: Optional[str] = None) -> KvProfile:
    """Measure a ``KvProfile`` of ``model`` on one forward pass: over ``input_ids`` (1, n) when
    given, else over ``text`` (default: the built-in calibration text) encoded with ``tokenizer``.
    Needs at least 16 tokens. Returns the profile the calibrated presets are built from."""
    if input_ids is None:
        if tokenizer is None:
            raise ValueError("turboquant.calibrate: pass a tokenizer (for the built-in text) or input_ids")
        input_ids = tokenizer(text or calibration_text(), return_tensors="pt")["input_ids"]
    input_ids = torch.as_tensor(input_ids)
    if input_ids.dim() != 2 or input_ids.shape[0] != 1 or input_ids.shape[1] < 17:
        raise ValueError(f"turboquant.calibrate: input_ids must be (1, n) with n >= 17 (the first token is left out), "
                         f"got {tuple(input_ids.shape)}")
    text_cfg = _text_config(model)
    attns = _attention_modules(model)
    n_layers, n_heads, n_kv = len(attns), text_cfg.num_attention_heads, text_cfg.num_key_value_heads
    d = getattr(text_cfg, "head_dim", None) or text_cfg.hidden_size // n_heads
    builder = KvProfileBuilder(n_layers, n_heads, n_kv, d)

    rows: dict = {}

    def grab(layer: int, what: str, heads: int):
        def hook(_module, _inputs, out):
            # (1, n, heads * d) or (1, n, heads, d) -> (n - 1, heads, d), the first token left out
            rows[(layer, what)] = out.detach().to(torch.float32).reshape(-1, heads, d)[1:].cpu().numpy()
        return hook

    handles = []
    for l, a in enumerate(attns):
        handles.append((a.q_norm if hasattr(a, "q_norm") else a.q_proj).register_forward_hook(grab(l, "q", n_heads)))
        handles.append((a.k_norm if hasattr(a, "k_norm") else a.k_proj).register_forward_hook(grab(l, "k", n_kv)))
        handles.append(a.v_proj.register_forward_hook(grab(l, "v", n_kv)))
    try:
        with torch.no_grad():
            model(input_ids=input_ids.to(next(model.parameters()).device), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    for l in range(n_layers):
        if any((l, w) not in rows for w in "qkv"):
            raise Error(f"turboquant.calibrate: layer {l}'s attention did not run in the forward pass")
        builder.add(l, np.ascontiguousarray(rows[(l, "q")]), np.ascontiguousarray(rows[(l, "k")]),
                    np.ascontiguousarray(rows[(l, "v")]))

    # RoPE angles per coordinate: rotate_half pairs i with i + rope_dim / 2, both turning by inv_freq[i].
    freqs = _inv_freqs(model, n_layers)
    rope_dim = 2 * freqs[0].numel()
    theta = np.zeros((n_layers, d))
    for l, f in enumerate(freqs):
        theta[l, : rope_dim // 2] = theta[l, rope_dim // 2: rope_dim] = f.numpy()
    # Value metric: an error e in KV head g's value costs sum over its query heads h of |W_o,h e|^2.
    group = n_heads // n_kv
    v_weight = np.zeros((n_layers, n_kv, d, d))
    for l, a in enumerate(attns):
        w = a.o_proj.weight.detach().to(torch.float64).cpu().reshape(-1, n_heads, d)  # (hidden, heads, d)
        for g in range(n_kv):
            wg = w[:, g * group:(g + 1) * group].reshape(-1, d)
            v_weight[l, g] = (wg.T @ wg).numpy()
    name = getattr(model.config, "name_or_path", "") or type(model).__name__
    return builder.finish(theta, v_weight, rope_dim=rope_dim, model_name=name)
