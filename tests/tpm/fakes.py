"""A fake TPM identity reader, for fast tests of the service and the CLI around it."""

from __future__ import annotations

from dataclasses import dataclass, field

from station.domain.errors import TpmEkAbsentError
from station.domain.tpm import EkOrigin, EndorsementKey
from tests.support.paths import SHARED_TESTDATA

EK = (
    SHARED_TESTDATA
    / "tpm-ek-samples"
    / "azure-iot-sdk-csharp_SampleEndorsementKey.tpm2b_public.bin"
).read_bytes()


@dataclass
class FakeReader:
    """A TPM holding ``ek`` and the EK certificates ``certificates`` (NV index, bytes)."""

    certificates: list[tuple[int, bytes]] = field(default_factory=list)
    resident: bool = True
    calls: list[str] = field(default_factory=list)
    ek: bytes = EK
    #: Other EKs the TPM holds: template -> (TPM2B_PUBLIC, certificates, resident).
    others: dict[str, tuple[bytes, list[tuple[int, bytes]], bool]] = field(default_factory=dict)

    def read_endorsement_key(self, *, template: str, create_if_absent: bool) -> EndorsementKey:
        self.calls.append(f"ek:{template}:{create_if_absent}")
        if template in self.others:
            public = self.others[template][0]
            return EndorsementKey(public=public, template=template, origin=EkOrigin.FOUND)
        if template != "rsa2048":
            raise TpmEkAbsentError(f"no {template} EK", template=template)
        return EndorsementKey(public=self.ek, template="rsa2048", origin=EkOrigin.FOUND)

    def ensure_storage_root_key(self) -> bytes:
        self.calls.append("srk")
        return b"srk"

    def read_ek_certificates(self, template: str) -> list[tuple[int, bytes]]:
        self.calls.append(f"certs:{template}")
        return self.others[template][1] if template in self.others else self.certificates

    def prove_residency(self, ek: bytes) -> bool:
        self.calls.append("proof")
        for public, _, resident in self.others.values():
            if ek == public:
                return resident
        assert ek == self.ek
        return self.resident

    def close(self) -> None:
        pass
