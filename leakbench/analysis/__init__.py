"""Pure analysis: artifacts in, findings out. Nothing here does I/O or imports the launcher or report."""
