"""mouse-facial-expressions (mfe): score sickness, pain and stress from video of a mouse's face.

Pipeline: prepare -> keypoints -> extract -> task -> train -> evaluate -> predict.
Each stage is a command (``mfe <stage> --help``) and a library function.
"""

from mouse_facial_expressions.config import Config, ConfigError, load_config

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "load_config", "__version__"]
