"""Parts of the client that need no server."""

from __future__ import annotations

import unittest

from google.protobuf import struct_pb2

from cablehub import Client, api_token, value_to_python


class ValuesTest(unittest.TestCase):
    def test_api_token_matches_server_derivation(self) -> None:
        # The token the server logs and the Go e2e tests use for "test-secret".
        self.assertEqual(api_token("test-secret"),
                         "598bc7d3c9d5515311f23dc9ed694257b88e3f5fd8c746c60680fdc9c5caa580")

    def test_value_to_python(self) -> None:
        v = struct_pb2.Value()
        v.struct_value.update({"s": "x", "n": 3, "b": False, "z": None, "l": [1, "two", {"k": []}], "o": {}})
        self.assertEqual(value_to_python(v),
                         {"s": "x", "n": 3.0, "b": False, "z": None, "l": [1.0, "two", {"k": []}], "o": {}})
        self.assertIsNone(value_to_python(struct_pb2.Value()))
        self.assertEqual(value_to_python(struct_pb2.Value(string_value="")), "")

    def test_bad_publications_fail_before_sending(self) -> None:
        # Nothing listens on port 1; a request never leaves the client.
        with Client("127.0.0.1:1") as client:
            with self.assertRaises(TypeError):
                client.publish("s", {"not": "text"})
            with self.assertRaises(TypeError):
                client.publish_batch([{"stream": "s", "data": "x", "exclude": "typo"}])
            with self.assertRaises(TypeError):
                client.publish_batch([{"stream": "s"}])


if __name__ == "__main__":
    unittest.main()
