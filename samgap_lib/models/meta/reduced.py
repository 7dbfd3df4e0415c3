"""Meta's SAM3 at reduced sizes: replacements for ``sam3.model_builder``'s private factories.

Meta builds SAM3 at one size only (``build_sam3_image_model``: 1008 px, 1024-wide ViT, 200
queries). `reduced_factories` returns small versions of its ``_create_*`` factories, sized by a
``dims`` dict (``resolution``, ``d_model``, ``vit_dim``, ``vit_depth``, ``vit_heads``,
``text_width``, ``text_layers``, ``text_heads``, ``ffn``, ``heads``, ``num_queries``), which
`samgap_lib.models.meta.sam3.build_meta_sam3` swaps in for the duration of one build: the test
checkpoints (`samgap_lib.models.testing.write_tiny_meta_sam3`) and the reduced benchmarks are
built, and reloaded from the ``.samgap.json`` beside their weights, this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["reduced_factories"]


def reduced_factories(dims: Mapping[str, int]) -> dict[str, Any]:
    """Replacements for sam3.model_builder's private ``_create_*`` factories that build SAM3
    at the sizes in ``dims`` (see the module docstring)."""
    import sam3.model_builder as mb
    from torch import nn

    d, ffn, heads, res = dims["d_model"], dims["ffn"], dims["heads"], dims["resolution"]

    def mha(dropout: float = 0.0, batch_first: bool = False) -> Any:
        return mb.MultiheadAttention(
            num_heads=heads, dropout=dropout, embed_dim=d, batch_first=batch_first
        )

    def position_encoding(precompute_resolution: int | None = None) -> Any:
        return mb.PositionEmbeddingSine(
            num_pos_feats=d,
            normalize=True,
            scale=None,
            temperature=10000,
            precompute_resolution=res if precompute_resolution is not None else None,
        )

    def vit_backbone(compile_mode: Any = None) -> Any:
        grid = res // 14
        return mb.ViT(
            img_size=res,
            pretrain_img_size=res,
            patch_size=14,
            embed_dim=dims["vit_dim"],
            depth=dims["vit_depth"],
            num_heads=dims["vit_heads"],
            mlp_ratio=2.0,
            norm_layer="LayerNorm",
            drop_path_rate=0.0,
            qkv_bias=True,
            use_abs_pos=True,
            tile_abs_pos=True,
            global_att_blocks=(dims["vit_depth"] - 1,),
            rel_pos_blocks=(),
            use_rope=True,
            use_interp_rope=True,
            window_size=grid // 2,
            pretrain_use_cls_token=True,
            retain_cls_token=False,
            ln_pre=True,
            ln_post=False,
            return_interm_layers=False,
            bias_patch_embed=False,
            compile_mode=compile_mode,
        )

    def vit_neck(
        position_encoding: Any, vit_backbone: Any, enable_inst_interactivity: bool = False
    ) -> Any:
        return mb.Sam3DualViTDetNeck(
            position_encoding=position_encoding,
            d_model=d,
            scale_factors=[4.0, 2.0, 1.0, 0.5],
            trunk=vit_backbone,
            add_sam2_neck=enable_inst_interactivity,
        )

    def text_encoder(bpe_path: str) -> Any:
        return mb.VETextEncoder(
            tokenizer=mb.SimpleTokenizer(bpe_path=bpe_path),
            d_model=d,
            width=dims["text_width"],
            heads=dims["text_heads"],
            layers=dims["text_layers"],
        )

    def enc_layer(**kw: Any) -> Any:
        return mb.TransformerEncoderLayer(
            activation="relu", d_model=d, dim_feedforward=ffn, dropout=0.0, **kw
        )

    def transformer_encoder() -> Any:
        layer = enc_layer(
            pos_enc_at_attn=True,
            pos_enc_at_cross_attn_keys=False,
            pos_enc_at_cross_attn_queries=False,
            pre_norm=True,
            self_attention=mha(batch_first=True),
            cross_attention=mha(batch_first=True),
        )
        return mb.TransformerEncoderFusion(
            layer=layer,
            num_layers=1,
            d_model=d,
            num_feature_levels=1,
            frozen=False,
            use_act_checkpoint=False,
            add_pooled_text_to_img_feat=False,
            pool_text_with_mask=True,
        )

    def transformer_decoder() -> Any:
        layer = mb.TransformerDecoderLayer(
            activation="relu",
            d_model=d,
            dim_feedforward=ffn,
            dropout=0.0,
            cross_attention=mha(),
            n_heads=heads,
            use_text_cross_attention=True,
        )
        return mb.TransformerDecoder(
            layer=layer,
            num_layers=1,
            num_queries=dims["num_queries"],
            return_intermediate=True,
            box_refine=True,
            num_o2m_queries=0,
            dac=True,
            boxRPB="log",
            d_model=d,
            frozen=False,
            interaction_layer=None,
            dac_use_selfatt_ln=True,
            resolution=res,
            stride=14,
            use_act_checkpoint=False,
            presence_token=True,
        )

    def dot_product_scoring() -> Any:
        mlp = mb.MLP(
            input_dim=d,
            hidden_dim=ffn,
            output_dim=d,
            num_layers=2,
            dropout=0.0,
            residual=True,
            out_norm=nn.LayerNorm(d),
        )
        return mb.DotProductScoring(d_model=d, d_proj=d, prompt_mlp=mlp)

    def segmentation_head(compile_mode: Any = None) -> Any:
        pixel_decoder = mb.PixelDecoder(
            num_upsampling_stages=3,
            interpolation_mode="nearest",
            hidden_dim=d,
            compile_mode=compile_mode,
        )
        return mb.UniversalSegmentationHead(
            hidden_dim=d,
            upsampling_stages=3,
            aux_masks=False,
            presence_head=False,
            dot_product_scorer=None,
            act_ckpt=False,
            cross_attend_prompt=mha(),
            pixel_decoder=pixel_decoder,
        )

    def geometry_encoder() -> Any:
        layer = enc_layer(
            pos_enc_at_attn=False,
            pre_norm=True,
            self_attention=mha(),
            pos_enc_at_cross_attn_queries=False,
            pos_enc_at_cross_attn_keys=True,
            cross_attention=mha(),
        )
        return mb.SequenceGeometryEncoder(
            pos_enc=position_encoding(),
            encode_boxes_as_points=False,
            points_direct_project=True,
            points_pool=True,
            points_pos_enc=True,
            boxes_direct_project=True,
            boxes_pool=True,
            boxes_pos_enc=True,
            d_model=d,
            num_layers=1,
            layer=layer,
            use_act_ckpt=False,
            add_cls=True,
            add_post_encode_proj=True,
        )

    return {
        "_create_position_encoding": position_encoding,
        "_create_vit_backbone": vit_backbone,
        "_create_vit_neck": vit_neck,
        "_create_text_encoder": text_encoder,
        "_create_transformer_encoder": transformer_encoder,
        "_create_transformer_decoder": transformer_decoder,
        "_create_dot_product_scoring": dot_product_scoring,
        "_create_segmentation_head": segmentation_head,
        "_create_geometry_encoder": geometry_encoder,
    }
