"""Export folders, model cards, verification and publishing to the Hugging Face Hub."""

from .card import CardInfo, metrics_from_export, metrics_from_report, render_card
from .export import (
    CONFIG_NAME,
    METRICS_NAME,
    WEIGHTS_NAME,
    check_export,
    hub_config,
    model_args_of,
    save_weights,
    write_export,
)
from .publish import Prepared, prepare_folder
from .push import CARD_NAME, check_reachable, push_folder, resolve_token
from .verify import VerificationError, verify_folder

__all__ = [
    "CARD_NAME", "CONFIG_NAME", "METRICS_NAME", "WEIGHTS_NAME", "CardInfo", "Prepared", "VerificationError",
    "check_export", "check_reachable", "hub_config", "metrics_from_export", "metrics_from_report", "model_args_of",
    "prepare_folder", "push_folder", "render_card", "resolve_token", "save_weights", "verify_folder", "write_export",
]
