"""Software-defined assets: the AddressBase tables, then one package per layer (its input, its
join and its guard rails), SQL and checks beside the assets. The layers baked by this
deployment are listed in ``LAYERS``; :mod:`databaker.layers` builds each one's assets."""

from collections.abc import Collection

from databaker.assets.current_boundary_reviews import CURRENT_BOUNDARY_REVIEWS
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.assets.current_organisations import CURRENT_ORGANISATIONS
from databaker.layers import Layer

LAYERS: tuple[Layer, ...] = (CURRENT_ELECTIONS, CURRENT_BOUNDARY_REVIEWS, CURRENT_ORGANISATIONS)


class UnknownLayer(KeyError):
    """No layer of that name is baked here."""


def layer_named(name: str, layers: tuple[Layer, ...] = LAYERS) -> Layer:
    for layer in layers:
        if layer.name == name:
            return layer
    raise UnknownLayer(
        f"no layer {name!r}: the layers are {', '.join(known.name for known in layers)}"
    )


__all__ = ["LAYERS", "UnknownLayer", "assets_of", "layer_named"]


def assets_of(
    layers: tuple[Layer, ...] = LAYERS, from_database: Collection[str] = ()
) -> tuple[list, list]:
    """Every asset and asset check of the AddressBase tables and of ``layers``, those named in
    ``from_database`` with their input exported from EveryElection's database."""
    from databaker.assets import addressbase
    from databaker.layers.build import layer_definitions

    built = [layer_definitions(layer, layer.name in from_database) for layer in layers]
    assets = [*addressbase.assets, *(a for b in built for a in b.assets)]
    checks = [*addressbase.asset_checks, *(c for b in built for c in b.joined_checks)]
    return assets, checks
