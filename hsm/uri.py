"""Key URIs: where a key lives, as one string safe to put in a config file.

Three schemes:

``pkcs11:token=station-ca;object=ca-key;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so``
    RFC 7512. Path attributes ``token``, ``object``, ``id``, ``serial``, ``manufacturer``,
    ``model``, ``type``; query attributes ``module-path`` and ``pin-source`` (a path to a 0600 PIN
    file). ``pin-value`` is refused: a URI sits in config files and the PIN must not.
``tpm:0x81000010?tcti=swtpm:path=/run/station/tpm.sock``
    A persistent handle in the station's own TPM. ``tcti`` is a TCTI loader string (default
    ``device:/dev/tpmrm0``).
``file:/path/to/key.p8``
    An encrypted PKCS#8 PEM file. Development only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

from hsm.errors import InvalidKeyUriError

_PKCS11_PATH_ATTRS = frozenset(
    {"token", "object", "id", "serial", "manufacturer", "model", "type", "library-description"}
)
_PKCS11_QUERY_ATTRS = frozenset({"module-path", "module-name", "pin-source"})
DEFAULT_TCTI = "device:/dev/tpmrm0"


@dataclass(frozen=True)
class Pkcs11Uri:
    """A parsed ``pkcs11:`` URI (RFC 7512)."""

    token: str = ""
    object: str = ""
    id: bytes = b""
    serial: str = ""
    manufacturer: str = ""
    model: str = ""
    type: str = ""
    module_path: str = ""
    pin_source: str = ""

    def describe(self) -> str:
        """A short human description ("token 'x', key 'y'")."""
        parts = [f"token {self.token!r}" if self.token else "any token"]
        if self.object:
            parts.append(f"key {self.object!r}")
        if self.id:
            parts.append(f"id {self.id.hex()}")
        return ", ".join(parts)


@dataclass(frozen=True)
class TpmUri:
    """A parsed ``tpm:`` URI: a persistent handle and the TCTI that reaches the TPM."""

    handle: int
    tcti: str = DEFAULT_TCTI

    def describe(self) -> str:
        """A short human description."""
        return f"TPM handle 0x{self.handle:08x} via {self.tcti}"


@dataclass(frozen=True)
class FileUri:
    """A parsed ``file:`` URI: an encrypted PKCS#8 key file."""

    path: Path = field(default_factory=Path)

    def describe(self) -> str:
        """A short human description."""
        return f"key file {self.path}"


KeyUri = Pkcs11Uri | TpmUri | FileUri


def parse_key_uri(text: str) -> KeyUri:
    """Parse a key URI.

    Args:
        text: a ``pkcs11:``, ``tpm:`` or ``file:`` URI.

    Raises:
        InvalidKeyUriError: unknown scheme, unknown or duplicate attribute, ``pin-value``, bad
            percent-encoding or a malformed handle.
    """
    scheme, sep, rest = text.strip().partition(":")
    if not sep:
        raise _bad(text, "it has no scheme (pkcs11:, tpm: or file:)")
    scheme = scheme.lower()
    if scheme == "pkcs11":
        return _parse_pkcs11(text, rest)
    if scheme == "tpm":
        return _parse_tpm(text, rest)
    if scheme == "file":
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise _bad(text, "it names no file")
        return FileUri(Path(_pct(text, path).decode("utf-8")))
    raise _bad(text, f"unknown scheme {scheme!r} (use pkcs11:, tpm: or file:)")


def _parse_pkcs11(text: str, rest: str) -> Pkcs11Uri:
    path_part, _, query_part = rest.partition("?")
    values: dict[str, bytes] = {}
    for chunk, allowed, sep in (
        (path_part, _PKCS11_PATH_ATTRS, ";"),
        (query_part, _PKCS11_QUERY_ATTRS, "&"),
    ):
        for item in filter(None, chunk.split(sep)):
            name, eq, raw = item.partition("=")
            name = name.strip().lower()
            if name == "pin-value":
                raise _bad(
                    text,
                    "it contains pin-value; a PIN must never be written in a URI or config file",
                )
            if not eq or name not in allowed:
                raise _bad(text, f"unknown or malformed attribute {item!r}")
            if name in values:
                raise _bad(text, f"attribute {name!r} appears twice")
            values[name] = _pct(text, raw)

    def text_of(name: str) -> str:
        try:
            return values.get(name, b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(text, f"attribute {name!r} is not UTF-8") from exc

    return Pkcs11Uri(
        token=text_of("token"),
        object=text_of("object"),
        id=values.get("id", b""),
        serial=text_of("serial"),
        manufacturer=text_of("manufacturer"),
        model=text_of("model"),
        type=text_of("type"),
        module_path=text_of("module-path"),
        pin_source=text_of("pin-source"),
    )


def _parse_tpm(text: str, rest: str) -> TpmUri:
    handle_part, _, query = rest.partition("?")
    try:
        handle = int(handle_part, 0)
    except ValueError as exc:
        raise _bad(text, f"{handle_part!r} is not a TPM handle (e.g. 0x81000010)") from exc
    if not 0x81000000 <= handle <= 0x81FFFFFF:
        raise _bad(text, "the handle must be a persistent handle (0x81000000-0x81ffffff)")
    tcti = DEFAULT_TCTI
    if query:
        name, eq, value = query.partition("=")
        if name != "tcti" or not eq or not value:
            raise _bad(text, "the only query attribute is tcti=<loader string>")
        tcti = value
    return TpmUri(handle=handle, tcti=tcti)


def _pct(text: str, raw: str) -> bytes:
    if "%" in raw:
        # unquote_to_bytes silently keeps malformed escapes; RFC 7512 wants them refused
        i = raw.find("%")
        while i != -1:
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise _bad(text, f"malformed percent-encoding near {raw[i : i + 3]!r}")
            i = raw.find("%", i + 3)
    return unquote_to_bytes(raw)


def _bad(text: str, why: str) -> InvalidKeyUriError:
    return InvalidKeyUriError(
        f"key URI {text!r} is invalid: {why}",
        remedy="Write it like pkcs11:token=station-ca;object=ca-key, "
        "tpm:0x81000010 or file:/path/key.p8.",
        uri=text,
    )


def format_pkcs11_uri(uri: Pkcs11Uri) -> str:
    """Render a :class:`Pkcs11Uri` back to text (percent-encoding every attribute value)."""
    from urllib.parse import quote

    def enc(value: str | bytes) -> str:
        return quote(value, safe="")

    path = [
        f"{name}={enc(value)}"
        for name, value in (
            ("token", uri.token),
            ("manufacturer", uri.manufacturer),
            ("model", uri.model),
            ("serial", uri.serial),
            ("object", uri.object),
            ("type", uri.type),
        )
        if value
    ]
    if uri.id:
        path.append(f"id={enc(uri.id)}")
    query = [
        f"{name}={enc(value)}"
        for name, value in (("module-path", uri.module_path), ("pin-source", uri.pin_source))
        if value
    ]
    return "pkcs11:" + ";".join(path) + ("?" + "&".join(query) if query else "")
