"""Loading certificate profiles from ``templates/certs/*.toml`` (through the one TOML loader)."""

from __future__ import annotations

from pathlib import Path

from station.adapters.tomlfile import load_toml
from station.domain.certificates import CertificateProfile
from station.domain.errors import ProfileError


def default_profile_dir() -> Path:
    """``templates/certs`` of the source tree the station runs from."""
    return Path(__file__).resolve().parents[3] / "templates" / "certs"


def load_profile(path: Path) -> CertificateProfile:
    """Load and validate one profile file; the profile is called by the file's stem.

    Raises:
        ProfileError: not valid TOML, an unknown key or a wrong type (naming key and file), or a
            profile a device may not have.
    """
    profile = load_toml(
        path, CertificateProfile, what="certificate profile", error=ProfileError, name=path.stem
    )
    profile.validate()
    return profile


def load_profiles(directory: Path) -> dict[str, CertificateProfile]:
    """Load every ``<name>.toml`` in ``directory`` as a profile called ``<name>``.

    Raises:
        ProfileError: the directory is missing, or a file is not valid TOML or not a valid profile.
    """
    if not directory.is_dir():
        raise ProfileError(
            f"certificate profile directory {directory} does not exist",
            remedy="Set [ca] profile_dir to the folder holding the *.toml profiles.",
            directory=str(directory),
        )
    profiles: dict[str, CertificateProfile] = {}
    for path in sorted(directory.glob("*.toml")):
        profiles[path.stem] = load_profile(path)
    return profiles
