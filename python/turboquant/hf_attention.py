"""attn_implementation="turboquant": transformers attention read from a TurboQuantCache's records.

Importing turboquant.hf registers two functions under the name "turboquant":

- the attention function (``AttentionInterface``): the layer's ``TurboQuantCache.update`` returned
  the new keys and values tagged with their store and layer; this function writes them (less
  left padding) and attends over the layer's compressed records with ``KvCache.attend``: GQA,
  the model's scaling, causal prefill (query i sees keys up to its position), a sliding
  window, softcapping, one KvCache sequence per batch row. No decoded history exists.
- the mask function (``AttentionMaskInterface``): instead of a dense mask it returns a
  ``RecordsMask`` (left padding per row, window), after checking over every (row, query, key)
  that the mask transformers asked for is exactly causal + left padding + that window. Any
  other mask (padding inside a row, bidirectional or chunked attention, packed sequences, a
  4D mask given by the caller) is refused with an error naming it: attention from records
  cannot express it, and nothing falls back to another attention.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, prepare_padding_mask, sdpa_mask

from . import Error

__all__ = ["ATTENTION", "RecordsMask", "records_attention", "records_mask"]

ATTENTION = "turboquant"

# Mask cells checked per chunk of queries (bounds the check's memory at long prefills).
_CHECK_CELLS = 1 << 22


class RecordsMask:
    """The mask of one forward pass as attention over records takes it: row b's first pads[b]
    positions are padding, and a query at position p sees keys in (p - window, p] (window 0:
    [0, p]). Built by ``records_mask`` from what transformers asked for, checked equal to it."""

    __slots__ = ("pads", "window")

    def __init__(self, pads: list[int], window: int):
        self.pads, self.window = pads, window

    def __repr__(self) -> str:
        return f"RecordsMask(pads={self.pads}, window={self.window})"


def _unsupported(what: str) -> Error:
    return Error(f"attn_implementation='{ATTENTION}': {what}. Attention over the compressed records does causal "
                 "attention with left padding and a sliding window only; use another attn_implementation (the "
                 "TurboQuantCache then decodes the history for it)")


def records_mask(batch_size: int, q_length: int, kv_length: int, q_offset: Any = 0, kv_offset: int = 0,
                 mask_function: Any = None, attention_mask: Optional[torch.Tensor] = None,
                 local_size: Optional[int] = None, use_vmap: bool = False, device: Any = "cpu",
                 **kwargs: Any) -> RecordsMask:
    """transformers' mask interface for "turboquant": the RecordsMask equal to the mask described."""
    if mask_function is None:
        raise _unsupported("the mask came without a mask function")
    if kv_offset != 0:
        raise _unsupported(f"a key offset of {kv_offset} (a cache that drops tokens)")
    q_offset = int(q_offset)
    window = int(local_size or 0)
    pads = torch.zeros(batch_size, dtype=torch.long, device=device)
    if attention_mask is not None:
        if attention_mask.dim() != 2:
            raise _unsupported(f"a {attention_mask.dim()}D attention mask")
        padding = prepare_padding_mask(attention_mask.to(device=device, dtype=torch.bool), kv_length, 0)[:, :kv_length]
        pads = (padding.cumsum(-1) == 0).sum(-1)  # leading masked positions of each row
    keys = torch.arange(kv_length, device=device)
    chunk = max(1, _CHECK_CELLS // max(1, batch_size * kv_length))
    for start in range(0, q_length, chunk):
        n = min(chunk, q_length - start)
        got = sdpa_mask(batch_size=batch_size, q_length=n, kv_length=kv_length, q_offset=q_offset + start,
                        kv_offset=0, mask_function=mask_function, attention_mask=attention_mask,
                        local_size=local_size, allow_is_causal_skip=False, allow_is_bidirectional_skip=False,
                        use_vmap=use_vmap, device=device)
        pos = torch.arange(q_offset + start, q_offset + start + n, device=device)[:, None]
        want = (keys <= pos) & (keys[None, None, None, :] >= pads[:, None, None, None])
        if window:
            want &= keys > pos - window
        want = want.expand(batch_size, 1, n, kv_length)
        if got is None or not torch.equal(got.expand_as(want), want):
            if got is None:
                raise _unsupported("the mask function gave no mask")
            b, _, i, j = (got.expand_as(want) != want).nonzero()[0].tolist()
            raise _unsupported(f"the model's attention mask is not causal + left padding"
                               f"{f' + a window of {window}' if window else ''}: row {b}, query at position "
                               f"{q_offset + start + i}, key {j} is {'visible' if got[b, 0, i, j] else 'masked'} "
                               "(padding inside a row, bidirectional or chunked attention, packed sequences?)")
    return RecordsMask([int(p) for p in pads.tolist()], window)


# Keyword arguments transformers passes that change nothing here (position_ids: RoPE is already
# in the keys; the rest are flags of the model's forward).
_HARMLESS = {"position_ids", "use_cache", "cache_position", "output_hidden_states", "output_router_logits",
             "num_items_in_batch", "return_dict"}


def records_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: Any, scaling: Optional[float] = None, dropout: float = 0.0,
                      sliding_window: Optional[int] = None, softcap: Optional[float] = None,
                      **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention interface for "turboquant": (batch, q_tokens, heads, head_dim), no weights."""
    tag = getattr(key, "_turboquant", None)
    if tag is None:
        raise Error(f"attn_implementation='{ATTENTION}' attends over a turboquant.hf.TurboQuantCache, and layer "
                    f"{getattr(module, 'layer_idx', '?')} got keys from none: pass cache=TurboQuantCache(..., "
                    "config=model.config) to the forward / generate call (and use_cache=True)")
    if dropout:
        raise _unsupported(f"attention dropout {dropout} (training)")
    if kwargs.get("output_attentions"):
        raise _unsupported("output_attentions=True (there are no attention weights to return)")
    if kwargs.get("is_causal") is False or getattr(module, "is_causal", True) is False:
        raise _unsupported("bidirectional attention (is_causal=False)")
    for name, value_ in kwargs.items():
        if name not in _HARMLESS and name not in ("output_attentions", "is_causal") and value_ is not None:
            raise _unsupported(f"the attention argument {name}= (e.g. attention sinks, packed sequences)")
    if not isinstance(attention_mask, RecordsMask):
        raise _unsupported(f"an attention mask of type {type(attention_mask).__name__} (the model did not build it "
                           f"through the '{ATTENTION}' mask interface, or the caller passed one ready-made)")
    window = int(sliding_window or 0)
    if attention_mask.window != window:
        raise _unsupported(f"layer {tag.layer} attends with sliding_window={sliding_window} under a mask built "
                           f"for a window of {attention_mask.window}")
    if query.shape[2] != key.shape[2]:
        raise _unsupported(f"{query.shape[2]} queries for {key.shape[2]} new keys")
    store = tag.store
    if not tag.written:
        store.write(tag.layer, key.detach().cpu(), value.detach().cpu(), attention_mask.pads)
    else:
        # The update decoded the history (the cache did not know the attention yet): its
        # records stand, with padding stored as tokens. From now on it returns the new tokens.
        if any(attention_mask.pads) and attention_mask.pads != store.pads:
            raise Error(f"TurboQuantCache: the first update stored the left padding of rows {attention_mask.pads} "
                        f"as tokens, which attention over records cannot skip: create the cache with "
                        f"TurboQuantCache(..., config=model.config) so it knows attn_implementation='{ATTENTION}' "
                        "from the first update")
        store.attn_config = module.config
    scale = float(scaling) if scaling is not None else None
    return store.attend(tag.layer, query.detach(), scale, window, float(softcap or 0.0)), None


AttentionInterface.register(ATTENTION, records_attention)
AttentionMaskInterface.register(ATTENTION, records_mask)
