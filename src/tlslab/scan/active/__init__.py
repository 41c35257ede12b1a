"""Active checks of :mod:`tlslab.scan.vulns_active`, one module per vulnerability, on a
small crafted-exchange layer (:mod:`.exchange`) and one result type (:mod:`.result`)."""
