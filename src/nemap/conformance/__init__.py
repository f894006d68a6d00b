"""The conformance suite's tools (spec/0.1/conformance.md): the harness that runs any reader program
over the suite, the reference engine behind the harness protocol, and an independent reader written
from the spec alone. The suite itself ships with the package in suite/<spec version>/ (made by
fixtures/conformance/generate.py of the source tree)."""
