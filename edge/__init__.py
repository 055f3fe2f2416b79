"""edge: a deterministic runtime for medical device controllers."""

__version__ = "0.1.0"
