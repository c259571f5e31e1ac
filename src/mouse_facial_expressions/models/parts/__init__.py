"""Models put together from registered parts: inputs, reference, pooling, heads, fusion (see ``base``)."""

from mouse_facial_expressions.models.parts.base import LossSettings, Part, State, part_classes, register_part
from mouse_facial_expressions.models.parts.net import BoundPart, PartsNet, bound_parts, build_net, check_parts, legacy_spec, params_of_parts, legacy_state_dict, parts_from_params

__all__ = ["LossSettings", "Part", "PartsNet", "State", "BoundPart", "bound_parts", "build_net", "check_parts", "legacy_spec", "params_of_parts", "legacy_state_dict", "part_classes",
           "parts_from_params", "register_part"]
