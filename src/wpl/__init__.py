"""wpl — Weight Plasticity Loss against multi-model forgetting (Benyahia, Yu et al., ICML 2019)."""

from .errors import ConfigError, WplError
from .fisher import ESTIMATORS
from .forgetting import ForgettingMonitor
from .plasticity import WeightPlasticity, WplConfig
from .policy import PRESETS, PolicyConfig, WplPolicy
from .runtime import resolve_device, seed_everything
from .schedule import AlphaSchedule

__all__ = ["ESTIMATORS", "PRESETS", "AlphaSchedule", "ConfigError", "ForgettingMonitor", "PolicyConfig",
           "WeightPlasticity", "WplConfig", "WplError", "WplPolicy", "resolve_device", "seed_everything"]
__version__ = "0.1.0"
