"""``python -m tlslab`` runs the command line (same as the ``tlslab`` script)."""
from tlslab.cli.main import main

# the guard matters: a fleet's local Dask cluster starts worker processes with "spawn",
# which imports this module again in each of them
if __name__ == "__main__":
    main()
