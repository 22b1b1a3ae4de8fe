"""Benchmarks of the bake against peer methods; ``python -m benchmarks.bake`` is the entry point.

Nothing here is part of the installed package: it runs from a checkout, with the project root
as the working directory.
"""
