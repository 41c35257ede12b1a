"""Views of traces and reports: terminal (rich), JSON, HTML (DESIGN.md "Packages": view/)."""
