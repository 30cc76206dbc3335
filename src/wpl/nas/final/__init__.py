"""Training a found cell from scratch: the space-independent loop (``loop``) and the command's flags (``flags``)."""

from .loop import FinalJob, arch_of_run, list_runs, run_folder, train_final

__all__ = ["FinalJob", "arch_of_run", "list_runs", "run_folder", "train_final"]
