"""unified-seller orders service: regional SP-API-shaped orders, published on ``orders.orders.v1``."""
