"""unified-seller billing: turns subscription timelines into capped, pro-rated invoices per currency."""
