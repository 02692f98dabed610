"""Model cards, verification and publishing to the Hugging Face Hub; the export folders they publish are
:mod:`timm_aa.weights.export`'s (re-exported here, with the layout's file names)."""

from ..infra.layout import CARD as CARD_NAME
from ..infra.layout import CONFIG as CONFIG_NAME
from ..infra.layout import METRICS as METRICS_NAME
from ..infra.layout import WEIGHTS as WEIGHTS_NAME
from ..weights.export import check_export, hub_config, model_args_of, save_weights, write_export
from .card import CardInfo, check_card_info, metrics_from_export, metrics_from_report, render_card
from .publish import Prepared, prepare_folder
from .push import check_reachable, push_folder, resolve_token
from .verify import VerificationError, verify_folder

__all__ = [
    "CARD_NAME", "CONFIG_NAME", "METRICS_NAME", "WEIGHTS_NAME", "CardInfo", "Prepared", "VerificationError",
    "check_card_info", "check_export", "check_reachable", "hub_config", "metrics_from_export", "metrics_from_report",
    "model_args_of", "prepare_folder", "push_folder", "render_card", "resolve_token", "save_weights", "verify_folder",
    "write_export",
]
