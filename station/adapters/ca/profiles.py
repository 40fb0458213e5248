"""Loading certificate profiles from ``templates/certs/*.toml``."""

from __future__ import annotations

from pathlib import Path

from station.domain.certificates import CertificateProfile
from station.domain.errors import ProfileError
from station.inputs import read_toml


def default_profile_dir() -> Path:
    """``templates/certs`` of the source tree the station runs from."""
    return Path(__file__).resolve().parents[3] / "templates" / "certs"


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
        raw = read_toml(path, what="certificate profile", error=ProfileError)
        profiles[path.stem] = CertificateProfile.from_mapping(path.stem, raw)
    return profiles
