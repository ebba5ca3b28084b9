"""unified-seller: the unified seller view (a rebuildable projection of every regional event)."""
