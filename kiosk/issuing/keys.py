"""Signing keys of issuers: health-declaration issuers, and demo/test DCC document signers.

An issuer's tool, never part of the firmware (a kiosk only ever holds
certificates, see :mod:`kiosk.trust.store`).

An :class:`IssuerKey` is a private key with its self-signed certificate. The
certificate is what a kiosk trusts (``[trust] paths``); its kid follows the
EU DCC rule (first 8 bytes of the SHA-256 of the DER certificate), so one
trust store serves both formats. The private-key file holds the key and the
certificate as two PEM blocks, so ``IssuerKey.load(private_path)`` alone
gives a working signer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from kiosk.errors import KioskValueError
from kiosk.trust.store import USAGE_OIDS, kid_of

ALGORITHMS = ("Ed25519", "ES256", "PS256")


class KeyFileError(KioskValueError):
    """A key file that cannot be used; the message names the path."""


@dataclass(frozen=True)
class IssuerKey:
    """A private signing key and its certificate."""

    private_key: Any
    certificate: x509.Certificate

    @property
    def alg(self) -> str:
        """COSE algorithm name this key signs with: Ed25519 (EdDSA), ES256 or PS256."""
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return "Ed25519"
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return "ES256"
        return "PS256"

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def kid(self) -> bytes:
        """8-byte key id: first 8 bytes of the SHA-256 of the DER certificate."""
        return kid_of(self.certificate_der)

    @classmethod
    def generate(cls, alg: str = "Ed25519", *, common_name: str = "Kiosk health-declaration issuer",
                 country: str = "VN", days: int = 3650, dcc_types: tuple[str, ...] = (),
                 not_before: datetime | None = None, not_after: datetime | None = None) -> "IssuerKey":
        """A new key with a self-signed certificate valid for ``days``.

        ``dcc_types`` (vaccination/test/recovery) adds the EU DCC key-usage OIDs,
        for a demo document signer; leave empty for a declaration issuer. ``not_before`` /
        ``not_after`` set the validity explicitly (tests of signer validity).
        """
        if alg == "Ed25519":
            key: Any = ed25519.Ed25519PrivateKey.generate()
        elif alg == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        elif alg == "PS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(f"unknown algorithm {alg!r} (known: {', '.join(ALGORITHMS)})")
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(timezone.utc).replace(microsecond=0)
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or now - timedelta(days=1))
                   .not_valid_after(not_after or now + timedelta(days=days)))
        if dcc_types:
            oids = [x509.ObjectIdentifier(USAGE_OIDS[t]) for t in dcc_types]
            builder = builder.add_extension(x509.ExtendedKeyUsage(oids), critical=False)
        digest = None if alg == "Ed25519" else hashes.SHA256()
        return cls(key, builder.sign(key, digest))

    def save(self, private_path: str | os.PathLike, certificate_path: str | os.PathLike) -> None:
        """Write the private key (with its certificate, PEM, mode 0600) and the certificate alone (PEM)."""
        key_pem = self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption())
        cert_pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        p = Path(private_path)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem + cert_pem)
        Path(certificate_path).write_bytes(cert_pem)

    @classmethod
    def load(cls, private_path: str | os.PathLike, certificate_path: str | os.PathLike | None = None) -> "IssuerKey":
        """Read a key file written by :meth:`save` (key and certificate in one file), or a
        private key and a separate certificate file; KeyFileError names the path on any problem."""
        p = Path(private_path)
        try:
            data = p.read_bytes()
            if certificate_path is not None:
                data = data.split(b"-----BEGIN CERTIFICATE-----")[0] + Path(certificate_path).read_bytes()
        except OSError as exc:
            raise KeyFileError(f"{exc.filename or p}: cannot read: {exc.strerror or exc}") from None
        start = data.find(b"-----BEGIN CERTIFICATE-----")
        if start < 0 or b"PRIVATE KEY-----" not in data:
            raise KeyFileError(f"{p}: needs a PEM private key followed by its certificate (made by `kiosk issue keygen`)")
        try:
            key = serialization.load_pem_private_key(data[:start], password=None)
            cert = x509.load_pem_x509_certificate(data[start:])
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{p}: bad key or certificate: {exc}") from None
        if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise KeyFileError(f"{p}: key type {type(key).__name__} is not Ed25519, EC P-256 or RSA")
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name != "secp256r1":
            raise KeyFileError(f"{p}: EC keys must be P-256 for ES256")
        if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
                key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise KeyFileError(f"{p}: the certificate does not belong to the private key")
        return cls(key, cert)
