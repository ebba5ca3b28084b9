from unified_shared.asyncapi import SERVICE_CHANNELS, document


def test_each_service_documents_the_channels_it_publishes_and_consumes() -> None:
    for service, (publishes, consumes) in SERVICE_CHANNELS.items():
        doc = document(service)
        assert doc["asyncapi"].startswith("3.")
        channels = set(doc["channels"])
        assert {f"{t}:publish" for t in publishes} | {f"{t}:consume" for t in consumes} == channels


def test_payload_schemas_come_from_the_contract_models() -> None:
    doc = document("seller_view")
    schemas = doc["components"]["schemas"]
    assert "OrderPlaced" in schemas
    assert schemas["OrderPlaced"]["properties"]["purchase_date"]["format"] == "date-time"
