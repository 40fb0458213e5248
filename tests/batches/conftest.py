"""Batches to the cloud: the fixtures live in tests/support/cloud.py (the GUI's batches view uses
them too); this folder's tests get them from here."""

from tests.support.cloud import (
    client_limits,
    cloud,
    cloud_config_file,
    conforms,
    dps_limits,
    dps_options,
    fill_batch,
    pki,
    sym_cloud,
    sym_push_templates,
)

__all__ = [  # pytest finds fixtures by name in a conftest
    "client_limits",
    "cloud",
    "cloud_config_file",
    "conforms",
    "dps_limits",
    "dps_options",
    "fill_batch",
    "pki",
    "sym_cloud",
    "sym_push_templates",
]
