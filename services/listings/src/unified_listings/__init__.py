"""unified-seller listings service: offers, international links and their target prices (listings.offers.v1)."""
