"""The CA made for a test run and the server certificate it signs (127.0.0.1 and localhost):
shared by the test IdPs (llng.py, okta.py, mfa_api.py, glewlwyd.py). `issue_server_cert` signs
one more server certificate with a CA made here whose key was kept (glewlwyd.py keeps it), so a
second server (mfa_policy_proxy.py) is trusted through the same `ca_file`. Nothing here is in
the system trust store."""
from __future__ import annotations

import datetime
import ipaddress
import pathlib
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_key(key) -> bytes:
    # PKCS#1 ("BEGIN RSA PRIVATE KEY"): what Crypt::OpenSSL::RSA (LemonLDAP::NG) reads everywhere.
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def generate_pki(ca_file: pathlib.Path, cert_file: pathlib.Path, key_file: pathlib.Path, label: str,
                 ca_key_file: pathlib.Path | None = None) -> None:
    """A CA valid for 30 days and a server certificate for 127.0.0.1/localhost signed by it.
    The CA file is written last: its presence means the PKI is complete."""
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)
    ca_key = rsa_key()
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudLogin tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"CloudLogin {label} test CA {secrets.token_hex(4)}"),
    ])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = rsa_key()
    srv_cert = _server_cert(srv_key, ca_key, ca_name, ca_ski, start, end)
    if ca_key_file is not None:
        ca_key_file.write_bytes(pem_key(ca_key))
        ca_key_file.chmod(0o600)
    key_file.write_bytes(pem_key(srv_key))
    key_file.chmod(0o600)
    cert_file.write_bytes(srv_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.chmod(0o644)
    # Written last: its presence means the PKI is complete.
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_file.chmod(0o644)


def _server_cert(srv_key, ca_key, ca_name: x509.Name, ca_ski: x509.SubjectKeyIdentifier,
                 start: datetime.datetime, end: datetime.datetime) -> x509.Certificate:
    """A TLS server certificate for 127.0.0.1 and localhost, signed by the CA."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(srv_key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def issue_server_cert(ca_file: pathlib.Path, ca_key_file: pathlib.Path, cert_file: pathlib.Path,
                      key_file: pathlib.Path) -> None:
    """Another server certificate for 127.0.0.1/localhost, signed by the CA in CA_FILE with the
    key generate_pki kept in CA_KEY_FILE, valid while the CA is: a client that trusts CA_FILE
    trusts this server too."""
    ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = datetime.datetime.now(datetime.timezone.utc)
    start = max(now - datetime.timedelta(hours=1), ca_cert.not_valid_before_utc)
    srv_key = rsa_key()
    srv_cert = _server_cert(srv_key, ca_key, ca_cert.subject, ca_ski, start, ca_cert.not_valid_after_utc)
    key_file.write_bytes(pem_key(srv_key))
    key_file.chmod(0o600)
    cert_file.write_bytes(srv_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.chmod(0o644)
