"""The certificates a real kube-apiserver needs, made fresh for each control plane.

Why: kube-apiserver authenticates clients by certificate (the admin is CN=admin in ``system:masters``), signs
ServiceAccount tokens with its own key pair, and, for aggregated APIs, presents a front-proxy client certificate
that the extension server checks against a separate CA. Everything is generated per run under ``DIR/pki`` so
no test shares a secret with another and nothing is committed. ECDSA P-256 keys: fast to make, and accepted
for TLS, client auth and ServiceAccount signing (ES256).

Later steps (a KubeMacPool-like admission webhook, an aggregated API server) get serving certificates from
:func:`issue` with the same cluster CA, so the apiserver trusts them through ``caBundle``/``APIService``.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from reconciler.testing.controlplane.errors import ControlPlaneUnavailable

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # pragma: no cover - depends on the environment
    x509 = None  # type: ignore[assignment]

FRONT_PROXY_CLIENT = "front-proxy-client"
_VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Pki:
    """Paths of the files written under ``DIR/pki`` (PEM)."""

    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    @property
    def ca_crt(self) -> Path:
        return self.path("ca.crt")

    @property
    def ca_key(self) -> Path:
        return self.path("ca.key")

    @property
    def admin_crt(self) -> Path:
        return self.path("admin.crt")

    @property
    def admin_key(self) -> Path:
        return self.path("admin.key")


def _require() -> None:
    if x509 is None:
        raise ControlPlaneUnavailable(
            "the 'cryptography' package is not installed (needed to make the control plane's certificates)"
        )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load(pki: Pki, ca: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pki.path(f"{ca}.crt").read_bytes())
    key = serialization.load_pem_private_key(pki.path(f"{ca}.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _make_ca(pki: Pki, name: str, cn: str) -> None:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(pki.path(f"{name}.key"), key)
    _write_cert(pki.path(f"{name}.crt"), cert)


def issue(pki: Pki, name: str, cn: str, *, ca: str = "ca", org: str | None = None,
          hosts: tuple[str, ...] = (), client: bool = False) -> tuple[Path, Path]:
    """Sign ``DIR/pki/<name>.crt``/``.key`` with CA ``ca``: a serving cert for ``hosts`` or a client cert.

    Returns ``(cert, key)`` paths. Public so later steps (webhook, aggregated API) can get serving certs the
    apiserver already trusts.
    """
    _require()
    ca_cert, ca_key = _load(pki, ca)
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if hosts:
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(pki.path(f"{name}.key"), key)
    _write_cert(pki.path(f"{name}.crt"), cert)
    return pki.path(f"{name}.crt"), pki.path(f"{name}.key")


def make_all(directory: Path, service_ip: str) -> Pki:
    """Everything kube-apiserver's flags point at: CA, serving, admin, SA keys, front-proxy CA and client."""
    _require()
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _make_ca(pki, "ca", "virtnet-test-ca")
    issue(pki, "apiserver", "kube-apiserver",
          hosts=("127.0.0.1", "localhost", service_ip, "kubernetes", "kubernetes.default",
                 "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"))
    issue(pki, "admin", "admin", org="system:masters", client=True)
    sa = _key()
    _write_key(pki.path("sa.key"), sa)
    pki.path("sa.pub").write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    _make_ca(pki, "front-proxy-ca", "virtnet-test-front-proxy-ca")
    issue(pki, "front-proxy-client", FRONT_PROXY_CLIENT, ca="front-proxy-ca", client=True)
    return pki
