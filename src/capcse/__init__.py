"""capcse: contrastive sentence and image-text embeddings, and their evaluation."""

__version__ = "0.1.0"
