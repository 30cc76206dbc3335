"""wpl — Weight Plasticity Loss against multi-model forgetting (Benyahia, Yu et al., ICML 2019)."""

from .errors import WplError
from .fisher import ESTIMATORS
from .plasticity import WeightPlasticity
from .runtime import resolve_device, seed_everything
from .schedule import AlphaSchedule

__all__ = ["ESTIMATORS", "AlphaSchedule", "WeightPlasticity", "WplError", "resolve_device", "seed_everything"]
__version__ = "0.1.0"
