"""Why a network decided and why it does not learn: attribution with Captum's names and call convention
(``Method(model).attribute(inputs, target=...)``), layer attribution, attention maps and rollout, sanity checks
(parameter randomisation, completeness, deletion), training diagnostics (gradient flow) and their pictures;
convolution filters and feature maps as image grids."""
from nerve.explain.attention import attention_layers, attention_maps, plot_attention
from nerve.explain.attribution import (
    Attribution, GradientShap, InputXGradient, IntegratedGradients, NoiseTunnel, Occlusion, Saliency,
    approximation_parameters, gauss_legendre,
)
from nerve.explain.filters import (
    feature_map_grid, feature_maps, filter_grid, first_conv, image_grid, plot_feature_maps, plot_filters,
)
from nerve.explain.gradient_flow import (
    GradientFlowMonitor, LayerProbe, check_flow, gradient_flow, plot_gradient_flow, statistic_values,
)
from nerve.explain.layer import (
    GuidedBackprop, GuidedGradCam, LayerActivation, LayerAttribution, LayerConductance, LayerGradCam,
    LayerIntegratedGradients,
)
from nerve.explain.maps import METHOD_NAMES, AttributionLogger, attribution_maps, explain_to_png, last_conv
from nerve.explain.plots import (
    attribution_grid, normalize_attr, plot_feature_attr, plot_text_attr, visualize_image_attr,
)
from nerve.explain.rollout import attention_rollout, plot_rollout, rollout
from nerve.explain.sanity import completeness_gap, deletion_curve, parameter_randomization, rankdata, spearman

__all__ = [
    "METHOD_NAMES", "Attribution", "AttributionLogger", "GradientFlowMonitor", "GradientShap", "GuidedBackprop",
    "GuidedGradCam", "InputXGradient", "IntegratedGradients", "LayerActivation", "LayerAttribution",
    "LayerConductance", "LayerGradCam", "LayerIntegratedGradients", "LayerProbe", "NoiseTunnel", "Occlusion",
    "Saliency", "approximation_parameters", "attention_layers", "attention_maps", "attention_rollout",
    "attribution_grid", "attribution_maps", "check_flow", "completeness_gap", "deletion_curve", "explain_to_png",
    "feature_map_grid", "feature_maps", "filter_grid", "first_conv", "gauss_legendre", "gradient_flow",
    "image_grid", "last_conv", "normalize_attr", "parameter_randomization", "plot_attention", "plot_feature_attr",
    "plot_feature_maps", "plot_filters", "plot_gradient_flow", "plot_rollout", "plot_text_attr", "rankdata",
    "rollout", "spearman", "statistic_values", "visualize_image_attr",
]
