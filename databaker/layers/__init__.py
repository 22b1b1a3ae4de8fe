"""The layer machinery every layer shares: declare a :class:`Layer`, get the rest.

- ``layer.py``: what a layer declares (:class:`Layer`, :class:`LayerInput`, :class:`JoinRun`);
- ``build.py``: the Dagster definitions made from it (:func:`layer_definitions`);
- ``joined.py``, ``version.py``, ``published.py``: the joined table and its checks, the bake's
  version (manifest, diff, guard rails), the published layer;
- ``guard_rails.py``: rails every layer can use, and the means to write its own;
- ``automation.py``: the layer's jobs, the sensor on its input, its nightly rebuild;
- ``outcode_files.py``, ``versions.py``, ``diff.py``: cutting a joined table into outcode files,
  versions and publishing, what a bake changes.
"""

from databaker.layers.layer import JoinRun, Layer, LayerInput

__all__ = ["JoinRun", "Layer", "LayerInput"]
