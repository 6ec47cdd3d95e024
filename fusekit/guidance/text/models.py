"""Text encoders backed by pretrained models: BLIP-2's Q-Former text model (FILM), CLIP's text model, and any
Hugging Face encoder (``hf``: an AutoModel + tokenizer folder such as sentence-transformers' all-MiniLM-L6-v2).

They return per-token states, the shape FILM's cross-attention consumes: BLIP-2 gives the 768-d Q-Former hidden
states (FILM's features; LAVIS calls them ``text_embeds``) or, with ``--projected``, the 256-d projected ones; CLIP
gives its text transformer's last hidden states; ``hf`` gives the last hidden states, or with ``--pooled`` one
row per text, their mean over the tokens (what sentence-transformers uses as a sentence embedding). Texts longer
than the model's position limit are cut (CLIP: 77 tokens). Each encoder names the config.json model types it can
use, so a folder of the wrong kind is refused before a model is built from it.
"""

from __future__ import annotations

import functools

from ...errors import FusekitError
from .base import TextEncoder


class _ModelEncoder(TextEncoder):
    model_class = ""
    what = ""
    expect: tuple[str, ...] = ()  # config.json model types this encoder can use; () = any

    @functools.cached_property
    def loaded(self):
        import transformers

        from ...hub import load_pretrained, model_device

        model_id = self.options.model_id or self.default_model
        device, dtype = model_device(self.options)
        model = load_pretrained(getattr(transformers, self.model_class).from_pretrained, model_id, self.options.model_path, self.what,
                                self.expect)
        tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, model_id, self.options.model_path, f"{self.what} tokenizer")
        return tokenizer, model.to(device=device, dtype=dtype).eval(), device

    def _limit(self, model) -> int:
        return min(self.options.max_tokens, int(self._positions(model)))

    def _positions(self, model) -> int:
        raise NotImplementedError

    def _states(self, model, input_ids, attention_mask):
        raise NotImplementedError

    def _pooled(self, states):
        """One text's real token states → what the encoder returns for it (``hf --pooled``: their mean)."""
        return states

    def encode(self, texts: list[str]) -> list:
        """--batch-size texts per forward pass, right-padded to the longest with the attention mask; each text keeps
        only its real tokens' rows, so the states equal those of encoding it alone."""
        import torch

        tokenizer, model, device = self.loaded
        size = max(1, self.options.batch_size) if tokenizer.pad_token is not None else 1  # no pad token: one by one
        outputs = []
        for start in range(0, len(texts), size):
            chunk = texts[start:start + size]
            encoded = tokenizer(chunk, return_tensors="pt", truncation=True, max_length=self._limit(model),
                                padding=len(chunk) > 1)
            with torch.inference_mode():
                states = self._states(model, encoded["input_ids"].to(device), encoded["attention_mask"].to(device))
            for row, mask in zip(states, encoded["attention_mask"].to(states.device).bool()):
                outputs.append(self._pooled(row[mask]).float().cpu().contiguous())
        return outputs


class Blip2TextEncoder(_ModelEncoder):
    """BLIP-2 Q-Former text features (Blip2TextModelWithProjection), as FILM uses."""

    name = "blip2"
    default_model = "Salesforce/blip2-itm-vit-g"
    model_class = "Blip2TextModelWithProjection"
    what = "BLIP-2 Q-Former text model"
    expect = ("blip-2",)

    def _positions(self, model) -> int:
        return model.config.qformer_config.max_position_embeddings

    @property
    def dim(self) -> int:
        config = self.loaded[1].config
        return int(config.image_text_hidden_size if self.options.projected else config.qformer_config.hidden_size)

    def _states(self, model, input_ids, attention_mask):
        output = model(input_ids=input_ids, attention_mask=attention_mask)
        return output.text_embeds if self.options.projected else output.last_hidden_state


class ClipTextEncoder(_ModelEncoder):
    """CLIP text transformer token states (CLIPTextModel)."""

    name = "clip"
    default_model = "openai/clip-vit-base-patch32"
    model_class = "CLIPTextModel"
    what = "CLIP text model"
    expect = ("clip", "clip_text_model")

    def _positions(self, model) -> int:
        return model.config.max_position_embeddings

    @property
    def dim(self) -> int:
        return int(self.loaded[1].config.hidden_size)

    def _states(self, model, input_ids, attention_mask):
        return model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class HFTextEncoder(_ModelEncoder):
    """Any Hugging Face text encoder (AutoModel + AutoTokenizer): token states, or their mean with --pooled."""

    name = "hf"
    default_model = "sentence-transformers/all-MiniLM-L6-v2"
    model_class = "AutoModel"
    what = "Hugging Face text encoder"

    def _positions(self, model) -> int:
        return getattr(model.config, "max_position_embeddings", None) or self.options.max_tokens

    @property
    def dim(self) -> int:
        return int(self.loaded[1].config.hidden_size)

    def _states(self, model, input_ids, attention_mask):
        try:
            states = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        except (TypeError, ValueError, AttributeError) as exc:  # e.g. a vision-language model that needs pixels too
            raise FusekitError(f"{self.model_id} ({model.config.model_type}) does not encode text alone ({exc})",
                               "give the folder of a text encoder such as BERT, RoBERTa or MiniLM") from exc
        return states

    def _pooled(self, states):
        return states.mean(dim=0, keepdim=True) if self.options.pooled else states
