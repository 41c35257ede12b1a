"""Probes: a ClientHello to try plus the outcome read from the engine's trace, and a
bounded, concurrent runner (DESIGN.md "Packages": probe/).  ``diagnose`` builds its plan
on this; ``simulate`` and ``scan`` will too."""
from .outcome import CertificateRequestInfo, ProbeOutcome
from .runner import ProbeRunner, describe_non_tls, looks_like_tls, probe_once
from .spec import DIMENSIONS, ProbeSpec, broad_spec, is_ip, spec_from_profile, suite_family

__all__ = ["CertificateRequestInfo", "DIMENSIONS", "ProbeOutcome", "ProbeRunner", "ProbeSpec",
           "broad_spec", "describe_non_tls", "is_ip", "looks_like_tls", "probe_once",
           "spec_from_profile", "suite_family"]
