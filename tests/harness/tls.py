"""Throwaway TLS material for test servers, made with the openssl command
line (no Python package beyond the standard library).

Keys are EC P-256: a certificate authority and a server certificate
take a few tens of milliseconds, where RSA keys would cost a noticeable
part of a broker's start.

    ca = make_ca(directory)                     # ca.cert, ca.key (PEM files)
    pem = make_server_cert(directory, ca)       # key + certificate, one PEM file
"""

import os
import shutil
import subprocess
from dataclasses import dataclass

from .util import ServiceUnavailable

# Long enough for any test run, short enough that a leaked file is useless.
VALID_DAYS = 7

# What a TLS server's certificate needs for librdkafka (and Java) to accept
# it for 127.0.0.1 with hostname verification on.
_SERVER_EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {names}
"""


@dataclass
class CertificateAuthority:
    cert: str   # PEM certificate: what clients trust
    key: str    # PEM private key: signs server certificates


def _openssl(*args, stdin=None):
    path = shutil.which("openssl")
    if not path:
        raise ServiceUnavailable("the openssl command is not installed (apt-get install openssl)")
    res = subprocess.run([path, *args], input=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30)
    if res.returncode != 0:
        raise ServiceUnavailable(f"openssl {args[0]} failed ({res.returncode}): "
                                 f"{res.stderr.decode(errors='replace')[-2000:]}")
    return res.stdout


_NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def make_ca(directory, name="todod-test-ca"):
    """A self-signed certificate authority in `directory`, files named
    after `name` (so two of them can share a directory)."""
    ca = CertificateAuthority(cert=os.path.join(directory, f"{name}.pem"),
                              key=os.path.join(directory, f"{name}.key"))
    _openssl("req", "-x509", "-new", *_NEW_KEY, "-batch", "-subj", f"/CN={name}",
             "-days", str(VALID_DAYS), "-keyout", ca.key, "-out", ca.cert)
    return ca


def make_server_cert(directory, ca, name="server", ips=("127.0.0.1",), dns=("localhost",)):
    """A server certificate signed by `ca` for `ips` and `dns` names.
    Returns one PEM file holding the private key (unencrypted PKCS#8)
    followed by the certificate, as Kafka's PEM key store reads it."""
    key = os.path.join(directory, f"{name}.key")
    extensions = os.path.join(directory, f"{name}.ext")
    bundle = os.path.join(directory, f"{name}.pem")
    names = [f"IP:{ip}" for ip in ips] + [f"DNS:{host}" for host in dns]
    with open(extensions, "w") as f:
        f.write(_SERVER_EXTENSIONS.format(names=", ".join(names)))
    request = _openssl("req", "-new", *_NEW_KEY, "-batch", "-subj", f"/CN={(ips or dns)[0]}",
                       "-keyout", key, "-out", "-")
    # A random serial, so the CA needs no serial file beside it.
    cert = _openssl("x509", "-req", "-CA", ca.cert, "-CAkey", ca.key,
                    "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                    "-days", str(VALID_DAYS), "-extfile", extensions, stdin=request)
    with open(key, "rb") as f:
        private = f.read()
    with open(bundle, "wb") as f:
        f.write(private + cert)
    os.chmod(bundle, 0o600)
    return bundle
