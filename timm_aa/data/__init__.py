"""Image sources shared by evaluation and training."""

from .sources import ImageSource, open_hf_dataset, open_image_folder, open_image_source

__all__ = ["ImageSource", "open_hf_dataset", "open_image_folder", "open_image_source"]
