"""``python -m tlslab`` runs the command line (same as the ``tlslab`` script)."""
from tlslab.cli.main import main

main()
