"""The client's TLS options against a server with --ssl_cert and --ssl_key
(a CA and a certificate made with openssl for the test)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import unittest

import grpc

from cablehub import CablehubError, Client, UnavailableError
from cablehub.aio import AsyncClient

from helpers import SECRET, Server, watchdog


def make_certificate(directory: str) -> bytes:
    """Writes ca.crt, tls.crt and tls.key for 127.0.0.1 to directory and
    returns the CA's PEM."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Python SDK Test CA", "-days", "2")
    with open(os.path.join(directory, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "tls.crt", "-days", "2", "-extfile", "ext.cnf")
    with open(os.path.join(directory, "ca.crt"), "rb") as f:
        return f.read()


class TLSTest(unittest.TestCase):
    def setUp(self) -> None:
        watchdog(self)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.ca = make_certificate(tmp.name)
        self.server = Server("--secret", SECRET, "--public",
                             "--ssl_cert", os.path.join(tmp.name, "tls.crt"),
                             "--ssl_key", os.path.join(tmp.name, "tls.key"))
        self.addCleanup(self.server.stop)

    def test_root_certificates(self) -> None:
        with Client(self.server.grpc_addr, secret=SECRET, root_certificates=self.ca, timeout=5) as client:
            client.publish("py-tls", '{"over":"tls"}')
            self.assertEqual(client.presence("py-tls").total, 0)

    def test_credentials(self) -> None:
        creds = grpc.ssl_channel_credentials(root_certificates=self.ca)
        with Client(self.server.grpc_addr, secret=SECRET, credentials=creds, timeout=5) as client:
            client.publish("py-tls", "x")

    def test_https_address(self) -> None:
        address = "https://" + self.server.grpc_addr
        with Client(address, secret=SECRET, root_certificates=self.ca, timeout=5) as client:
            client.publish("py-tls", '"over https"')
            self.assertEqual(client.history("py-tls").publications[-1].data, '"over https"')
        # https:// alone verifies with the system's CAs, which do not know
        # the test CA.
        with Client(address, secret=SECRET, timeout=2) as client:
            with self.assertRaises(UnavailableError):
                client.info()

    def test_asyncio_client_over_tls(self) -> None:
        async def call() -> int:
            async with AsyncClient("https://" + self.server.grpc_addr, secret=SECRET,
                                   root_certificates=self.ca) as client:
                await client.publish("py-tls-aio", '"x"')
                return (await client.history("py-tls-aio")).offset

        self.assertEqual(asyncio.run(call()), 1)

    def test_plaintext_and_untrusted_clients_fail(self) -> None:
        for kwargs in ({}, {"root_certificates": True}):
            with Client(self.server.grpc_addr, secret=SECRET, timeout=2, **kwargs) as client:
                with self.assertRaises(CablehubError) as ctx:
                    client.publish("py-tls", "x")
                self.assertEqual(ctx.exception.code, grpc.StatusCode.UNAVAILABLE, kwargs)


if __name__ == "__main__":
    unittest.main()
