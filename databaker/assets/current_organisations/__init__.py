"""The current-organisations layer: every address with the organisations that run it."""

from databaker.assets.current_organisations.layer import CURRENT_ORGANISATIONS

__all__ = ["CURRENT_ORGANISATIONS"]
