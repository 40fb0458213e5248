"""Read ``templates/products/*.toml`` and ``templates/enrollments/*.toml`` into domain values.

Each file is validated completely when it is loaded: an unknown key, a wrong type or a rule the
domain refuses is reported with the file and the key, before any board is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from station.adapters.tomlfile import load_toml
from station.domain.enrollments import EnrollmentTemplate
from station.domain.errors import NotFoundError, StationError, ValidationError
from station.domain.products import CredentialPolicyRef, ProductRecipe, check_sample


class TemplateError(ValidationError):
    """A template file is unreadable or invalid."""

    code = "template.invalid"


_T = TypeVar("_T")


def _load(cls: type[_T], path: Path, table: str) -> _T:
    try:
        return load_toml(path, cls, what="template", error=TemplateError, table=table)
    except TemplateError:
        raise
    except StationError as exc:  # a domain rule refused the values
        raise TemplateError(f"{path}: {exc.message}", remedy=exc.remedy, file=str(path)) from exc


def load_product(path: Path) -> ProductRecipe:
    """Load and validate one product recipe (``[product]`` table)."""
    recipe = _load(ProductRecipe, path, "product")
    if recipe.name != path.stem:
        raise TemplateError(
            f"{path}: product name {recipe.name!r} must match the file name {path.stem!r}",
            file=str(path),
        )
    try:
        check_sample(recipe)
    except StationError as exc:
        raise TemplateError(f"{path}: {exc.message}", remedy=exc.remedy, file=str(path)) from exc
    return recipe


def load_enrollment_template(path: Path) -> EnrollmentTemplate:
    """Load and validate one enrollment template (``[enrollment]`` table)."""
    template = _load(EnrollmentTemplate, path, "enrollment")
    if template.name != path.stem:
        raise TemplateError(
            f"{path}: template name {template.name!r} must match the file name {path.stem!r}",
            file=str(path),
        )
    return template


def load_credential_policy(path: Path) -> CredentialPolicyRef:
    """Load one DPS credential policy (``[credential_policy]`` table)."""
    policy = _load(CredentialPolicyRef, path, "credential_policy")
    if policy.name != path.stem:
        raise TemplateError(
            f"{path}: policy name {policy.name!r} must match the file name {path.stem!r}",
            file=str(path),
        )
    return policy


class TemplateLibrary:
    """The products and enrollment templates under one ``templates/`` directory."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def product_names(self) -> list[str]:
        """Names of the product recipes."""
        return sorted(p.stem for p in (self._root / "products").glob("*.toml"))

    def product(self, name: str) -> ProductRecipe:
        """Load one product recipe by name.

        Raises:
            NotFoundError: no such recipe.
            TemplateError: the recipe is invalid.
        """
        path = self._root / "products" / f"{name}.toml"
        if not path.is_file():
            raise NotFoundError(
                f"no product recipe called {name!r}",
                remedy=f"Known products: {', '.join(self.product_names()) or 'none'}.",
                product=name,
            )
        return load_product(path)

    def enrollment_template(self, name: str) -> EnrollmentTemplate:
        """Load one enrollment template by name."""
        path = self._root / "enrollments" / f"{name}.toml"
        if not path.is_file():
            raise NotFoundError(f"no enrollment template called {name!r}", template=name)
        return load_enrollment_template(path)

    def credential_policy(self, name: str) -> CredentialPolicyRef:
        """The DPS credential policy ``name`` (``credential-policies/<name>.toml``).

        Raises:
            NotFoundError: the admin listed no such policy.
            TemplateError: its file is invalid.
        """
        path = self._root / "credential-policies" / f"{name}.toml"
        if not path.is_file():
            known = sorted(p.stem for p in (self._root / "credential-policies").glob("*.toml"))
            raise NotFoundError(
                f"no DPS credential policy called {name!r}",
                remedy=f"Known policies: {', '.join(known) or 'none'}. Ask the cloud operator "
                "for the policy's name and list it under templates/credential-policies.",
                credential_policy=name,
            )
        return load_credential_policy(path)

    def check_all(self) -> list[str]:
        """Load every recipe and template; return the names checked (raises on the first bad)."""
        checked = [f"products/{self.product(n).name}" for n in self.product_names()]
        for path in sorted((self._root / "enrollments").glob("*.toml")):
            checked.append(f"enrollments/{load_enrollment_template(path).name}")
        for path in sorted((self._root / "credential-policies").glob("*.toml")):
            checked.append(f"credential-policies/{load_credential_policy(path).name}")
        return checked
