from typing import Any

from pydantic import BaseModel, create_model

from unified_shared.schemas import breaking_changes, current_schemas


class Inner(BaseModel):
    code: str


class V1(BaseModel):
    a: str
    b: int | None = None
    inner: Inner


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


def test_adding_an_optional_field_is_compatible() -> None:
    class V2(V1):
        c: str | None = None

    assert breaking_changes(schema(V1), schema(V2)) == []


def test_removed_field_changed_type_and_new_required_field_are_breaking() -> None:
    class Removed(BaseModel):
        a: str
        inner: Inner

    class Retyped(BaseModel):
        a: int
        b: int | None = None
        inner: Inner

    class NewRequired(V1):
        c: str

    assert any("b: field removed" in p for p in breaking_changes(schema(V1), schema(Removed)))
    assert any("a: type changed" in p for p in breaking_changes(schema(V1), schema(Retyped)))
    assert any("c: new required field" in p for p in breaking_changes(schema(V1), schema(NewRequired)))


def test_nested_change_is_breaking() -> None:
    class Inner2(BaseModel):
        code: int

    class V1b(BaseModel):
        a: str
        b: int | None = None
        inner: Inner2

    assert any("inner.code" in p for p in breaking_changes(schema(V1), schema(V1b)))


class Line(BaseModel):
    amount: str
    fee: str


class WithLines(BaseModel):
    lines: list[Line]
    inner: Inner | None = None


def test_changes_inside_array_items_and_optional_nested_objects_are_breaking() -> None:
    class LineRemoved(BaseModel):
        fee: str

    class LineRetyped(BaseModel):
        amount: int
        fee: str

    class LineNewRequired(Line):
        currency: str

    class InnerRetyped(BaseModel):
        code: int

    def with_lines(line: type[BaseModel], nested: Any = Inner) -> type[BaseModel]:
        return create_model("WithLines", lines=(list[line], ...), inner=(nested | None, None))  # type: ignore[valid-type]

    assert breaking_changes(schema(WithLines), schema(with_lines(Line))) == []
    assert any(
        "lines[].amount: field removed" in p
        for p in breaking_changes(schema(WithLines), schema(with_lines(LineRemoved)))
    )
    assert any(
        "lines[].amount: type changed" in p
        for p in breaking_changes(schema(WithLines), schema(with_lines(LineRetyped)))
    )
    assert any(
        "lines[].currency: new required field" in p
        for p in breaking_changes(schema(WithLines), schema(with_lines(LineNewRequired)))
    )
    assert any(
        "inner.code: type changed" in p
        for p in breaking_changes(schema(WithLines), schema(with_lines(Line, InnerRetyped)))
    )


def test_a_field_that_may_become_null_is_breaking() -> None:
    class Nullable(BaseModel):
        a: str | None
        b: int | None = None
        inner: Inner

    assert any("a: type changed" in p for p in breaking_changes(schema(V1), schema(Nullable)))


def test_every_registered_event_has_a_schema_with_its_topic() -> None:
    schemas = current_schemas()
    assert "unifiedseller.orders.OrderPlaced.v1" in schemas
    assert schemas["unifiedseller.orders.OrderPlaced.v1"]["x-topic"] == "orders.orders.v1"
    # Amounts are strings on the wire.
    placed = schemas["unifiedseller.orders.OrderPlaced.v1"]
    money = placed["$defs"]["Money"]["properties"]["amount"]
    assert money["type"] == "string"


def test_an_event_type_is_named_after_its_class_unless_it_says_otherwise() -> None:
    from unified_shared.contracts.regions import ParticipationOpened

    from .plumbing_support import RUN, AmountAdded

    assert ParticipationOpened.ce_type() == "unifiedseller.regions.ParticipationOpened.v1"
    assert AmountAdded.ce_type() == f"unifiedseller.test.AmountAdded{RUN}.v1"
