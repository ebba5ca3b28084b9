"""The demo's report: the unified view, the member's narrower view and the invoices, as rich tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from unified_shared import catalog


def _money(value: Any) -> str:
    if value is None:
        return "-"
    return f"{Decimal(str(value)):,.2f}" if "." in str(value) else f"{Decimal(str(value)):,}"


def overview_table(overview: dict[str, Any], title: str, expected_gross: dict[str, Decimal] | None = None) -> Table:
    currency = overview["reporting_currency"]
    table = Table(title=title, title_justify="left", show_footer=True)
    table.add_column("marketplace", footer="total")
    table.add_column("orders", justify="right", footer=str(overview["total"]["orders"]))
    table.add_column("shipped / canceled", justify="right")
    table.add_column("units", justify="right", footer=str(overview["total"]["units"]))
    table.add_column("gross sales (local)", justify="right")
    table.add_column(
        f"gross ({currency})", justify="right", footer=_money(overview["total"]["gross_sales"]["reporting"])
    )
    table.add_column(f"refunds ({currency})", justify="right", footer=_money(overview["total"]["refunds"]["reporting"]))
    table.add_column(f"net ({currency})", justify="right", footer=_money(overview["total"]["net_sales"]["reporting"]))
    if expected_gross is not None:
        table.add_column("= scenario", justify="center")
    for row in sorted(overview["marketplaces"], key=lambda r: -Decimal(str(r["gross_sales"]["reporting"] or 0))):
        statuses = row["orders_by_status"]
        local = ", ".join(f"{_money(v)} {c}" for c, v in row["gross_sales"]["local"].items())
        cells = [
            f"{row['code']} ({row['currency']})",
            str(row["orders"]),
            f"{statuses.get('Shipped', 0)} / {statuses.get('Canceled', 0)}",
            str(row["units"]),
            local,
            _money(row["gross_sales"]["reporting"]),
            _money(row["refunds"]["reporting"]),
            _money(row["net_sales"]["reporting"]),
        ]
        if expected_gross is not None:
            got = sum((Decimal(str(v)) for v in row["gross_sales"]["local"].values()), Decimal(0))
            cells.append(
                "[green]yes[/]" if got == expected_gross.get(row["marketplace_id"], Decimal(0)) else "[red]NO[/]"
            )
        table.add_row(*cells)
    return table


def rates_line(overview: dict[str, Any]) -> str:
    rates = overview.get("fx_rates_used", [])
    days = sorted({r["rate_date"] for r in rates})
    if not days:
        return "no conversion needed"
    return (
        f"converted per order at the ECB rate of its purchase day: {len(rates)} rates of {len(days)} days "
        f"({days[0]} .. {days[-1]})"
    )


def largest_orders_table(orders: list[dict[str, Any]], usd: dict[tuple[str, str], Decimal], limit: int = 6) -> Table:
    def in_usd(order: dict[str, Any]) -> Decimal:
        day = order["purchase_date"][:10]
        rate = usd.get((order["order_total"]["currency_code"], day))
        return Decimal(order["order_total"]["amount"]) * rate if rate else Decimal(0)

    table = Table(title="Busiest orders across every marketplace (largest, in USD)", title_justify="left")
    for col in ("order", "marketplace", "purchased", "status", "items", "total", "≈ USD"):
        table.add_column(col, justify="right" if col in ("items", "total", "≈ USD") else "left")
    for order in sorted(orders, key=in_usd, reverse=True)[:limit]:
        table.add_row(
            order["amazon_order_id"],
            order["marketplace"],
            order["purchase_date"][:16].replace("T", " "),
            order["order_status"],
            str(order["number_of_items"]),
            f"{_money(order['order_total']['amount'])} {order['order_total']['currency_code']}",
            _money(in_usd(order).quantize(Decimal("0.01"))),
        )
    return table


def threads_table(messages: dict[str, Any], limit: int = 8) -> Table:
    counts = messages["counts"]
    title = (
        f"Buyer messages as of {messages['as_of'][:16].replace('T', ' ')}: {counts['awaiting_reply']} awaiting reply, "
        f"{counts['overdue']} overdue (> 24 h), {counts['due_soon']} due within 4 h"
    )
    table = Table(title=title, title_justify="left")
    for col in ("thread", "marketplace", "subject", "awaiting since", "deadline", "status"):
        table.add_column(col)
    overdue = [t for t in messages["threads"] if t["overdue"]]
    for thread in sorted(overdue, key=lambda t: t["deadline"])[:limit]:
        table.add_row(
            thread["thread_id"],
            thread["marketplace"],
            thread["subject"],
            thread["awaiting_since"][:16].replace("T", " "),
            thread["deadline"][:16].replace("T", " "),
            "[red]overdue[/]",
        )
    return table


def late_rate_line(messages: dict[str, Any]) -> str:
    parts = []
    for window in ("7d", "30d", "90d"):
        rate = messages["late_response_rate"][window]
        value = "n/a" if rate["rate"] is None else f"{Decimal(rate['rate']) * 100:.1f}%"
        parts.append(f"{window}: {value} ({rate['late']}/{rate['threads_due']})")
    return "late response rate  " + "   ".join(parts)


def invoices_table(documents: dict[str, Any]) -> Table:
    table = Table(title="Invoices: one per period and currency, the capped fee pro-rated", title_justify="left")
    for col in ("period", "invoice", "currency", "lines (fee -> charged, discount)", "total", "discount"):
        table.add_column(col, justify="right" if col in ("total", "discount") else "left")
    for doc in sorted(documents["invoices"], key=lambda d: (d["period"], d["currency"])):
        lines = "\n".join(
            f"{catalog.by_id(line['marketplace_id']).code}: {line['fee']} -> {line['amount']} (-{line['discount']})"
            for line in doc["lines"]
        )
        table.add_row(doc["period"], doc["document_id"], doc["currency"], lines, doc["total"], doc["discount"])
    for note in documents.get("credit_notes", []):
        table.add_row(
            note["period"], note["document_id"], note["currency"], note.get("reason", ""), f"-{note['total']}", ""
        )
    return table


def cap_lines(documents: dict[str, Any]) -> list[str]:
    """Per period: what the plan fees are worth in USD and what was charged, from the invoice lines' rates."""
    out = []
    for period in sorted({d["period"] for d in documents["invoices"]}):
        fees = charged = Decimal(0)
        for doc in documents["invoices"]:
            if doc["period"] != period:
                continue
            for line in doc["lines"]:
                usd = Decimal(str(line.get("fx_rate_usd") or 0))
                fees += Decimal(str(line["fee"])) * usd
                charged += Decimal(str(line["amount"])) * usd
        out.append(f"{period}: plan fees worth {fees:.2f} USD, charged {charged:.2f} USD (cap 39.99 USD)")
    return out


def print_where(console: Console, services: dict[str, str]) -> None:
    console.print("Where the APIs are (OpenAPI at /docs and /openapi.json, health at /health/ready, /metrics):")
    table = Table()
    table.add_column("service")
    table.add_column("base URL")
    for name, url in services.items():
        table.add_row(name, url)
    console.print(table)


def print_web(console: Console, url: str, email: str, password: str) -> None:
    """The last lines of the demo: where the seller's web app is and how the demo seller signs in."""
    console.print(f"The seller's web app: [bold]{url}[/]")
    console.print(f"  sign in as {email}  password: {password}")
