"""The conformance suite's tools (spec/0.1/conformance.md): the harness that runs any reader program
over the suite, the reference engine behind the harness protocol, and an independent reader written
from the spec alone. The fixtures themselves are in fixtures/conformance/<spec version>/."""
