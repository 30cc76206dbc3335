"""wpl — Weight Plasticity Loss against multi-model forgetting (Benyahia, Yu et al., ICML 2019)."""

from .errors import ConfigError, WplError
from .fisher import ESTIMATORS
from .forgetting import ForgettingMonitor
from .plasticity import WeightPlasticity, WplConfig
from .runtime import resolve_device, seed_everything
from .schedule import AlphaSchedule

__all__ = ["ESTIMATORS", "AlphaSchedule", "ConfigError", "ForgettingMonitor", "WeightPlasticity", "WplConfig",
           "WplError", "resolve_device", "seed_everything"]
__version__ = "0.1.0"
