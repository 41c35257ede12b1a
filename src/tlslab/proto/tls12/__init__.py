"""TLS 1.2 (and 1.0/1.1) building blocks: PRF, cipher suites, record protection, key exchange."""
