"""The built-in parts, imported for their registration."""

from mouse_facial_expressions.models.parts import attention, au, class_head, face, fusion, relative  # noqa: F401
