"""unified-seller buyer-messages service: regional threads, published on ``messages.buyer-messages.v1``."""
