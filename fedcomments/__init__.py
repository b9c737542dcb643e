"""fedcomments: a self-hosted comment server that joins a blog to the fediverse."""

__version__ = "0.1.0"
