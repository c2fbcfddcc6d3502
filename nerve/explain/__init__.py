"""Seeing what a network learned: convolution filters and feature maps as image grids (and plots), attention
maps of transformer layers."""
from nerve.explain.attention import attention_layers, attention_maps, plot_attention
from nerve.explain.filters import (
    feature_map_grid, feature_maps, filter_grid, first_conv, image_grid, plot_feature_maps, plot_filters,
)

__all__ = ["attention_layers", "attention_maps", "feature_map_grid", "feature_maps", "filter_grid", "first_conv",
           "image_grid", "plot_attention", "plot_feature_maps", "plot_filters"]
