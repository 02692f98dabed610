"""Image sources shared by evaluation and training."""

from .sources import ImageSource, eval_resize, open_hf_dataset, open_image_folder, open_image_source

__all__ = ["ImageSource", "eval_resize", "open_hf_dataset", "open_image_folder", "open_image_source"]
