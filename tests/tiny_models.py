"""Tiny vision-language models built from hand-written configs, saved once per test session.

They have random weights: tests check fusekit's real code paths (loading from --model-path, preprocessing,
generation, parsing, shapes, metadata), not the quality of the words.
"""

from __future__ import annotations

import pytest

WORDS = ["a", "photo", "of", "person", "car", "street", "night", "bright", "dark", "thermal", "image", "the", "in",
         "tree", "sky", "lamp", "road", "warm", "region", "sharp", "blurred", ".", ","]


def _word_tokenizer(special: list[str], extra: list[str] = (), **tokens):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: index for index, word in enumerate(special + WORDS + list(extra))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", **tokens), len(vocab)


def build_blip2_captioner(folder):
    import torch
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, Blip2QFormerConfig,
                              Blip2VisionConfig, OPTConfig)
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    tokenizer, size = _word_tokenizer(["<pad>", "</s>", "<unk>", "<image>"], pad_token="<pad>", eos_token="</s>", bos_token="</s>")
    vision = Blip2VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8)
    qformer = Blip2QFormerConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, encoder_hidden_size=32, vocab_size=size)
    text = OPTConfig(vocab_size=size, hidden_size=32, num_hidden_layers=1, ffn_dim=64, num_attention_heads=2, max_position_embeddings=64,
                     word_embed_proj_dim=32, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    config = Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(), text_config=text.to_dict(),
                         num_query_tokens=4, image_token_index=3)
    torch.manual_seed(0)
    Blip2ForConditionalGeneration(config).eval().save_pretrained(folder)
    Blip2Processor(image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=tokenizer, num_query_tokens=4).save_pretrained(folder)


def build_florence2(folder):
    import torch
    from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Florence2Processor, Florence2VisionConfig
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    locations = [f"<loc_{i}>" for i in range(1000)]
    tokenizer, size = _word_tokenizer(["<pad>", "<s>", "</s>", "<unk>", "<image>", "locate", "objects", "with", "their", "descriptions"],
                                      locations, pad_token="<pad>", eos_token="</s>", bos_token="<s>",
                                      extra_special_tokens={"image_token": "<image>"})
    vision = Florence2VisionConfig(depths=(1, 1), patch_size=(7, 3), patch_stride=(4, 2), patch_padding=(3, 1), patch_prenorm=(False, True),
                                   embed_dim=(16, 32), num_heads=(2, 4), num_groups=(2, 4), window_size=2, projection_dim=32,
                                   max_position_embeddings=8, max_temporal_embeddings=4, drop_path_rate=0.0)
    text = BartConfig(vocab_size=size, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                      encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=0, bos_token_id=1,
                      eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=None)
    torch.manual_seed(0)
    Florence2ForConditionalGeneration(Florence2Config(vision_config=vision.to_dict(), text_config=text.to_dict(), image_token_id=4)).eval().save_pretrained(folder)
    # 32 × 32 input → 17 image tokens (16 patches of the last stage + the pooled one).
    image_processor = CLIPImageProcessorPil(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32},
                                            do_center_crop=False, image_seq_length=17)
    Florence2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def build_sam(folder):
    import torch
    from transformers import SamConfig, SamMaskDecoderConfig, SamModel, SamProcessor, SamPromptEncoderConfig, SamVisionConfig
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    vision = SamVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=64, patch_size=8,
                             output_channels=16, window_size=4, global_attn_indexes=[0], mlp_dim=64, num_pos_feats=8)
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32, iou_head_hidden_dim=16)
    torch.manual_seed(0)
    SamModel(SamConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(), mask_decoder_config=decoder.to_dict())).eval().save_pretrained(folder)
    SamProcessor(image_processor=SamImageProcessorPil(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                                                      mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16})).save_pretrained(folder)


def _bert_tokenizer():
    from transformers import BertTokenizer

    # `vocab=`: BertTokenizer(vocab_file=...) silently ignores the file in transformers 5.
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    return BertTokenizer(vocab={word: index for index, word in enumerate(words)}), len(words)


def build_blip2_text(folder):
    import torch
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2TextModelWithProjection, Blip2VisionConfig

    tokenizer, size = _bert_tokenizer()
    qformer = Blip2QFormerConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, encoder_hidden_size=32,
                                 vocab_size=size, max_position_embeddings=64, use_qformer_text_input=True)
    vision = Blip2VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8)
    config = Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(), num_query_tokens=4,
                         image_text_hidden_size=16, use_qformer_text_input=True)
    torch.manual_seed(0)
    Blip2TextModelWithProjection(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_clip(folder):
    """One folder with CLIP's text model, vision model with projection, and a tokenizer."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    tokenizer, size = _bert_tokenizer()
    text = CLIPTextConfig(vocab_size=size, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                          max_position_embeddings=16, projection_dim=24, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                              patch_size=8, projection_dim=24)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=24)).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_causal_lm(folder):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer, size = _word_tokenizer(["<|endoftext|>", "<unk>"], eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=size, n_positions=1024, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


BUILDERS = {
    "blip2": build_blip2_captioner,
    "florence2": build_florence2,
    "sam": build_sam,
    "blip2-text": build_blip2_text,
    "clip": build_clip,
    "llm": build_causal_lm,
}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """name → folder of a saved tiny model (built on first use, once per session)."""
    root = tmp_path_factory.mktemp("tiny-models")
    for name, build in BUILDERS.items():
        build(root / name)
    return {name: root / name for name in BUILDERS}


VLM_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
                "{% else %}{{ c['text'] }} {% endif %}{% endfor %}\n{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}")


def build_vlm(folder):
    """A tiny LLaVA (CLIP vision tower + Llama text model), the simplest AutoModelForImageTextToText."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer, size = _word_tokenizer(["<pad>", "<s>", "</s>", "<unk>", "<image>", "assistant", "user", "system", ":"],
                                      pad_token="<pad>", eos_token="</s>", bos_token="<s>", extra_special_tokens={"image_token": "<image>"})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8)
    text = LlamaConfig(vocab_size=size, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=2, max_position_embeddings=2048, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    config = LlavaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), image_token_index=4,
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).eval().save_pretrained(folder)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    # 32 x 32 input, 8 x 8 patches: 16 image tokens once the CLS token is dropped ("default" strategy).
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                   num_additional_image_tokens=1, chat_template=VLM_TEMPLATE).save_pretrained(folder)


def build_bert(folder):
    """A tiny BERT encoder (AutoModel + tokenizer), the shape of sentence-transformers' MiniLM folders."""
    import torch
    from transformers import BertConfig, BertModel

    tokenizer, size = _bert_tokenizer()
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=64)).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


BUILDERS["vlm"] = build_vlm
BUILDERS["bert"] = build_bert
