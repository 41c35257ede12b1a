"""Why does a handshake fail?  Probe outcomes and chain analysis to causes, with
evidence and fixes per stack (DESIGN.md "Diagnosis vocabulary").

    report = asyncio.run(diagnose(Target(host, port, server_name, trust), [load_profile("default")]))
    report.to_json()   # {"target", "ok", "causes": [{"code", "summary", "evidence", "fixes"}], ...}
"""
from .plan import MAX_HANDSHAKES, Diagnosis, Target, diagnose
from .report import VOCABULARY, Cause, Report, Warning_

__all__ = ["Cause", "Diagnosis", "MAX_HANDSHAKES", "Report", "Target", "VOCABULARY", "Warning_",
           "diagnose"]
