"""Export folders and (later) Hub publishing."""

from .export import CONFIG_NAME, METRICS_NAME, WEIGHTS_NAME, hub_config, model_args_of, save_weights, write_export

__all__ = ["CONFIG_NAME", "METRICS_NAME", "WEIGHTS_NAME", "hub_config", "model_args_of", "save_weights",
           "write_export"]
