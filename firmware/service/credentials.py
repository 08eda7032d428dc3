"""The company's credentials for the service: the OAuth2 client assertion, a JWT signed RS256 with its key."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sitegate.errors import SitegateError


class CredentialError(SitegateError):
    """Our side: the key or certificate cannot be used (the provider must act, no outage is exempt)."""


def load_private_key(path: Path | None):
    if path is None:
        raise CredentialError("service.key_file is not configured", "name the company's certificate key file")
    try:
        return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise CredentialError(f"key file {path} not found", "install the company's key there (mode 0600)") from None
    except (ValueError, TypeError, OSError) as error:
        raise CredentialError(f"key file {path} cannot be used: {error}", "install an unencrypted PEM key") from None


def certificate_thumbprint(path: Path | None) -> str | None:
    """The x5t header (SHA-1 of the DER certificate, base64url), when a certificate is configured."""
    if path is None:
        return None
    try:
        der = x509.load_pem_x509_certificate(Path(path).read_bytes()).public_bytes(serialization.Encoding.DER)
    except (OSError, ValueError) as error:
        raise CredentialError(f"certificate {path} cannot be used: {error}", "install the PEM certificate") from None
    import base64

    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324 - x5t is SHA-1


def client_assertion(client_id: str, token_url: str, key, thumbprint: str | None, now: dt.datetime) -> str:
    """The signed JWT: iss = sub = client id, aud = token URL, a unique jti, valid five minutes."""
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "jti": str(uuid.uuid4()),
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 300,
    }
    headers = {"x5t": thumbprint} if thumbprint else None
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def make_self_signed(
    directory: Path, now: dt.datetime, common_name: str = "sitegate-test", hosts: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """A key and self-signed certificate for the simulator, the demo and tests (never for the real service)."""
    import ipaddress

    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if hosts:
        names = [
            x509.IPAddress(ipaddress.ip_address(h)) if h.replace(".", "").isdigit() else x509.DNSName(h) for h in hosts
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    key_path, cert_path = directory / f"{common_name}.key", directory / f"{common_name}.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
