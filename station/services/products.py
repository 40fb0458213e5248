"""Product recipes for the interfaces: read without opening the identity store.

A technician reads a board's TPM (``station tpm read --product``) on a station that may not have
a database yet, so the recipe must not come through a service that opens the store.
"""

from __future__ import annotations

from station.domain.products import ProductRecipe
from station.ports import ProductCatalog


class ProductService:
    """Look up product recipes (version-controlled files, checked on load)."""

    def __init__(self, catalog: ProductCatalog) -> None:
        self._catalog = catalog

    def recipe(self, product: str) -> ProductRecipe:
        """Product ``product``'s recipe (loaded and checked).

        Raises:
            NotFoundError: no such product; ValidationError: its recipe is invalid.
        """
        return self._catalog.product(product)

    def names(self) -> list[str]:
        """The names of every product recipe, sorted."""
        return sorted(self._catalog.product_names())
