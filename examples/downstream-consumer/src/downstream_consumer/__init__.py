"""An example downstream consumer of unified-seller's event topics, built on FastStream."""
