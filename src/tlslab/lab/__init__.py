"""Lab: scenario servers and the throwaway PKI they use (see ``tlslab.lab.pki``)."""
